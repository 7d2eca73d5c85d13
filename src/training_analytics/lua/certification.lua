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

-- Whether a certificate stored with status `stored` and claim time `stored_claim` is what one
-- issued with `status` and `claim` became through legal status changes: `stored` is `status`
-- or reachable from it (ALLOWED is its own transitive closure), and the claim times agree,
-- unless a claim lies on that path (issued, then claimed or later with a claim time): only a
-- claim writes claimedAt after the issue.
local function became(status, claim, stored, stored_claim)
  if stored ~= status and not (ALLOWED[status] and ALLOWED[status][stored]) then return false end
  return claim == stored_claim or (status == 'issued' and stored ~= 'issued' and stored_claim ~= '')
end

-- Event I: issue a certification.
-- args (event[4..]): id, then field/value pairs of the record (strings; absent optional: "")
-- Issuing the same record again changes nothing, also after the certificate moved on (claimed,
-- expired, revoked: see became()); the same id with other data is refused.
HANDLERS['I'] = function(k, gv, cert_key, e)
  local id = e[4]
  local status, issued_at, claimed_at, expires_at
  -- The client sends the fields in certification_to_fields' order: the four this reads are
  -- found at their places when the names there say so (interned strings: cheap comparisons).
  if e[17] == 'status' and e[19] == 'issuedAt' and e[21] == 'claimedAt' and e[23] == 'expiresAt' then
    status, issued_at, claimed_at, expires_at = e[18], e[20], e[22], e[24]
  else
    local record = {}
    for i = 5, #e, 2 do record[e[i]] = e[i + 1] end
    status, issued_at = record['status'], record['issuedAt'] or ''
    claimed_at, expires_at = record['claimedAt'] or '', record['expiresAt'] or ''
  end
  -- The certificate's hash needs no check: HMGET reads it first, or HSET is the first write.
  if redis.call('EXISTS', cert_key) == 1 then
    -- Fields compared in the order sent (not pairs(): its order differs between servers, and
    -- the message names the first field that differs), then the stored lifecycle fields.
    local names = {}
    for i = 5, #e, 2 do names[#names + 1] = e[i] end
    local n = #names
    names[n + 1], names[n + 2] = 'status', 'claimedAt'
    local stored = redis.call('HMGET', cert_key, unpack(names))
    local replay
    for i = 1, n do
      local field = names[i]
      if (stored[i] or '') ~= e[4 + 2 * i] then
        if field == 'status' or field == 'claimedAt' then
          if replay == nil then
            replay = became(status, claimed_at, stored[n + 1] or '', stored[n + 2] or '')
          end
        else
          replay = false
        end
        if not replay then
          return 'TA_CERT_EXISTS certification ' .. id .. ' exists with a different ' .. field
        end
      end
    end
    return 0
  end
  if not STATUS_KEY[status] then return 'TA_BAD_INPUT unknown status ' .. tostring(status) end
  local refused = check_type(k[ALL], 'set') or check_type(k[STATUS_KEY[status]], 'set')
    or (EXPIRY_KEY[status] and check_type(k[EXPIRY_KEY[status]], 'zset'))
    or check_hash_counters(k[STATS], CLAIM_FIELDS)
  if refused then return refused end
  redis.call('HSET', cert_key, unpack(e, 5))
  redis.call('SADD', k[ALL], id)
  redis.call('SADD', k[STATUS_KEY[status]], id)
  if EXPIRY_KEY[status] then
    local expires = parse_ts(expires_at)
    if expires then redis.call('ZADD', k[EXPIRY_KEY[status]], int(expires), id) end
  end
  add_claim(k[STATS], status, issued_at, claimed_at, 1)
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
-- The status it already has changes nothing; so does a claim at the stored claim time of a
-- certificate since expired or revoked (a replay: the store holds that claim). Any other move
-- back is refused: an expiry replayed after a revocation leaves no trace to tell it from one
-- that never happened.
HANDLERS['U'] = function(k, gv, cert_key, e)
  local id, new, claim_time = e[4], e[5], e[6]
  -- A certificate hash of another type fails this read, before anything is written.
  local cur = redis.call('HMGET', cert_key, 'status', 'issuedAt', 'claimedAt', 'expiresAt')
  local old = cur[1]
  if not old then return 'TA_CERT_NOT_FOUND no certification ' .. id end
  if old == new then return 0 end
  local issued_at, old_claimed = cur[2] or '', cur[3] or ''
  if new == 'claimed' and claim_time ~= '' and claim_time == old_claimed and ALLOWED.claimed[old] then
    return 0
  end
  if not (ALLOWED[old] and ALLOWED[old][new]) or not STATUS_KEY[new] then
    return 'TA_ILLEGAL_TRANSITION certification ' .. id .. ' cannot go from ' .. old .. ' to ' .. new
  end
  local new_claimed = old_claimed
  -- Times parsed once, only where used (false: absent; nil: add_claim parses if it needs).
  local issued, claimed, expires
  if new == 'claimed' then
    claimed = parse_ts(claim_time)
    if not claimed then return 'TA_BAD_INPUT claim time does not parse: ' .. claim_time end
    expires = parse_ts(cur[4] or '')
    if expires and claimed >= expires then
      return 'TA_CERT_EXPIRED certification ' .. id .. ' expired at ' .. cur[4]
    end
    issued = parse_ts(issued_at) or false
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
  -- The claim figures move only when the certificate's part in them does (see add_claim).
  if new_claimed ~= old_claimed or (old == 'claimed' and old_claimed == '') then
    add_claim(k[STATS], old, issued_at, old_claimed, -1, issued)
    add_claim(k[STATS], new, issued_at, new_claimed, 1, issued, claimed)
  end
  if STATUS_KEY[old] then
    hincr(k[STATS], 'set:' .. old, -1)
    redis.call('SREM', k[STATUS_KEY[old]], id)
  end
  hincr(k[STATS], 'set:' .. new, 1)
  redis.call('SADD', k[STATUS_KEY[new]], id)
  if EXPIRY_KEY[old] then redis.call('ZREM', k[EXPIRY_KEY[old]], id) end
  if EXPIRY_KEY[new] and expires then
    redis.call('ZADD', k[EXPIRY_KEY[new]], int(expires), id)
  end
  touch(k[CACHE])
  return 1
end
