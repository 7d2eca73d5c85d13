-- Event E: a learner enrols in a course.
-- keys: 1 enrollments set, 2 progress hash, 3 global day counter, 4 global enrollment series,
--       5 course enrollments-by-day hash, 6 course stats hash, 7 course cache, 8 overview cache
-- args: 1 user id, 2 day (YYYY-MM-DD in the configured zone), 3 epoch ms, 4 series member
-- Enrolling twice counts once. Progress saved before the enrolment joins the course averages now.
local function enroll(k, a)
  if redis.call('SADD', k[1], a[1]) == 0 then return 0 end
  incr(k[3], 1)
  zadd(k[4], a[3], a[4])
  hincr(k[5], a[2], 1)
  add_progress(k[2], k[6], 1)
  touch(k[7])
  touch(k[8])
  return 1
end
HANDLERS['E'] = enroll
