-- Settle deliveries of one wake stream for one consumer, each only while that
-- consumer still owns it in the group's pending list (XACK and XCLAIM take no
-- owner: a stale consumer could otherwise settle what another one took over).
-- KEYS[1] the scope's wake stream, KEYS[2..] one coalescing marker per entry
--   (wake_dedupe of its wake id, same slot), in ARGV order
-- ARGV: 1 group, 2 consumer, 3 op, 4 idle ms (nack: the entry's new idle time,
--   so it is claimable after claim_idle_ms - idle ms; else unused), 5.. entry ids
-- ops: ack      XACK, and drop the entry's marker if it still names this entry
--               (RX-10: coalescing lasts while the entry is unacknowledged)
--      nack     give it back: XCLAIM to itself with IDLE, JUSTID (the count goes
--               up when it is claimed again, which is the next attempt)
--      touch    reset its idle time (XCLAIM IDLE 0 JUSTID): a long handler keeps
--               its delivery, nobody claims it meanwhile
-- Batched: one XPENDING over the entries' id range, filtered to this consumer,
-- finds the ones it owns; only an entry not found there is looked up alone (to
-- tell "not pending" from "another consumer's"). Then one XACK (or XCLAIM) for
-- all owned entries and, for an ack, one MGET and one DEL for their markers.
-- Reply, per entry: 1 settled, 0 not pending any more (acked, or trimmed),
--   -1 refused (another consumer owns it now)
local group, me, op, idle = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local out = {}
if #ARGV < 5 then return out end

-- A stream id as two numbers, for the range's ends (an id beyond a double's
-- exact range can only fall outside the range: it is then looked up alone).
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function before(a, b)
  local ams, aseq = parse(a)
  local bms, bseq = parse(b)
  if ams == nil or bms == nil then return false end
  return ams < bms or (ams == bms and aseq < bseq)
end

local lo, hi = ARGV[5], ARGV[5]
for i = 6, #ARGV do
  if before(ARGV[i], lo) then lo = ARGV[i] end
  if before(hi, ARGV[i]) then hi = ARGV[i] end
end
local mine = {}
local limit = 2 * (#ARGV - 4) + 64
if parse(lo) ~= nil and parse(hi) ~= nil then
  for _, row in ipairs(redis.call('XPENDING', KEYS[1], group, lo, hi, limit, me)) do
    mine[row[1]] = true
  end
end

local owned, markers = {}, {}
local seen = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local state
  if seen[id] then
    state = 0
  elseif mine[id] then
    state = 1
  else
    local row = redis.call('XPENDING', KEYS[1], group, id, id, 1)[1]
    if not row then
      state = 0
    elseif row[2] ~= me then
      state = -1
    else
      state = 1
    end
  end
  seen[id] = true
  out[#out + 1] = state
  if state == 1 then
    owned[#owned + 1] = id
    markers[#markers + 1] = KEYS[i - 3] or false
  end
end
if #owned == 0 then return out end

-- In pieces: unpack() is bounded by the Lua stack.
local STEP = 4000
for s = 1, #owned, STEP do
  local e = math.min(s + STEP - 1, #owned)
  if op == 'ack' then
    redis.call('XACK', KEYS[1], group, unpack(owned, s, e))
  else
    local at = op == 'nack' and idle or 0
    local args = {'XCLAIM', KEYS[1], group, me, 0}
    for j = s, e do args[#args + 1] = owned[j] end
    args[#args + 1] = 'IDLE'
    args[#args + 1] = at
    args[#args + 1] = 'JUSTID'
    redis.call(unpack(args))
  end
end

if op == 'ack' then
  local keys, ids = {}, {}
  for j = 1, #owned do
    if markers[j] then
      keys[#keys + 1] = markers[j]
      ids[#ids + 1] = owned[j]
    end
  end
  for s = 1, #keys, STEP do
    local e = math.min(s + STEP - 1, #keys)
    local values = redis.call('MGET', unpack(keys, s, e))
    local stale = {}
    for j = s, e do
      if values[j - s + 1] == ids[j] then stale[#stale + 1] = keys[j] end
    end
    if #stale > 0 then redis.call('DEL', unpack(stale)) end
  end
end
return out
