-- Event P: save a learner's course progress (the seed's progress hash, all fields).
-- group keys: 1 enrollments set, 2 course stats hash, 3 course cache (none in the cluster
--   layout: nil), 4 course hash of progress saved before enrolment;  own key: progress hash
-- args (event[4..]): user id, the values of PROGRESS_FIELDS in order ("" when absent), then
--   the new figures: score in thousandths and ms to complete ("" when the averages skip it),
--   which the client computes from those values by progress_figures' rules
-- An enrolled learner's figures move in the course averages from the stored hash's to the new
-- ones; a learner not enrolled yet has the new figures kept until they enrol. A save whose
-- values the hash already holds, byte for byte, changes nothing (0: a replay).
local PROGRESS_FIELDS = {'status', 'moduleProgress', 'overallScore', 'startedAt', 'completedAt',
  'lastAccessedAt', 'totalTimeSpentMinutes', 'certificateId', 'certificateIssuedAt'}
local FIELD_COUNT = #PROGRESS_FIELDS
-- Where the fields the averages read sit among PROGRESS_FIELDS.
local SCORE, STARTED, COMPLETED = 3, 4, 5
MEMBER_SETS['P'] = {1}
HANDLERS['P'] = function(gk, gv, progress_key, e)
  local user = e[4]
  local milli, time = tonumber(e[5 + FIELD_COUNT]), tonumber(e[6 + FIELD_COUNT])
  -- Reads first (a key of another type fails them before anything is written), then checks of
  -- what the event writes that no read covered.
  local stored = redis.pcall('HMGET', progress_key, unpack(PROGRESS_FIELDS))
  if stored.err then return wrong(progress_key, 'another type than a hash') end
  -- The fields to write: those whose stored value differs (an absent field, false here, differs
  -- from every value, "" included). Interned Lua strings compare in constant time.
  local fields = {}
  for i = 1, FIELD_COUNT do
    local value = e[4 + i]
    if stored[i] ~= value then
      fields[#fields + 1] = PROGRESS_FIELDS[i]
      fields[#fields + 1] = value
    end
  end
  local enrolled = sismember(gk[1], user)
  -- A learner not enrolled has these figures kept ("milli|ms"; false: none to keep).
  local figures = not enrolled and (milli or time) and figures_text(milli, time) or false
  if #fields == 0 then
    -- The hash holds these values: an enrolled learner's figures in the averages are the new
    -- ones already; a learner not enrolled has them kept unless something else changed that
    -- entry.
    if enrolled then return 0 end
    local kept = redis.pcall('HGET', gk[4], user)
    if type(kept) == 'table' then return wrong(gk[4], 'another type than a hash') end
    if kept == figures then return 0 end
  end
  local refused
  if enrolled then
    refused = check_hash_counters(gk[2], SCORE_FIELDS)
  else
    refused = check_type(gk[4], 'hash')
  end
  if refused then return refused end
  if enrolled then
    -- The stored figures, parsed only where the text differs from the new (equal text gives
    -- equal figures: the client's rules are these).
    local old_milli, old_time = milli, time
    if stored[SCORE] ~= e[4 + SCORE] then
      old_milli = progress_figures(stored[SCORE], nil, nil)
    end
    if stored[STARTED] ~= e[4 + STARTED] or stored[COMPLETED] ~= e[4 + COMPLETED] then
      local _
      _, old_time = progress_figures(nil, stored[STARTED], stored[COMPLETED])
    end
    shift(gk[2], 'score_milli_sum', 'score_n', old_milli, milli)
    shift(gk[2], 'time_ms_sum', 'time_n', old_time, time)
  elseif figures then
    redis.call('HSET', gk[4], user, figures)
    unenrolled_may_exist[gk[4]] = true
  else
    redis.call('HDEL', gk[4], user)
  end
  if #fields > 0 then redis.call('HSET', progress_key, unpack(fields)) end
  touch(gk[3])
  return 1
end
