-- Event S: a learner starts a module.
-- group keys: 1 module started set, 2 course cache;  args (event[4..]): user id
HANDLERS['S'] = function(gk, gv, _, e)
  if redis.call('SADD', gk[1], e[4]) == 0 then return 0 end
  touch(gk[2])
  return 1
end

-- Event M: a learner completes a module (which implies starting it).
-- group keys: 1 module started set, 2 course cache, 3 module completed set;  args: user id
HANDLERS['M'] = function(gk, gv, _, e)
  local started = redis.call('SADD', gk[1], e[4])
  local completed = redis.call('SADD', gk[3], e[4])
  if started + completed == 0 then return 0 end
  touch(gk[2])
  return 1
end
