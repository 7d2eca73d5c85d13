-- Read only: the cardinality of every set in KEYS, in order.
-- KEYS: sets (enrolments, completions, module starts...);  ARGV: none
-- One script call instead of a pipeline of SCARDs: the client builds and parses one command
-- whatever the number of courses or modules.
local counts = {}
for i, key in ipairs(KEYS) do counts[i] = redis.call('SCARD', key) end
return counts
