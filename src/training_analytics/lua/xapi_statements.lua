-- Remember the ids of xAPI statements, each with its digest, for a retention period.
-- KEYS: one statement key per id (training:xapi:statement:{id}).
-- ARGV[1]: retention in seconds; ARGV[1 + i]: the digest of statement i.
-- Reply: one integer per key: 0 remembered now, 1 already held with the same digest,
-- 2 already held with a different digest (another statement took the id meanwhile).
local ttl = ARGV[1]
local replies = {}
for i, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if not held then
    redis.call('SET', key, ARGV[i + 1], 'EX', ttl)
    replies[i] = 0
  elseif held == ARGV[i + 1] then
    replies[i] = 1
  else
    replies[i] = 2
  end
end
return replies
