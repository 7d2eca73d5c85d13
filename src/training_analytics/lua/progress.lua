-- Event P: save a learner's course progress (the seed's progress hash, all fields).
-- group keys: 1 enrollments set, 2 course stats hash, 3 course cache;  own key: progress hash
-- args (event[4..]): user id, then the values of PROGRESS_FIELDS in order ("" when absent)
local PROGRESS_FIELDS = {'status', 'moduleProgress', 'overallScore', 'startedAt', 'completedAt',
  'lastAccessedAt', 'totalTimeSpentMinutes', 'certificateId', 'certificateIssuedAt'}
HANDLERS['P'] = function(gk, gv, progress_key, e)
  local enrolled = redis.call('SISMEMBER', gk[1], e[4]) == 1
  if enrolled then add_progress(progress_key, gk[2], -1) end
  local fields = {}
  for i, name in ipairs(PROGRESS_FIELDS) do
    fields[#fields + 1] = name
    fields[#fields + 1] = e[4 + i]
  end
  redis.call('HSET', progress_key, unpack(fields))
  progress_written[progress_key] = true
  if enrolled then add_progress(progress_key, gk[2], 1) end
  touch(gk[3])
  return 1
end
