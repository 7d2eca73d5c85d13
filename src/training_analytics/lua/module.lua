-- Event S: a learner starts a module.
-- group keys: 1 module started set, 2 course cache (none in the cluster layout: nil);  args (event[4..]): user id
MEMBER_SETS['S'] = {1}
HANDLERS['S'] = function(gk, gv, _, e)
  -- SADD is the event's first write: a set of another type refuses it before anything is written.
  if sadd(gk[1], e[4]) == 0 then return 0 end
  touch(gk[2])
  return 1
end

-- Event M: a learner completes a module (which implies starting it).
-- group keys: 1 module started set, 2 course cache, 3 module completed set;  args: user id
MEMBER_SETS['M'] = {1, 3}
HANDLERS['M'] = function(gk, gv, _, e)
  -- The first SADD fails before anything is written if its key is not a set; the second's key
  -- is checked before it.
  local refused = check_type(gk[3], 'set')
  if refused then return refused end
  local started = sadd(gk[1], e[4])
  local completed = sadd(gk[3], e[4])
  if started + completed == 0 then return 0 end
  touch(gk[2])
  return 1
end
