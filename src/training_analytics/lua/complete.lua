-- Event C: a learner completes a course (enrolling first if needed, at the same moment).
-- keys: 1-8 as enroll.lua, 9 completions set, 10 global completion day counter,
--       11 global completion series, 12 course completions-by-day hash
-- args: as enroll.lua
HANDLERS['C'] = function(k, a)
  local enrolled = enroll(k, a)
  if redis.call('SADD', k[9], a[1]) == 0 then return enrolled end
  incr(k[10], 1)
  zadd(k[11], a[3], a[4])
  hincr(k[12], a[2], 1)
  touch(k[7])
  touch(k[8])
  return 1
end
