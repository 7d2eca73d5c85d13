-- Event C: a learner completes a course (enrolling first if needed, at the same moment).
-- group keys: 1-7 as enroll.lua, 8 completions set, 9 global completion day counter,
--   10 global completion series, 11 course completions-by-day hash
-- group values, own key, args: as enroll.lua
MEMBER_SETS['C'] = {1, 8}
HANDLERS['C'] = function(gk, gv, progress_key, e)
  local user, ms = e[4], e[5]
  local enrolled = enroll(gk, gv, user, ms, progress_key)
  if sadd(gk[8], user) == 0 then return enrolled end
  incr(gk[9], 1)
  zadd(gk[10], ms, ms .. ':' .. user .. ':' .. gv[1])
  hincr(gk[11], gv[2], 1)
  touch(gk[6])
  touch(gk[7])
  return 1
end
