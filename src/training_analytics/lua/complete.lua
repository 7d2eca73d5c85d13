-- Event C: a learner completes a course (enrolling first if needed, at the same moment).
-- keys: 1-7 as enroll.lua, 8 completions set, 9 global completion day counter,
--       10 global completion series, 11 course completions-by-day hash, 12 progress hash
-- args: as enroll.lua
HANDLERS['C'] = function(k, a)
  local enrolled = enroll(k, a, k[12])
  if redis.call('SADD', k[8], a[1]) == 0 then return enrolled end
  incr(k[9], 1)
  zadd(k[10], a[2], a[2] .. ':' .. a[1] .. ':' .. a[3])
  hincr(k[11], a[4], 1)
  touch(k[6])
  touch(k[7])
  return 1
end
