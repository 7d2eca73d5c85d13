-- Read only: set sizes and the sizes this library recorded for them, read at one moment.
-- KEYS: the sets, then the hash holding the recorded sizes;  ARGV: that hash's fields, one per set
-- Replies the sets' SCARDs, then the fields' values (0 when absent). Reads confirm a mismatch
-- seen in their pipeline with this call: a pipeline is not atomic, so a write may have run
-- between its SCARD and its HMGET.
local sets = #KEYS - 1
local sizes = {}
for i = 1, sets do sizes[i] = redis.call('SCARD', KEYS[i]) end
for i, field in ipairs(ARGV) do
  sizes[sets + i] = tonumber(redis.call('HGET', KEYS[#KEYS], field) or '0') or 0
end
return sizes
