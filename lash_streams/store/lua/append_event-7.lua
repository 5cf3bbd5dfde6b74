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
--       2 replay key, 3 "1" when a replay key was given, 4 payload hash,
--       5 "1" if the event is terminal, 6 terminal status JSON,
--       7 the encoded event type (its field in the type index), 8 "1" if the
--       event carries a wake,
--       9 batch link this append requires ("" for none), 10 batch link it leaves
--       (a pipelined batch chains its appends to one process so that none can
--       land after an earlier one of the batch failed),
--       11 the request's wake target scope JSON ("" to use the record's, WK-5),
--       12..15 the writer's lease (token, owner_id, incarnation_id, fencing) for a
--       fenced write (RX-12), "" when unfenced,
--       16 the event type, 17 the payload JSON,
--       18.. the materialized semantics JSON, only when not the default, in
--       parts to be joined with the sequence (an event-identity wake dedupe
--       key holds it)
-- A terminal request's OK and REPLAY replies end with the record's fields, so
-- complete_process answers from this one step (nothing left to fail after it).
-- The type index: field <type> holds how many events of it there are; field
-- <type>\0<chunk> holds the sequences of events (count - 1) // 12 ... as
-- packed 5-byte big-endian numbers, 12 to a chunk (60 bytes stay in the
-- hash's compact encoding). count_events-3 binary-searches them.
local CHUNK = 12
local function pack5(n)
  local out = {}
  for i = 5, 1, -1 do
    out[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(out)
end

local function with_record(reply)
  if ARGV[5] == '1' then
    local fields = redis.call('HGETALL', KEYS[1])
    for i = 1, #fields do reply[#reply + 1] = fields[i] end
  end
  return reply
end

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOPROC'}
end
if ARGV[3] == '1' then
  local stored = redis.call('HGET', KEYS[3], ARGV[2])
  if stored then
    local sep = string.find(stored, '|', 1, true)
    local seq = string.sub(stored, 1, sep - 1)
    if string.sub(stored, sep + 1) ~= ARGV[4] then
      return {'CONFLICT', seq}
    end
    local entry = redis.call('XRANGE', KEYS[2], seq .. '-0', seq .. '-0')
    local state = redis.call('HMGET', KEYS[1], 'term', 'wt')
    return with_record({'REPLAY', seq, entry[1][2], state[1] or '', state[2] or ''})
  end
end
if not fence_ok(KEYS[7], ARGV[12], ARGV[13], ARGV[14], ARGV[15]) then
  return {'FENCED'}
end
local state = redis.call('HMGET', KEYS[1], 'hash', 'seq', 'term', 'wt', 'link')
if state[1] ~= ARGV[1] then
  return {'STALE', state[1] or ''}
end
if ARGV[9] ~= '' and state[5] ~= ARGV[9] then
  return {'UNLINKED'}
end
if ARGV[5] == '1' and state[3] == '1' then
  return {'TERMINAL'}
end
local now = now_ms()
local seq = tonumber(state[2]) + 1
local seq_text = string.format('%d', seq)
local entry = {'t', ARGV[16], 'p', ARGV[17], 'o', string.format('%d', now)}
if ARGV[3] == '1' then
  entry[#entry + 1] = 'k'
  entry[#entry + 1] = ARGV[2]
end
if #ARGV >= 18 then
  local semantics = {}
  for i = 18, #ARGV do
    if i > 18 then semantics[#semantics + 1] = seq_text end
    semantics[#semantics + 1] = ARGV[i]
  end
  entry[#entry + 1] = 's'
  entry[#entry + 1] = table.concat(semantics)
end
redis.call('XADD', KEYS[2], seq_text .. '-0', unpack(entry))
if ARGV[10] ~= '' then
  redis.call('HSET', KEYS[1], 'link', ARGV[10])
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[3], ARGV[2], seq_text .. '|' .. ARGV[4])
end
local count = redis.call('HINCRBY', KEYS[4], ARGV[7], 1)
local chunk = ARGV[7] .. '\0' .. math.floor((count - 1) / CHUNK)
local packed = pack5(seq)
if (count - 1) % CHUNK ~= 0 then
  packed = (redis.call('HGET', KEYS[4], chunk) or '') .. packed
end
redis.call('HSET', KEYS[4], chunk, packed)
local outbox_id = ''
if ARGV[8] == '1' then
  redis.call('ZADD', KEYS[5], seq, seq)
  -- The delivery intent is durable with the event (RX-7): whoever delivers it
  -- to the scope's wake stream (this appender, or the relay if it died) reads
  -- it here, in the process's own slot.
  local target = ARGV[11]
  if target == '' then target = state[4] or '' end
  if target ~= '' then
    outbox_id = redis.call('XADD', KEYS[6], '*', 'seq', seq, 'scope', target)
  end
end
if ARGV[5] == '1' then
  -- EV-12: terminal projection clears the wait state.
  redis.call('HSET', KEYS[1], 'seq', seq, 'updated', now, 'status', ARGV[6], 'term', '1')
  redis.call('HDEL', KEYS[1], 'wait')
else
  redis.call('HSET', KEYS[1], 'seq', seq, 'updated', now)
end
return with_record({'OK', seq, now, state[4] or '', outbox_id})
