-- Certification events.
-- group keys: 1 all set, 2-5 status sets (issued, claimed, expired, revoked), 6-7 expiry
--   indexes (issued, claimed), 8 credential stats hash, 9 credential cache, 10 overview cache;
--   in the cluster layout 1-8 are the certificate's bucket's and 9, 10 do not exist (nil)
-- own key: the certification hash
local STATUS_KEY = {issued = 2, claimed = 3, expired = 4, revoked = 5}
local EXPIRY_KEY = {issued = 6, claimed = 7}
local ALL, STATS, CACHE, OVERVIEW = 1, 8, 9, 10
local ALLOWED = {
  issued = {claimed = true, expired = true, revoked = true},
  claimed = {expired = true, revoked = true},
  expired = {revoked = true},
}

-- Event I: issue a certification.
-- args (event[4..]): id, then field/value pairs of the record (strings; absent optional: "")
-- Issuing the same record again changes nothing; the same id with other data is refused.
HANDLERS['I'] = function(k, gv, cert_key, e)
  local id = e[4]
  local record = {}
  for i = 5, #e, 2 do record[e[i]] = e[i + 1] end
  -- The certificate's hash needs no check: HMGET reads it first, or HSET is the first write.
  if redis.call('EXISTS', cert_key) == 1 then
    -- Fields compared in the order sent (not pairs(): its order differs between servers, and
    -- the message names the first field that differs).
    local names = {}
    for i = 5, #e, 2 do names[#names + 1] = e[i] end
    local stored = redis.call('HMGET', cert_key, unpack(names))
    for i, field in ipairs(names) do
      if (stored[i] or '') ~= e[4 + 2 * i] then
        return 'TA_CERT_EXISTS certification ' .. id .. ' exists with a different ' .. field
      end
    end
    return 0
  end
  local status = record['status']
  if not STATUS_KEY[status] then return 'TA_BAD_INPUT unknown status ' .. tostring(status) end
  local refused = check_type(k[ALL], 'set') or check_type(k[STATUS_KEY[status]], 'set')
    or (EXPIRY_KEY[status] and check_type(k[EXPIRY_KEY[status]], 'zset'))
    or check_hash_counters(k[STATS], CLAIM_FIELDS)
  if refused then return refused end
  local fields = {}
  for i = 5, #e do fields[#fields + 1] = e[i] end
  redis.call('HSET', cert_key, unpack(fields))
  redis.call('SADD', k[ALL], id)
  redis.call('SADD', k[STATUS_KEY[status]], id)
  local expires = parse_ts(record['expiresAt'] or '')
  if EXPIRY_KEY[status] and expires then
    redis.call('ZADD', k[EXPIRY_KEY[status]], int(expires), id)
  end
  add_claim(k[STATS], status, record['issuedAt'] or '', record['claimedAt'] or '', 1)
  -- The sets' sizes as this library knows them (drift check: see _index.ensure_fresh).
  hincr(k[STATS], 'set:all', 1)
  hincr(k[STATS], 'set:' .. status, 1)
  touch(k[CACHE])
  touch(k[OVERVIEW])
  return 1
end

-- Event U: change a certification's status.
-- args (event[4..]): id, new status, claim time ("" unless claimed)
-- issued -> claimed | expired | revoked; claimed -> expired | revoked; expired -> revoked.
HANDLERS['U'] = function(k, gv, cert_key, e)
  local id, new, claim_time = e[4], e[5], e[6]
  -- A certificate hash of another type fails this read, before anything is written.
  local cur = redis.call('HMGET', cert_key, 'status', 'issuedAt', 'claimedAt', 'expiresAt')
  local old = cur[1]
  if not old then return 'TA_CERT_NOT_FOUND no certification ' .. id end
  if old == new then return 0 end
  if not (ALLOWED[old] and ALLOWED[old][new]) or not STATUS_KEY[new] then
    return 'TA_ILLEGAL_TRANSITION certification ' .. id .. ' cannot go from ' .. old .. ' to ' .. new
  end
  local issued_at, old_claimed = cur[2] or '', cur[3] or ''
  local expires = parse_ts(cur[4] or '')
  local new_claimed = old_claimed
  if new == 'claimed' then
    local claimed = parse_ts(claim_time)
    if not claimed then return 'TA_BAD_INPUT claim time does not parse: ' .. claim_time end
    if expires and claimed >= expires then
      return 'TA_CERT_EXPIRED certification ' .. id .. ' expired at ' .. cur[4]
    end
    local issued = parse_ts(issued_at)
    if issued and claimed < issued then
      return 'TA_BAD_INPUT claim time ' .. claim_time .. ' is before issue time ' .. issued_at
    end
    new_claimed = claim_time
  end
  local refused = (STATUS_KEY[old] and check_type(k[STATUS_KEY[old]], 'set'))
    or check_type(k[STATUS_KEY[new]], 'set')
    or (EXPIRY_KEY[old] and check_type(k[EXPIRY_KEY[old]], 'zset'))
    or (EXPIRY_KEY[new] and check_type(k[EXPIRY_KEY[new]], 'zset'))
    or check_hash_counters(k[STATS], CLAIM_FIELDS)
  if refused then return refused end
  if new == 'claimed' then
    redis.call('HSET', cert_key, 'status', new, 'claimedAt', claim_time)
  else
    redis.call('HSET', cert_key, 'status', new)
  end
  add_claim(k[STATS], old, issued_at, old_claimed, -1)
  add_claim(k[STATS], new, issued_at, new_claimed, 1)
  if STATUS_KEY[old] then hincr(k[STATS], 'set:' .. old, -1) end
  hincr(k[STATS], 'set:' .. new, 1)
  if STATUS_KEY[old] then redis.call('SREM', k[STATUS_KEY[old]], id) end
  redis.call('SADD', k[STATUS_KEY[new]], id)
  if EXPIRY_KEY[old] then redis.call('ZREM', k[EXPIRY_KEY[old]], id) end
  if EXPIRY_KEY[new] and expires then redis.call('ZADD', k[EXPIRY_KEY[new]], int(expires), id) end
  touch(k[CACHE])
  return 1
end
