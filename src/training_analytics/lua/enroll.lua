-- Event E: a learner enrols in a course.
-- group keys: 1 enrollments set, 2 global day counter, 3 global enrollment series,
--   4 course enrollments-by-day hash, 5 course stats hash, 6 course cache, 7 overview cache
-- group values: 1 course id, 2 day (YYYY-MM-DD in the configured zone)
-- own key: the progress hash;  args (event[4..]): user id, epoch ms (text)
-- Enrolling twice counts once. Progress saved before the enrolment joins the course averages now.
local function enroll(gk, gv, user, ms, progress_key)
  if sadd(gk[1], user) == 0 then return 0 end
  incr(gk[2], 1)
  zadd(gk[3], ms, ms .. ':' .. user .. ':' .. gv[1])
  hincr(gk[4], gv[2], 1)
  if progress_may_exist or progress_written[progress_key] then
    add_progress(progress_key, gk[5])
  end
  touch(gk[6])
  touch(gk[7])
  return 1
end
MEMBER_SETS['E'] = {1}
HANDLERS['E'] = function(gk, gv, progress_key, e) return enroll(gk, gv, e[4], e[5], progress_key) end
