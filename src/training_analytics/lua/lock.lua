-- The reindex lease: extend or release it, only while it holds this run's token (a run that
-- stalled past its lease must not extend or drop the next run's lock).
-- KEYS: 1 the lock key;  ARGV: 1 mode (extend | release), 2 token, 3 lease in ms (extend)
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
if ARGV[1] == 'release' then return redis.call('DEL', KEYS[1]) end
return redis.call('PEXPIRE', KEYS[1], ARGV[3])
