-- Shared by every write script: parsing rules and deferred counter updates.
--
-- parse_ts and parse_number follow training_analytics/_time.py and helpers.py exactly, so that
-- figures maintained here equal those reindex rebuilds in Python.

local function days_in_month(y, m)
  if m == 2 then
    if (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 then return 29 end
    return 28
  end
  if m == 4 or m == 6 or m == 9 or m == 11 then return 30 end
  return 31
end

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- Epoch milliseconds of a valid date and time, or nil.
local function to_epoch_ms(y, mo, d, h, mi, sec, ms, offset)
  if mo < 1 or mo > 12 or d < 1 or d > days_in_month(y, mo) or y < 1 then return nil end
  if h > 23 or mi > 59 or sec > 59 then return nil end
  return ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + sec * 1000 + ms - offset
end

-- Epoch milliseconds of YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|(+|-)HH[:]MM], or nil.
local function parse_ts(s)
  if not s or s == '' then return nil end
  -- The stored form (every write normalises to it): one match without captures says it is,
  -- then its digits are read as bytes (half the time of seven captures and tonumber()s).
  if string.find(s, '^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$') then
    local y1, y2, y3, y4, _, mo1, mo2, _, d1, d2, _, h1, h2, _, mi1, mi2, _, s1, s2, _, f1, f2, f3 =
      string.byte(s, 1, 23)
    -- Each digit byte is its value + 48.
    return to_epoch_ms(((y1 * 10 + y2) * 10 + y3) * 10 + y4 - 53328, mo1 * 10 + mo2 - 528,
      d1 * 10 + d2 - 528, h1 * 10 + h2 - 528, mi1 * 10 + mi2 - 528, s1 * 10 + s2 - 528,
      (f1 * 10 + f2) * 10 + f3 - 5328, 0)
  end
  local y, mo, d, h, mi, sec, ms, rest
  y, mo, d, rest = string.match(s, '^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$')
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  h, mi, sec, ms = 0, 0, 0, 0
  local first = string.sub(rest, 1, 1)
  if first == 'T' or first == ' ' then
    local hh, mm, tail = string.match(rest, '^.(%d%d):(%d%d)(.*)$')
    if not hh then return nil end
    h, mi, rest = tonumber(hh), tonumber(mm), tail
    local ss, tail2 = string.match(rest, '^:(%d%d)(.*)$')
    if ss then
      sec, rest = tonumber(ss), tail2
      local frac, tail3 = string.match(rest, '^%.(%d+)(.*)$')
      if frac then
        ms, rest = tonumber(string.sub(frac .. '00', 1, 3)), tail3
      end
    end
  end
  local offset = 0
  if rest == 'Z' then
    rest = ''
  elseif rest ~= '' then
    local sign, oh, om = string.match(rest, '^([+-])(%d%d):?(%d%d)$')
    if not sign then return nil end
    offset = (tonumber(oh) * 60 + tonumber(om)) * 60000
    if sign == '-' then offset = -offset end
  end
  return to_epoch_ms(y, mo, d, h, mi, sec, ms, offset)
end

-- JavaScript parseFloat: the longest leading decimal number, or nil.
local function parse_number(s)
  if not s or s == '' then return nil end
  local m = string.match(s, '^%s*([+-]?%d+%.?%d*[eE][+-]?%d+)')
    or string.match(s, '^%s*([+-]?%d+%.?%d*)')
    or string.match(s, '^%s*([+-]?%.%d+[eE][+-]?%d+)')
    or string.match(s, '^%s*([+-]?%.%d+)')
  if not m then return nil end
  return tonumber(m)
end

local function int(x)
  return string.format('%.0f', x)
end

-- Learners in sets (enrolled, completed, started a module). Bulk imports add thousands of
-- members to a few sets: apply.lua reads each such set's membership of the batch's learners
-- with one SMISMEMBER (read_ahead) and their SADDs wait for flush(), one per set. Sets not read
-- ahead are asked and written at once.
local set_members, pending_sadd = {}, {}

local function read_ahead(key, members)
  local known = {}
  for start = 1, #members, 1000 do
    local flags = redis.pcall('SMISMEMBER', key, unpack(members, start, math.min(start + 999, #members)))
    -- Not a set (written by something else): each event's own SADD reports it, event by event.
    if flags.err then return end
    for i, flag in ipairs(flags) do
      if flag == 1 then known[members[start + i - 1]] = true end
    end
  end
  set_members[key], pending_sadd[key] = known, {}
end

-- SADD of one member: 1 added, 0 already there.
local function sadd(key, member)
  local known = set_members[key]
  if not known then return redis.call('SADD', key, member) end
  if known[member] then return 0 end
  known[member] = true
  local adds = pending_sadd[key]
  adds[#adds + 1] = member
  return 1
end

local function sismember(key, member)
  local known = set_members[key]
  if not known then return redis.call('SISMEMBER', key, member) == 1 end
  return known[member] == true
end

-- Deferred updates: counters and sorted-set members accumulate while a batch runs and are
-- written once at the end (no handler reads them back). A batch of one event has nothing to
-- coalesce and would pay more for the tables than it saves, so apply.lua sets `immediate` and
-- its updates go out at once; only cache deletions, which handlers repeat, wait for flush().
local immediate = false
local pending_incr, pending_hincr, pending_zadd, pending_del = {}, {}, {}, {}

local function incr(key, n)
  if immediate then
    redis.call('INCRBY', key, int(n))
    return
  end
  pending_incr[key] = (pending_incr[key] or 0) + n
end

local function hincr(key, field, n)
  if immediate then
    redis.call('HINCRBY', key, field, int(n))
    return
  end
  local h = pending_hincr[key]
  if not h then h = {}; pending_hincr[key] = h end
  h[field] = (h[field] or 0) + n
end

local function zadd(key, score, member)
  if immediate then
    redis.call('ZADD', key, score, member)
    return
  end
  local z = pending_zadd[key]
  if not z then z = {}; pending_zadd[key] = z end
  z[#z + 1] = score
  z[#z + 1] = member
end

-- Cache keys to delete, each once, in a list (flush() sends them in one DEL without a pairs()
-- pass) and a set (pending_del) for the "once".
local dels = {}

local function touch(key)
  if key and not pending_del[key] then
    pending_del[key] = true
    dels[#dels + 1] = key
  end
end

local function delete_caches()
  for start = 1, #dels, 500 do
    redis.call('DEL', unpack(dels, start, math.min(start + 499, #dels)))
  end
end

local function flush()
  if immediate then
    delete_caches()
    return
  end
  for key, adds in pairs(pending_sadd) do
    for start = 1, #adds, 1000 do
      redis.call('SADD', key, unpack(adds, start, math.min(start + 999, #adds)))
    end
  end
  for key, n in pairs(pending_incr) do
    if n ~= 0 then redis.call('INCRBY', key, int(n)) end
  end
  for key, fields in pairs(pending_hincr) do
    for field, n in pairs(fields) do
      if n ~= 0 then redis.call('HINCRBY', key, field, int(n)) end
    end
  end
  for key, z in pairs(pending_zadd) do
    -- unpack() is bounded by the Lua stack: send at most 500 members per ZADD.
    for start = 1, #z, 1000 do
      redis.call('ZADD', key, unpack(z, start, math.min(start + 999, #z)))
    end
  end
  delete_caches()
end

-- Per course, whether its hash of progress saved before enrolment may have entries: true/false
-- once known (apply.lua asks once per batch; the progress handler sets true); nil: unknown, so
-- an enrolment asks for its learner's entry.
local unenrolled_may_exist = {}
-- Where enrolments and completions find that hash among their group's keys (see enroll.lua).
local UNENROLLED = 8

local NOTHING = {}  -- never written: what a batch of one event reads ahead

-- Checks before writes. Each event checks every key it is about to write, and every number it
-- is about to increment, before its first write: a key that another tool wrote with another type
-- (or a counter holding text) refuses the event with nothing written, instead of failing halfway
-- through it. The checks read, never write. In a batch a key is checked once (`checked`); a
-- single event checks each key once anyway and skips the bookkeeping.
local checked = {}

local function wrong(key, what)
  return 'TA_WRONG_TYPE WRONGTYPE ' .. key .. ' holds ' .. what .. ' (written by another program?)'
end

-- nil when `key` is absent or of type `expected`, else the refusal.
local function check_type(key, expected)
  if checked[key] then return nil end
  local found = redis.call('TYPE', key)
  found = found.ok or found
  if found ~= 'none' and found ~= expected then
    return wrong(key, 'a ' .. found .. ', not a ' .. expected)
  end
  if not immediate then checked[key] = true end
  return nil
end

-- What INCRBY / HINCRBY accept (the server's integer grammar), far enough from the 64-bit limit
-- that a batch's increments cannot overflow it.
local function is_counter_text(text)
  if text == '0' then return true end
  if #text > 19 or not string.match(text, '^%-?[1-9]%d*$') then return false end
  local n = tonumber(text)
  return n > -2^62 and n < 2^62
end

local function check_counter(key)
  if checked[key] then return nil end
  local value = redis.pcall('GET', key)
  if type(value) == 'table' then return wrong(key, 'another type than a string counter') end
  if value and not is_counter_text(value) then return wrong(key, 'a value that is not an integer') end
  if not immediate then checked[key] = true end
  return nil
end

-- One hash field to be incremented: a hash (or nothing), the field absent or an integer.
local function check_hash_counter(key, field)
  local memo
  if not immediate then
    memo = key .. '\n' .. field
    if checked[memo] then return nil end
  end
  local value = redis.pcall('HGET', key, field)
  if type(value) == 'table' then return wrong(key, 'another type than a hash') end
  if value and not is_counter_text(value) then
    return wrong(key, 'a field ' .. field .. ' that is not an integer')
  end
  if memo then checked[memo] = true end
  return nil
end

-- Several fields (a stats hash: always the same fields for one key).
local function check_hash_counters(key, fields)
  if checked[key] then return nil end
  local values = redis.pcall('HMGET', key, unpack(fields))
  if values.err then return wrong(key, 'another type than a hash') end
  for i = 1, #fields do
    local value = values[i]
    if value and not is_counter_text(value) then
      return wrong(key, 'a field ' .. fields[i] .. ' that is not an integer')
    end
  end
  if not immediate then checked[key] = true end
  return nil
end

local function begin_call(one_event)
  immediate = one_event
  pending_del, dels, unenrolled_may_exist, checked = {}, {}, {}, {}
  if one_event then
    -- It writes its updates at once: the tables of deferred ones stay unused.
    set_members = NOTHING
  else
    pending_incr, pending_hincr, pending_zadd = {}, {}, {}
    set_members, pending_sadd = {}, {}
  end
end

-- What one learner's progress adds to the course averages: the score in thousandths and the
-- time to complete in ms, each nil when the averages skip it (no positive score; no start, no
-- completion, or a completion not after the start).
local function progress_figures(score_text, started_text, completed_text)
  local milli, time = nil, nil
  local score = parse_number(score_text or '')
  if score and score > 0 then milli = math.floor(score * 1000 + 0.5) end
  local started, completed = parse_ts(started_text or ''), parse_ts(completed_text or '')
  if started and completed and completed > started then time = completed - started end
  return milli, time
end

-- Replace a learner's part of one course average (a sum and a count): old -> new figure.
local function shift(stats_key, sum_field, n_field, old, new)
  local n = (new and 1 or 0) - (old and 1 or 0)
  local sum = (new or 0) - (old or 0)
  if sum ~= 0 then hincr(stats_key, sum_field, sum) end
  if n ~= 0 then hincr(stats_key, n_field, n) end
end

-- A learner's figures, as the hash of progress saved before enrolment keeps them: "milli|ms",
-- either part empty when absent.
local function figures_text(milli, time)
  return (milli and int(milli) or '') .. '|' .. (time and int(time) or '')
end

local function figures_of(text)
  local milli, time = string.match(text, '^(%-?%d*)|(%-?%d*)$')
  return tonumber(milli), tonumber(time)
end

-- The fields of a course's stats hash (score and time sums) and of the credential stats.
local SCORE_FIELDS = {'score_milli_sum', 'score_n', 'time_ms_sum', 'time_n'}
local CLAIM_FIELDS = {'claimed', 'claim_ms_sum', 'claim_n'}

-- A certificate counts as claimed when its status is claimed or it carries a claim time.
-- `issued`, `claimed`: the two times already parsed (false: absent), or nil to parse them here.
local function add_claim(stats_key, status, issued_at, claimed_at, sign, issued, claimed)
  if status ~= 'claimed' and claimed_at == '' then return end
  hincr(stats_key, 'claimed', sign)
  if issued == nil then issued = parse_ts(issued_at) end
  if claimed == nil then claimed = parse_ts(claimed_at) end
  if issued and claimed and claimed > issued then
    hincr(stats_key, 'claim_ms_sum', sign * (claimed - issued))
    hincr(stats_key, 'claim_n', sign)
  end
end

local HANDLERS = {}
-- Per event kind, the group keys (by index) of the sets its learner (event[4]) joins or is
-- looked up in: apply.lua reads them ahead for a batch.
local MEMBER_SETS = {}
-- Per event kind, optionally, a handler for a run of consecutive events of that kind and group:
-- run(gk, gv, events, first, last, results) fills results[first..last] as the event handler
-- would, or returns false (changing nothing) to leave the run to it. Bulk imports spend most of
-- their server time on per-event calls between helpers; a run handler makes them table updates.
local RUNS = {}
