-- Apply a batch of events atomically, in order. One event is a batch of one.
--
-- KEYS[1]  the index marker (training:agg:schema). Without it the derived keys are complete
--          only on a store that has no training events yet (KEYS[2..4] absent): there the
--          marker is set by the first event that changes anything; elsewhere nothing is written
--          and the caller is told to reindex
-- KEYS[2..4] the base keys every older-system event left behind: both event series, all certs
-- KEYS[5]  the store version: raised once by a call in which some event changed the store
--          In the cluster layout a call touches one hash tag, and these five are that tag's:
--          its marker, three of its base keys (a course: its enrolment and completion sets and
--          its enrolment series; a certificate bucket: its all set and issued and claimed
--          sets) and its version. Group keys the layout lacks (global counters and series,
--          caches) are sent as position 0: handlers see nil and skip them.
-- KEYS[6..] every key the events use, each once; events refer to them by position
-- ARGV[1]  JSON [groups, events] (one event comes flat instead, as described below). A group
--          is [[key positions], [values]] shared by many events (a course's keys for one day).
--          An event is [kind, group, own key position (0: none), args...]: its handler is
--          called with the group's keys, the group's values, the event's own key and the event
--          itself (args from event[4]). One JSON document keeps the protocol's per-argument
--          cost and repeated key names off the bulk-ingest path.
--          A streamed batch carries a third element, [sequence key position, n]: it runs only
--          if that key holds n - 1 (absent: 0), and then stores n, so that batches pipelined on
--          one connection apply in submission order even when one of them fails for a reason
--          outside the script (its code flushed): those behind it are refused, write nothing,
--          and are sent again after it.
--
-- Every event checks the keys it writes before its first write (the check_* helpers), so a
-- refused event writes nothing, whatever another program left in those keys.
--
-- Replies one entry per event: 1 changed the store, 0 changed nothing (a replay), or an error
-- string "TA_<CODE> message" for an event that was refused and wrote nothing. A refusal does not
-- stop the batch: the events are independent facts, and each one's checks run before it writes.
local flat = string.byte(ARGV[1]) ~= 91  -- '[' opens a JSON document
begin_call(flat)
local unmarked = redis.call('EXISTS', KEYS[1]) == 0
if unmarked and redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4]) > 0 then
  return redis.error_reply('TA_NOT_INDEXED derived keys are missing; run reindex')
end
local groups, group_keys, events
local sequence_key, sequence
if not flat then
  local doc = cjson.decode(ARGV[1])
  groups, events = doc[1], doc[2]
  if doc[3] then
    sequence_key, sequence = KEYS[doc[3][1]], doc[3][2]
    local last = tonumber(redis.call('GET', sequence_key) or '0')
    if last ~= sequence - 1 then
      return redis.error_reply('TA_OUT_OF_ORDER batch ' .. sequence .. ' of its stream arrived after batch ' .. tostring(last))
    end
  end
  group_keys = {}
  for g, group in ipairs(groups) do
    local keys = {}
    for j, position in ipairs(group[1]) do keys[j] = KEYS[position] end
    group_keys[g] = keys
  end
else
  -- One event, flat (a single write: decoding JSON would cost more than the event). KEYS[6..]
  -- are its group's keys, then its own key when ARGV[2] is "1"; ARGV[3] counts the group
  -- values that follow; the event's arguments come after them.
  local own = ARGV[2] == '1' and #KEYS or 0
  local last_value = 3 + tonumber(ARGV[3])
  -- Handlers read their group's keys by position, so the own key that ends the group's key
  -- table here is never read as one of them; each table is built in one constructor.
  local event = {ARGV[1], 1, own, unpack(ARGV, last_value + 1)}
  groups, group_keys, events = {{nil, {unpack(ARGV, 4, last_value)}}}, {{unpack(KEYS, 6)}}, {event}
end
if not immediate then
  -- Read ahead, once per batch: learners' membership of the sets the events join, and whether
  -- each course has progress saved before enrolment (on bulk imports none has, and enrolments
  -- then read nothing per learner).
  local wanted = {}
  for _, event in ipairs(events) do
    local kind, keys = event[1], group_keys[event[2]]
    local sets = MEMBER_SETS[kind]
    if sets and keys then
      for _, index in ipairs(sets) do
        local key = keys[index]
        local members = wanted[key]
        if not members then members = {}; wanted[key] = members end
        members[#members + 1] = event[4]
      end
      local unenrolled = (kind == 'E' or kind == 'C') and keys[UNENROLLED]
      if unenrolled and unenrolled_may_exist[unenrolled] == nil then
        unenrolled_may_exist[unenrolled] = redis.call('EXISTS', unenrolled) == 1
      end
    end
  end
  for key, members in pairs(wanted) do
    -- One learner's SADD is cheaper than reading ahead.
    if #members > 1 then read_ahead(key, members) end
  end
end
local results = {}
local count, first = #events, 1
while first <= count do
  local kind, group = events[first][1], events[first][2]
  local run, last = RUNS[kind], first
  if run then
    while last < count and events[last + 1][1] == kind and events[last + 1][2] == group do
      last = last + 1
    end
  end
  if not (last > first and run(group_keys[group], groups[group][2], events, first, last, results)) then
    for e = first, last do
      local event = events[e]
      local handler = HANDLERS[event[1]]
      if not handler then
        results[e] = 'TA_BAD_INPUT unknown event kind ' .. tostring(event[1])
      else
        -- A command error inside one event (a key of the wrong type, written by something
        -- else) must not abandon the batch: the other events' deferred counters still have to
        -- be written.
        local ok, result = pcall(handler, group_keys[event[2]], groups[event[2]][2], KEYS[event[3]], event)
        if ok then
          results[e] = result
        else
          results[e] = 'TA_STORE_ERROR ' .. tostring(type(result) == 'table' and result.err or result)
        end
      end
    end
  end
  first = last + 1
end
flush()
if sequence_key then redis.call('SET', sequence_key, sequence, 'PX', 86400000) end
for _, result in ipairs(results) do
  -- pcall: a version key something else broke must not fail a call whose writes are done.
  if result == 1 then redis.pcall('INCR', KEYS[5]); break end
end
if unmarked then
  for _, result in ipairs(results) do
    if result == 1 then
      redis.call('SET', KEYS[1], '1')
      break
    end
  end
end
return results
