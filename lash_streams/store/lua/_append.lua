-- Shared by append_event-8 and append_batch-4n (included by scripts.py): one
-- item of EV-2 against a process whose state the caller read, and the type
-- index writes, gathered so a batch writes each index field once.
--
-- An item is 10 ARGV entries from offset a:
--   a   flags, three characters "0"/"1": a replay key was given, the event is
--       terminal, the event carries a wake
--   a+1 replay key, a+2 payload hash, a+3 terminal status JSON ("" when not
--   terminal), a+4 the event type, a+5 its field in the type index ("" when
--   the type itself), a+6 the payload JSON, a+7 the materialized semantics
--   JSON ("" for the default), a+8 the number standing in it for the sequence
--   ("" for none: only an event-identity wake dedupe key holds the sequence),
--   a+9 the request's wake target scope JSON ("" to use the record's, WK-5)
-- Process state `st`: seq (number), term (bool), wt (the record's wake target
-- JSON or ''), now (number), now_text.
-- Item replies: {'OK', seq, now, wt, outbox id}, {'REPLAY', seq, stored entry
-- fields, term, wt}, {'CONFLICT', seq}, {'TERMINAL'}.
-- The type index: field <type> holds how many events of it there are; field
-- <type>\0<chunk> holds the sequences of events (count - 1) // 12 ... as
-- packed 5-byte big-endian numbers, 12 to a chunk (60 bytes stay in the
-- hash's compact encoding). count_events-3 binary-searches them.
local CHUNK = 12

local function pack5(n)
  local e = n % 256
  n = (n - e) / 256
  local d = n % 256
  n = (n - d) / 256
  local c = n % 256
  n = (n - c) / 256
  local b = n % 256
  return string.char((n - b) / 256 % 256, b, c, d, e)
end

-- By byte: one call and no substrings (49 is '1').
local function item_flags(a)
  local keyed, terminal, waking = string.byte(ARGV[a], 1, 3)
  return keyed == 49, terminal == 49, waking == 49
end

-- EV-2.3: a replay key already stored decides (the same payload: the stored
-- event; another: a conflict), before any other check. nil when not stored.
local function replayed_item(events_key, replay_key, st, a)
  local stored = redis.call('HGET', replay_key, ARGV[a + 1])
  if not stored then return nil end
  local sep = string.find(stored, '|', 1, true)
  local seq = string.sub(stored, 1, sep - 1)
  if string.sub(stored, sep + 1) ~= ARGV[a + 2] then
    return {'CONFLICT', seq}
  end
  local entry = redis.call('XRANGE', events_key, seq .. '-0', seq .. '-0')
  return {'REPLAY', seq, entry[1][2], st.term and '1' or '', st.wt}
end

local function new_index(key)
  return {key = key, counts = {}, chunks = {}}
end

local function index_event(ix, field, seq)
  local count = ix.counts[field]
  if count == nil then count = tonumber(redis.call('HGET', ix.key, field) or '0') end
  count = count + 1
  ix.counts[field] = count
  local chunk = field .. '\0' .. math.floor((count - 1) / CHUNK)
  local packed = pack5(seq)
  if (count - 1) % CHUNK ~= 0 then
    packed = (ix.chunks[chunk] or redis.call('HGET', ix.key, chunk) or '') .. packed
  end
  ix.chunks[chunk] = packed
end

-- One event's index entry, for append_event-8 and complete_job-10: the same
-- fields index_event and flush_index write, read and written in one HSET.
local function index_one(key, field, seq)
  local count = tonumber(redis.call('HGET', key, field) or '0') + 1
  local chunk = field .. '\0' .. math.floor((count - 1) / CHUNK)
  local packed = pack5(seq)
  if (count - 1) % CHUNK ~= 0 then
    packed = (redis.call('HGET', key, chunk) or '') .. packed
  end
  redis.call('HSET', key, field, string.format('%d', count), chunk, packed)
end

local function flush_index(ix)
  local args = {}
  for field, count in pairs(ix.counts) do
    args[#args + 1] = field
    args[#args + 1] = string.format('%d', count)
  end
  for chunk, packed in pairs(ix.chunks) do
    args[#args + 1] = chunk
    args[#args + 1] = packed
  end
  -- In pieces: unpack() is bounded by the Lua stack.
  for i = 1, #args, 4000 do
    redis.call('HSET', ix.key, unpack(args, i, math.min(i + 3999, #args)))
  end
end

-- The pending-outbox index's member for a process: its encoded id, the hash
-- tag of its keys (store/keys.py).
local function pending_member(outbox_key)
  return string.match(outbox_key, '{([^}]*)}')
end

-- KEYS[n] is the pending-outbox index unless it repeats the record key (a
-- cluster: the index lives in another slot, so none is passed).
local function pending_key(index_key, record_key)
  if index_key ~= record_key then return index_key end
  return nil
end

-- EV-2 steps 8 and 9 for an item that is not a replay: the terminal check,
-- then the insert at st.seq + 1 with its replay row, type index entry and,
-- for a wake, the wake index row and the durable delivery intent (RX-7).
-- keys: events, replay, index (the type index; used when ix is nil: a single
-- event writes its entry at once, index_one), wakes, outbox, and pending (the
-- namespace's index of processes with intents, or nil on a cluster where it
-- lives in another slot and the appender marks it after this script,
-- store/delivery.py). ix: a batch's gathered index writes (new_index).
-- deliver (append_batch on a single server, else nil): function(seq text,
-- target JSON) that delivers the wake to its scope's stream in this same step
-- and answers 'NEW' or 'DUP', or nil when it cannot (then the intent is
-- written as usual). Item replies then carry a sixth element, that answer.
local function insert_item(keys, ix, st, a, deliver)
  local keyed, terminal, waking = item_flags(a)
  if terminal and st.term then
    return {'TERMINAL'}
  end
  local seq = st.seq + 1
  local seq_text = string.format('%d', seq)
  local id = seq_text .. '-0'
  if ARGV[a + 7] ~= '' then
    local semantics = ARGV[a + 7]
    if ARGV[a + 8] ~= '' then
      semantics = string.gsub(semantics, ARGV[a + 8], seq_text)
    end
    if keyed then
      redis.call('XADD', keys.events, id, 't', ARGV[a + 4], 'p', ARGV[a + 6], 'o', st.now_text,
        'k', ARGV[a + 1], 's', semantics)
    else
      redis.call('XADD', keys.events, id, 't', ARGV[a + 4], 'p', ARGV[a + 6], 'o', st.now_text,
        's', semantics)
    end
  elseif keyed then
    redis.call('XADD', keys.events, id, 't', ARGV[a + 4], 'p', ARGV[a + 6], 'o', st.now_text,
      'k', ARGV[a + 1])
  else
    redis.call('XADD', keys.events, id, 't', ARGV[a + 4], 'p', ARGV[a + 6], 'o', st.now_text)
  end
  if keyed then
    redis.call('HSET', keys.replay, ARGV[a + 1], seq_text .. '|' .. ARGV[a + 2])
  end
  local field = ARGV[a + 5]
  if field == '' then field = ARGV[a + 4] end
  if ix then index_event(ix, field, seq) else index_one(keys.index, field, seq) end
  local outbox_id = ''
  local here = nil
  if waking then
    redis.call('ZADD', keys.wakes, seq, seq)
    -- The delivery intent is durable with the event (RX-7): whoever delivers it
    -- to the scope's wake stream (this appender, or the relay if it died) reads
    -- it here, in the process's own slot.
    local target = ARGV[a + 9]
    if target == '' then target = st.wt end
    if target ~= '' and deliver then here = deliver(seq_text, target) end
    if target ~= '' and not here then
      outbox_id = redis.call('XADD', keys.outbox, '*', 'seq', seq_text, 'scope', target)
      if keys.pending then
        redis.call('ZADD', keys.pending, now_us_text(), pending_member(keys.outbox))
      end
    end
  end
  st.seq = seq
  st.seq_text = seq_text
  if terminal then
    st.term = true
    st.status = ARGV[a + 3]
  end
  if here then return {'OK', seq, st.now, st.wt, outbox_id, here} end
  return {'OK', seq, st.now, st.wt, outbox_id}
end

-- The record after the items: last sequence and update time; a terminal item
-- sets the status and (EV-12) clears the wait state.
local function settle_record(record_key, st)
  if st.status then
    redis.call('HSET', record_key, 'seq', st.seq_text, 'updated', st.now_text,
      'status', st.status, 'term', '1')
    redis.call('HDEL', record_key, 'wait')
  else
    redis.call('HSET', record_key, 'seq', st.seq_text, 'updated', st.now_text)
  end
end

local function read_state(record_key)
  local row = redis.call('HMGET', record_key, 'hash', 'seq', 'term', 'wt')
  if not row[1] then return nil, nil end
  return row[1], {seq = tonumber(row[2]), term = row[3] == '1', wt = row[4] or ''}
end

local function stamp(st)
  st.now = now_ms()
  st.now_text = string.format('%d', st.now)
end

-- EV-2 after the replay check, for append_event-8 and complete_job-10 (keys
-- and ARGV as append_event-8's): the fence when `fenced` (RX-12), the
-- registration compare-and-set, then the insert with its index and record
-- writes. The reply, and whether it came from the insert (FENCED and STALE
-- did not: nothing was written).
local function checked_insert(hash, st, fenced)
  if fenced and not fence_ok(KEYS[7], ARGV[12], ARGV[13], ARGV[14], ARGV[15]) then
    return {'FENCED'}, false
  end
  if hash ~= ARGV[1] then
    return {'STALE', hash}, false
  end
  stamp(st)
  local reply = insert_item({events = KEYS[2], replay = KEYS[3], index = KEYS[4],
    wakes = KEYS[5], outbox = KEYS[6], pending = pending_key(KEYS[8], KEYS[1])}, nil, st, 2)
  if reply[1] == 'OK' then
    settle_record(KEYS[1], st)
  end
  return reply, true
end
