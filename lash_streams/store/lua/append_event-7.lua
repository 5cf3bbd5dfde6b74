-- EV-2 steps 1, 3, 8, 9 in one atomic step (RX-3); the client already ran
-- validation and materialization (steps 4-7) against the registration whose
-- hash it passes here as a compare-and-set. The sequence is assigned here,
-- last + 1, so concurrent appenders never race on it (one call each).
-- The stored entry is compact (docs/keys.md): what cannot be derived, i.e. the
-- type, the payload JSON, the server time, the replay key and non-default
-- semantics; the reader rebuilds lash's full ProcessEvent from it.
-- KEYS: 1 record, 2 events stream, 3 replay hash, 4 type index (hash of packed
--       sequences), 5 wake index, 6 outbox, 7 lease hash
-- ARGV: 1 expected registration hash,
--       2 flags, three characters "0"/"1": a replay key was given, the event is
--         terminal, the event carries a wake,
--       3 replay key, 4 payload hash, 5 terminal status JSON ("" when not terminal),
--       6 the event type, 7 its field in the type index ("" when the type itself),
--       8 the payload JSON,
--       9 the materialized semantics JSON ("" for the default), 10 the number
--         standing in it for the sequence ("" for none: only an event-identity
--         wake dedupe key holds the sequence),
--       11 batch link this append requires ("" for none), 12 batch link it leaves
--         (a pipelined batch chains its appends to one process so that none can
--         land after an earlier one of the batch failed),
--       13 the request's wake target scope JSON ("" to use the record's, WK-5),
--       14..17 for a fenced write only (RX-12): the writer's lease token,
--         owner_id, incarnation_id, fencing token
-- A terminal request's OK and REPLAY replies end with the record's fields, so
-- complete_process answers from this one step (nothing left to fail after it).
-- The type index: field <type> holds how many events of it there are; field
-- <type>\0<chunk> holds the sequences of events (count - 1) // 12 ... as
-- packed 5-byte big-endian numbers, 12 to a chunk (60 bytes stay in the
-- hash's compact encoding). count_events-3 binary-searches them.
local CHUNK = 12
local keyed = string.sub(ARGV[2], 1, 1) == '1'
local terminal = string.sub(ARGV[2], 2, 2) == '1'
local waking = string.sub(ARGV[2], 3, 3) == '1'

local function pack5(n)
  local out = {}
  for i = 5, 1, -1 do
    out[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(out)
end

local function with_record(reply)
  if terminal then
    local fields = redis.call('HGETALL', KEYS[1])
    for i = 1, #fields do reply[#reply + 1] = fields[i] end
  end
  return reply
end

local state = redis.call('HMGET', KEYS[1], 'hash', 'seq', 'term', 'wt', 'link')
if not state[1] then
  return {'NOPROC'}
end
if keyed then
  local stored = redis.call('HGET', KEYS[3], ARGV[3])
  if stored then
    local sep = string.find(stored, '|', 1, true)
    local seq = string.sub(stored, 1, sep - 1)
    if string.sub(stored, sep + 1) ~= ARGV[4] then
      return {'CONFLICT', seq}
    end
    local entry = redis.call('XRANGE', KEYS[2], seq .. '-0', seq .. '-0')
    return with_record({'REPLAY', seq, entry[1][2], state[3] or '', state[4] or ''})
  end
end
if #ARGV >= 17 and not fence_ok(KEYS[7], ARGV[14], ARGV[15], ARGV[16], ARGV[17]) then
  return {'FENCED'}
end
if state[1] ~= ARGV[1] then
  return {'STALE', state[1]}
end
if ARGV[11] ~= '' and state[5] ~= ARGV[11] then
  return {'UNLINKED'}
end
if terminal and state[3] == '1' then
  return {'TERMINAL'}
end
local now = now_ms()
local now_text = string.format('%d', now)
local seq = tonumber(state[2]) + 1
local seq_text = string.format('%d', seq)
local entry = {'t', ARGV[6], 'p', ARGV[8], 'o', now_text}
if keyed then
  entry[#entry + 1] = 'k'
  entry[#entry + 1] = ARGV[3]
end
if ARGV[9] ~= '' then
  local semantics = ARGV[9]
  if ARGV[10] ~= '' then
    semantics = string.gsub(semantics, ARGV[10], seq_text)
  end
  entry[#entry + 1] = 's'
  entry[#entry + 1] = semantics
end
redis.call('XADD', KEYS[2], seq_text .. '-0', unpack(entry))
if ARGV[12] ~= '' then
  redis.call('HSET', KEYS[1], 'link', ARGV[12])
end
if keyed then
  redis.call('HSET', KEYS[3], ARGV[3], seq_text .. '|' .. ARGV[4])
end
local field = ARGV[7]
if field == '' then field = ARGV[6] end
local count = redis.call('HINCRBY', KEYS[4], field, 1)
local chunk = field .. '\0' .. math.floor((count - 1) / CHUNK)
local packed = pack5(seq)
if (count - 1) % CHUNK ~= 0 then
  packed = (redis.call('HGET', KEYS[4], chunk) or '') .. packed
end
redis.call('HSET', KEYS[4], chunk, packed)
local outbox_id = ''
if waking then
  redis.call('ZADD', KEYS[5], seq, seq)
  -- The delivery intent is durable with the event (RX-7): whoever delivers it
  -- to the scope's wake stream (this appender, or the relay if it died) reads
  -- it here, in the process's own slot.
  local target = ARGV[13]
  if target == '' then target = state[4] or '' end
  if target ~= '' then
    outbox_id = redis.call('XADD', KEYS[6], '*', 'seq', seq_text, 'scope', target)
  end
end
if terminal then
  -- EV-12: terminal projection clears the wait state.
  redis.call('HSET', KEYS[1], 'seq', seq_text, 'updated', now_text, 'status', ARGV[5],
    'term', '1')
  redis.call('HDEL', KEYS[1], 'wait')
else
  redis.call('HSET', KEYS[1], 'seq', seq_text, 'updated', now_text)
end
return with_record({'OK', seq, now, state[4] or '', outbox_id})
