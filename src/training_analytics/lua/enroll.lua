-- Event E: a learner enrols in a course.
-- group keys: 1 enrollments set, 2 global day counter, 3 enrollment series (global; the
--   course's own in the cluster layout), 4 course enrollments-by-day hash, 5 course stats hash,
--   6 course cache, 7 overview cache, 8 course hash of progress saved before enrolment.
--   The cluster layout has no 2, 6, 7 (position 0 in the document: nil here)
-- group values: 1 course id, 2 day (YYYY-MM-DD in the configured zone)
-- own key: none;  args (event[4..]): user id, epoch ms (text)
-- Enrolling twice counts once. Progress saved before the enrolment joins the course averages now.

-- nil when the keys an enrolment writes besides its set (whose SADD is its first write, and
-- fails before anything is written) and its course sums (checked when it has figures to add)
-- can take their writes; else the refusal.
local function check_enroll(gk, gv)
  return (gk[2] and check_counter(gk[2])) or check_type(gk[3], 'zset')
    or check_hash_counter(gk[4], gv[2])
end

-- Enrol: 1 enrolled now, 0 was enrolled, or the refusal (nothing written).
local function enroll(gk, gv, user, ms)
  local unenrolled, figures = gk[UNENROLLED], false
  if unenrolled_may_exist[unenrolled] ~= false then
    figures = redis.pcall('HGET', unenrolled, user)
    if type(figures) == 'table' then return wrong(unenrolled, 'another type than a hash') end
  end
  local refused = check_enroll(gk, gv) or (figures and check_hash_counters(gk[5], SCORE_FIELDS))
  if refused then return refused end
  if sadd(gk[1], user) == 0 then return 0 end
  if gk[2] then incr(gk[2], 1) end
  zadd(gk[3], ms, ms .. ':' .. user .. ':' .. gv[1])
  hincr(gk[4], gv[2], 1)
  hincr(gk[5], 'set:enrollments', 1)  -- the set's size as this library knows it (drift check)
  if figures then
    -- Progress saved before enrolling now counts in the course averages.
    local milli, time = figures_of(figures)
    shift(gk[5], 'score_milli_sum', 'score_n', nil, milli)
    shift(gk[5], 'time_ms_sum', 'time_n', nil, time)
    redis.call('HDEL', unenrolled, user)
  end
  touch(gk[6])
  touch(gk[7])
  return 1
end
MEMBER_SETS['E'] = {1}
HANDLERS['E'] = function(gk, gv, _, e) return enroll(gk, gv, e[4], e[5]) end

-- A run of enrolments in one course on one day, in a course without progress saved before
-- enrolment (a bulk import): set membership read ahead, counters added once.
RUNS['E'] = function(gk, gv, events, first, last, results)
  local known = set_members[gk[1]]
  if not known or unenrolled_may_exist[gk[UNENROLLED]] ~= false then return false end
  -- A key of the wrong type: each event is refused by its handler. (The set was read ahead, so
  -- it is one.)
  if check_enroll(gk, gv) then return false end
  local adds, course = pending_sadd[gk[1]], gv[1]
  local members = pending_zadd[gk[3]]
  if not members then members = {}; pending_zadd[gk[3]] = members end
  local added = 0
  for i = first, last do
    local event = events[i]
    local user, ms = event[4], event[5]
    if known[user] then
      results[i] = 0
    else
      known[user] = true
      adds[#adds + 1] = user
      members[#members + 1] = ms
      members[#members + 1] = ms .. ':' .. user .. ':' .. course
      added = added + 1
      results[i] = 1
    end
  end
  if added > 0 then
    if gk[2] then incr(gk[2], added) end
    hincr(gk[4], gv[2], added)
    hincr(gk[5], 'set:enrollments', added)
    touch(gk[6])
    touch(gk[7])
  end
  return true
end
