--! include _append.lua
-- append_events in one atomic step: for each process of the call, its items
-- in order, as append_event-8 does one (the record read and written once, each
-- type index field written once). An item its process refuses (CONFLICT,
-- TERMINAL) ends that process's items: the ones after it are not run (the
-- client reports them skipped), the ones before it stand; other processes go on.
-- On a single server one call carries every process of a batch and delivers
-- its wakes too, in this same step (RX-7 needs no intent then: nothing is left
-- half done; store/inline_wakes.py); on a cluster (keys of one slot per call)
-- one call per process, which writes each wake's intent for the appender
-- (store/delivery.py) or the relay to deliver.
-- KEYS, in groups of 4: 8 per process (two groups), as append_event-8 (the
--   lease hash is not used: batches are unfenced); then 4 per wake delivered
--   here: the scope's wake stream, the coalescing marker of its wake id, the
--   fleet notice stream, the fleet groups (as deliver_wakes-6n)
-- ARGV: 1 the dedupe window ms, 2 the number of processes; then per process,
--   in KEYS order: the expected registration hash, the number of its items,
--   then 11 per item: 10 as _append.lua, then "" or the wake's delivery here,
--   its fields joined by "\0": the KEYS index of its 4 keys, the sequence the
--   delivery was built for, the number standing in it for the server time, the
--   target scope JSON it was built for, the wake id, the source key, the scope
--   id, the delivery JSON. It is delivered here only when the event got that
--   sequence and that target (else the intent is written, as on a cluster).
-- Reply: per process, {'ITEMS', now, wt, item reply...}, {'NOPROC'} or
-- {'STALE', hash}. A plain OK (no intent written, nothing delivered here) is
-- its sequence alone: the rest of its item reply is the head's now and wt. A
-- server turns each reply element into protocol one by one, so a hundred
-- five-element OKs cost more than the inserts they answer.

local window = tonumber(ARGV[1])
local processes = tonumber(ARGV[2])
local now = nil
local replies = {}
local fleet = {}

local function fields_of(pack)
  local out, from = {}, 1
  while true do
    local at = string.find(pack, '\0', from, true)
    if not at then
      out[#out + 1] = string.sub(pack, from)
      return out
    end
    out[#out + 1] = string.sub(pack, from, at - 1)
    from = at + 1
  end
end

-- As deliver_wakes-6n does one wake: the stream entry unless its wake id still
-- has an unacknowledged one, then the fleet notice (deliver first, notice
-- second). nil when the event did not get the sequence or the target the
-- delivery was built for: the caller writes the intent instead.
local function deliverer(pack)
  if pack == '' then return nil end
  return function(seq_text, target)
    local f = fields_of(pack)
    if f[2] ~= seq_text or f[4] ~= target then return nil end
    local k = tonumber(f[1])
    if redis.call('GET', KEYS[k + 1]) then return 'DUP' end
    local d = string.gsub(f[8], f[3], now.now_text)
    local id = redis.call('XADD', KEYS[k], '*', 'd', d, 'wid', f[5], 'src', f[6])
    redis.call('SET', KEYS[k + 1], id, 'PX', window)
    local groups = KEYS[k + 3]
    if fleet[groups] == nil then fleet[groups] = redis.call('SCARD', groups) > 0 end
    if fleet[groups] then
      redis.call('XADD', KEYS[k + 2], '*', 'scope', f[7])
    end
    return 'NEW'
  end
end

local a = 3
for k = 1, processes * 8, 8 do
  local expected, count = ARGV[a], tonumber(ARGV[a + 1])
  local first, last = a + 2, a + 2 + (count - 1) * 11
  a = last + 11
  local hash, st = read_state(KEYS[k])
  if not hash then
    replies[#replies + 1] = {'NOPROC'}
  elseif hash ~= expected then
    replies[#replies + 1] = {'STALE', hash}
  else
    if now == nil then
      stamp(st)
      now = st
    else
      st.now, st.now_text = now.now, now.now_text
    end
    local keys = {events = KEYS[k + 1], replay = KEYS[k + 2], wakes = KEYS[k + 4],
      outbox = KEYS[k + 5], pending = pending_key(KEYS[k + 7], KEYS[k])}
    local ix = new_index(KEYS[k + 3])
    local items = {'ITEMS', st.now, st.wt}
    local written = false
    for i = first, last, 11 do
      local keyed = string.byte(ARGV[i], 1) == 49
      local reply = keyed and replayed_item(keys.events, keys.replay, st, i) or nil
      if reply == nil then
        reply = insert_item(keys, ix, st, i, deliverer(ARGV[i + 10]))
        if reply[1] == 'OK' then
          written = true
          if reply[5] == '' and reply[6] == nil then reply = reply[2] end
        end
      end
      items[#items + 1] = reply
      if type(reply) == 'table' and (reply[1] == 'CONFLICT' or reply[1] == 'TERMINAL') then
        break
      end
    end
    if written then
      flush_index(ix)
      settle_record(KEYS[k], st)
    end
    replies[#replies + 1] = items
  end
end
return replies
