-- Event P: save a learner's course progress (the seed's progress hash, all fields).
-- keys: 1 enrollments set, 2 course stats hash, 3 course cache, 4 progress hash
-- args: 1 user id, then the values of PROGRESS_FIELDS in order ("" for absent optional fields)
local PROGRESS_FIELDS = {'status', 'moduleProgress', 'overallScore', 'startedAt', 'completedAt',
  'lastAccessedAt', 'totalTimeSpentMinutes', 'certificateId', 'certificateIssuedAt'}
HANDLERS['P'] = function(k, a)
  local enrolled = redis.call('SISMEMBER', k[1], a[1]) == 1
  if enrolled then add_progress(k[4], k[2], -1) end
  local fields = {}
  for i, name in ipairs(PROGRESS_FIELDS) do
    fields[#fields + 1] = name
    fields[#fields + 1] = a[i + 1]
  end
  redis.call('HSET', k[4], unpack(fields))
  if enrolled then add_progress(k[4], k[2], 1) end
  touch(k[3])
  return 1
end
