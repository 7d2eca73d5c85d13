-- Course catalog writes: the course hash and the seed's indexes change together.
--
-- KEYS: 1 course hash, 2 all-courses sorted set (by order), 3 published set,
--       4 category set the course is in now ("" position when creating),
--       5 category set it will be in, 6 overview cache, 7 course analytics cache,
--       8 the store version (raised by every change); the cluster layout has no caches and
--       sends 6 keys, its catalog's version last
-- ARGV: 1 mode (create | update | delete), 2 course id, 3 category the caller read (update,
--       delete: checked, so a concurrent change makes the caller re-read instead of leaving the
--       course in two category sets), 4 order, 5 published ("true"/"false"),
--       6.. field/value pairs to store
--
-- Everything that can fail is checked before the first write (key types, the order as a ZADD
-- score, the field list), so a refused call leaves the course and its indexes as they were.
local mode, id, seen_category = ARGV[1], ARGV[2], ARGV[3]
if mode ~= 'create' and mode ~= 'update' and mode ~= 'delete' then
  return redis.error_reply('TA_BAD_INPUT unknown catalog mode ' .. tostring(mode))
end
local KINDS = {'hash', 'zset', 'set', 'set', 'set'}
for i, kind in ipairs(KINDS) do
  local found = redis.call('TYPE', KEYS[i])['ok']
  if found ~= 'none' and found ~= kind then
    return redis.error_reply('TA_STORE_ERROR ' .. KEYS[i] .. ' holds a ' .. found ..
      ' where a ' .. kind .. ' was expected; nothing was written')
  end
end
if mode ~= 'delete' then
  local order = tonumber(ARGV[4])
  if not order or order ~= order or order == math.huge or order == -math.huge then
    return redis.error_reply('TA_BAD_INPUT order must be a finite number, got ' .. tostring(ARGV[4]))
  end
  if (#ARGV - 5) % 2 ~= 0 then
    return redis.error_reply('TA_BAD_INPUT course fields must come in field/value pairs')
  end
end
local exists = redis.call('EXISTS', KEYS[1]) == 1
if mode == 'create' then
  if exists then return redis.error_reply('TA_COURSE_EXISTS course ' .. id .. ' exists') end
else
  if not exists then return redis.error_reply('TA_COURSE_NOT_FOUND no course ' .. id) end
  if (redis.call('HGET', KEYS[1], 'category') or '') ~= seen_category then
    return redis.error_reply('TA_RETRY course ' .. id .. ' changed concurrently')
  end
  redis.call('SREM', KEYS[4], id)
end
if mode == 'delete' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], id)
  redis.call('SREM', KEYS[3], id)
else
  if #ARGV > 5 then redis.call('HSET', KEYS[1], unpack(ARGV, 6)) end
  redis.call('ZADD', KEYS[2], ARGV[4], id)
  redis.call('SADD', KEYS[5], id)
  if ARGV[5] == 'true' then
    redis.call('SADD', KEYS[3], id)
  else
    redis.call('SREM', KEYS[3], id)
  end
end
-- The cluster layout has no caches: its calls send six keys, the version last.
if #KEYS == 8 then redis.call('DEL', KEYS[6], KEYS[7]) end
redis.pcall('INCR', KEYS[#KEYS])  -- never fails the call after its writes (see apply.lua)
return 1
