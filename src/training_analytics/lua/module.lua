-- Event S: a learner starts a module.
-- keys: 1 module started set, 2 course cache;  args: 1 user id
HANDLERS['S'] = function(k, a)
  if redis.call('SADD', k[1], a[1]) == 0 then return 0 end
  touch(k[2])
  return 1
end

-- Event M: a learner completes a module (which implies starting it).
-- keys: 1 module started set, 2 course cache, 3 module completed set;  args: 1 user id
HANDLERS['M'] = function(k, a)
  local started = redis.call('SADD', k[1], a[1])
  local completed = redis.call('SADD', k[3], a[1])
  if started + completed == 0 then return 0 end
  touch(k[2])
  return 1
end
