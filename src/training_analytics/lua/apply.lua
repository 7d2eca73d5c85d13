-- Apply a batch of events atomically, in order. One event is a batch of one.
--
-- KEYS[1]  the index marker (training:agg:schema); without it the derived keys are not
--          complete, so nothing is written (the caller reindexes or initialises an empty store)
-- KEYS[2..] every key the events use, each once; events refer to them by position
-- ARGV     events, each: kind, key count n, n positions into KEYS, arg count m, m args
--
-- Replies one entry per event: 1 changed the store, 0 changed nothing (a replay), or an error
-- string "TA_<CODE> message" for an event that was refused and wrote nothing. A refusal does not
-- stop the batch: the events are independent facts, and each one's checks run before it writes.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('TA_NOT_INDEXED derived keys are missing; run reindex')
end
local results = {}
local i, n = 1, #ARGV
while i <= n do
  local kind = ARGV[i]
  local nk = tonumber(ARGV[i + 1])
  local k = {}
  for j = 1, nk do k[j] = KEYS[tonumber(ARGV[i + 1 + j])] end
  i = i + 2 + nk
  local na = tonumber(ARGV[i])
  local a = {}
  for j = 1, na do a[j] = ARGV[i + j] end
  i = i + 1 + na
  local handler = HANDLERS[kind]
  if handler then
    results[#results + 1] = handler(k, a)
  else
    results[#results + 1] = 'TA_BAD_INPUT unknown event kind ' .. kind
  end
end
flush()
return results
