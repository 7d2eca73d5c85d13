-- Event C: a learner completes a course (enrolling first if needed, at the same moment).
-- group keys: 1-8 as enroll.lua, 9 completions set, 10 global completion day counter,
--   11 completion series (global; the course's own in the cluster layout), 12 course
--   completions-by-day hash. The cluster layout has no 10 (nil here)
-- group values, own key, args: as enroll.lua
MEMBER_SETS['C'] = {1, 9}
HANDLERS['C'] = function(gk, gv, _, e)
  local user, ms = e[4], e[5]
  -- The completion's keys first, then enroll() checks its own before its first write.
  local refused = check_type(gk[9], 'set') or (gk[10] and check_counter(gk[10]))
    or check_type(gk[11], 'zset') or check_hash_counter(gk[12], gv[2])
  if refused then return refused end
  local enrolled = enroll(gk, gv, user, ms)
  if type(enrolled) == 'string' then return enrolled end
  if sadd(gk[9], user) == 0 then return enrolled end
  if gk[10] then incr(gk[10], 1) end
  zadd(gk[11], ms, ms .. ':' .. user .. ':' .. gv[1])
  hincr(gk[12], gv[2], 1)
  hincr(gk[5], 'set:completions', 1)  -- the set's size as this library knows it (drift check)
  touch(gk[6])
  touch(gk[7])
  return 1
end
