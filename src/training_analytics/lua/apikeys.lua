-- API keys of the HTTP service: the name index and a key's record change together.
--
-- KEYS: 1 name index (hash: name -> digest), 2 the key's record (hash, addressed by digest)
-- ARGV: 1 mode
--   create: 2 name, 3 digest, 4 role, 5 createdAt -> 1, or 0 when the name is taken
--   revoke: 2 name, 3 digest the caller read -> 1, or 0 when the name no longer has that key
--   touch:  2 now -> the record's fields (flat) after setting lastUsedAt; {} for no such key
local mode = ARGV[1]
if mode == 'create' then
  if redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3]) == 0 then return 0 end
  redis.call('HSET', KEYS[2], 'name', ARGV[2], 'role', ARGV[4], 'createdAt', ARGV[5])
  return 1
elseif mode == 'revoke' then
  if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[3] then return 0 end
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('DEL', KEYS[2])
  return 1
elseif mode == 'touch' then
  -- A revoked key's record is gone: never recreate it by recording its use.
  if redis.call('EXISTS', KEYS[2]) == 0 then return {} end
  redis.call('HSET', KEYS[2], 'lastUsedAt', ARGV[2])
  return redis.call('HGETALL', KEYS[2])
end
return redis.error_reply('TA_BAD_INPUT unknown API key operation')
