-- Apply a batch of events atomically, in order. One event is a batch of one.
--
-- KEYS[1]  the index marker (training:agg:schema). Without it the derived keys are complete
--          only on a store that has no training events yet (KEYS[2..4] absent): there the
--          marker is set by the first event that changes anything; elsewhere nothing is written
--          and the caller is told to reindex
-- KEYS[2..4] the base keys every older-system event left behind: both event series, all certs
-- KEYS[5..] every key the events use, each once; events refer to them by position
-- ARGV[1]  JSON [groups, events]. A group is [[key positions], [values]] shared by many events
--          (a course's keys for one day, say). An event is [kind, group, own key position (0:
--          none), args...]: its handler is called with the group's keys, the group's values, the
--          event's own key and the event itself (args from event[4]). One JSON document keeps
--          the protocol's per-argument cost and repeated key names off the bulk-ingest path.
--
-- Replies one entry per event: 1 changed the store, 0 changed nothing (a replay), or an error
-- string "TA_<CODE> message" for an event that was refused and wrote nothing. A refusal does not
-- stop the batch: the events are independent facts, and each one's checks run before it writes.
local unmarked = redis.call('EXISTS', KEYS[1]) == 0
if unmarked and redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4]) > 0 then
  return redis.error_reply('TA_NOT_INDEXED derived keys are missing; run reindex')
end
local doc = cjson.decode(ARGV[1])
local groups, events = doc[1], doc[2]
local group_keys = {}
for g, group in ipairs(groups) do
  local keys = {}
  for j, position in ipairs(group[1]) do keys[j] = KEYS[position] end
  group_keys[g] = keys
end
-- Learners' progress hashes are read on enrolment only when they exist; on bulk imports of new
-- learners none does, and one EXISTS over all of them saves a read per enrolment. (A lone
-- enrolment just reads its hash: the EXISTS would be an extra command, not one saved.)
local progress_keys = {}
for _, event in ipairs(events) do
  if event[1] == 'E' or event[1] == 'C' then progress_keys[#progress_keys + 1] = KEYS[event[3]] end
end
if #progress_keys == 1 then progress_may_exist = true end
for start = 1, #progress_keys, 1000 do
  local last = math.min(start + 999, #progress_keys)
  if progress_may_exist or redis.call('EXISTS', unpack(progress_keys, start, last)) > 0 then
    progress_may_exist = true
    break
  end
end

local results = {}
for e, event in ipairs(events) do
  local handler = HANDLERS[event[1]]
  if not handler then
    results[e] = 'TA_BAD_INPUT unknown event kind ' .. tostring(event[1])
  else
    -- A command error inside one event (a key of the wrong type, written by something else)
    -- must not abandon the batch: the other events' deferred counters still have to be written.
    local ok, result = pcall(handler, group_keys[event[2]], groups[event[2]][2], KEYS[event[3]], event)
    if ok then
      results[e] = result
    else
      results[e] = 'TA_STORE_ERROR ' .. tostring(type(result) == 'table' and result.err or result)
    end
  end
end
flush()
if unmarked then
  for _, result in ipairs(results) do
    if result == 1 then
      redis.call('SET', KEYS[1], '1')
      break
    end
  end
end
return results
