-- Event E: a learner enrols in a course.
-- keys: 1 enrollments set, 2 global day counter, 3 global enrollment series,
--       4 course enrollments-by-day hash, 5 course stats hash, 6 course cache, 7 overview cache,
--       8 progress hash
-- args: 1 user id, 2 epoch ms (string), 3 course id, 4 day (YYYY-MM-DD in the configured zone)
-- Enrolling twice counts once. Progress saved before the enrolment joins the course averages now.
local function enroll(k, a, progress_key)
  if redis.call('SADD', k[1], a[1]) == 0 then return 0 end
  incr(k[2], 1)
  zadd(k[3], a[2], a[2] .. ':' .. a[1] .. ':' .. a[3])
  hincr(k[4], a[4], 1)
  add_progress(progress_key, k[5], 1)
  touch(k[6])
  touch(k[7])
  return 1
end
HANDLERS['E'] = function(k, a) return enroll(k, a, k[8]) end
