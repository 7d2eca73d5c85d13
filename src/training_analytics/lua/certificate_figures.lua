-- Read only: one certificate bucket's figures, read at one moment (credential analytics and
-- stats on a cluster sum them over the buckets; one call per bucket instead of seven).
-- KEYS: [1] the bucket's index marker, [2] its credential stats hash, [3] / [4] its expiry
--       indexes of issued and claimed certificates, [5..] its sets: all, then one per status
-- ARGV: [1] now (epoch ms), [2] the end of the expiry window (epoch ms), [3..] the stats hash's
--       fields to read
-- Replies: the marker's EXISTS; overdue issued and claimed (expiry at or before now); issued
-- and claimed expiring after now and by the window's end; each set's SCARD; then the fields'
-- values as one array (nil where absent).
local now, soon = ARGV[1], ARGV[2]
local reply = {
  redis.call('EXISTS', KEYS[1]),
  redis.call('ZCOUNT', KEYS[3], '-inf', now),
  redis.call('ZCOUNT', KEYS[4], '-inf', now),
  redis.call('ZCOUNT', KEYS[3], '(' .. now, soon),
  redis.call('ZCOUNT', KEYS[4], '(' .. now, soon),
}
for i = 5, #KEYS do reply[#reply + 1] = redis.call('SCARD', KEYS[i]) end
reply[#reply + 1] = redis.call('HMGET', KEYS[2], unpack(ARGV, 3))
return reply
