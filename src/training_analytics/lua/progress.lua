-- Event P: save a learner's course progress (the seed's progress hash, all fields).
-- group keys: 1 enrollments set, 2 course stats hash, 3 course cache (none in the cluster
--   layout: nil), 4 course hash of progress saved before enrolment;  own key: progress hash
-- args (event[4..]): user id, the values of PROGRESS_FIELDS in order ("" when absent), then
--   the new figures: score in thousandths and ms to complete ("" when the averages skip it),
--   which the client computes from those values by progress_figures' rules
-- An enrolled learner's figures move in the course averages from the stored hash's to the new
-- ones; a learner not enrolled yet has the new figures kept until they enrol.
local PROGRESS_FIELDS = {'status', 'moduleProgress', 'overallScore', 'startedAt', 'completedAt',
  'lastAccessedAt', 'totalTimeSpentMinutes', 'certificateId', 'certificateIssuedAt'}
MEMBER_SETS['P'] = {1}
HANDLERS['P'] = function(gk, gv, progress_key, e)
  local user = e[4]
  local milli, time = tonumber(e[5 + #PROGRESS_FIELDS]), tonumber(e[6 + #PROGRESS_FIELDS])
  -- Reads first (a key of another type fails them before anything is written), then checks of
  -- what the event writes that no read covered.
  local refused, old
  local enrolled = sismember(gk[1], user)
  if enrolled then
    old = redis.pcall('HMGET', progress_key, 'overallScore', 'startedAt', 'completedAt')
    if old.err then return wrong(progress_key, 'another type than a hash') end
    refused = check_hash_counters(gk[2], SCORE_FIELDS)
  else
    refused = check_type(progress_key, 'hash') or check_type(gk[4], 'hash')
  end
  if refused then return refused end
  if enrolled then
    local old_milli, old_time = progress_figures(old[1], old[2], old[3])
    shift(gk[2], 'score_milli_sum', 'score_n', old_milli, milli)
    shift(gk[2], 'time_ms_sum', 'time_n', old_time, time)
  elseif milli or time then
    redis.call('HSET', gk[4], user, figures_text(milli, time))
    unenrolled_may_exist[gk[4]] = true
  else
    redis.call('HDEL', gk[4], user)
  end
  local fields = {}
  for i, name in ipairs(PROGRESS_FIELDS) do
    fields[#fields + 1] = name
    fields[#fields + 1] = e[4 + i]
  end
  redis.call('HSET', progress_key, unpack(fields))
  touch(gk[3])
  return 1
end
