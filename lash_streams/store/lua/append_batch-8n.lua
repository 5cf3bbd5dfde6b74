--! include _append.lua
-- append_events in one atomic step: for each process of the call, its items
-- in order, as append_event-8 does one (the record read and written once, each
-- type index field written once). An item its process refuses (CONFLICT,
-- TERMINAL) ends that process's items: the ones after it are not run (the
-- client reports them skipped), the ones before it stand; other processes go on.
-- On a single server one call carries every process of a batch; on a cluster
-- (keys of one slot per call) one call per process.
-- KEYS: 8 per process, as append_event-8 (the lease hash is not used: batches
--       are unfenced)
-- ARGV: per process, in KEYS order: the expected registration hash, the number
--       of its items, then 10 per item (see _append.lua)
-- Reply: per process, {'ITEMS', item reply...}, {'NOPROC'} or {'STALE', hash}.
local now = nil
local replies = {}
local a = 1
for k = 1, #KEYS, 8 do
  local expected, count = ARGV[a], tonumber(ARGV[a + 1])
  local first, last = a + 2, a + 2 + (count - 1) * 10
  a = last + 10
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
    local items = {'ITEMS'}
    local written = false
    for i = first, last, 10 do
      local keyed = string.sub(ARGV[i], 1, 1) == '1'
      local reply = keyed and replayed_item(keys.events, keys.replay, st, i) or nil
      if reply == nil then
        reply = insert_item(keys, ix, st, i)
        if reply[1] == 'OK' then written = true end
      end
      items[#items + 1] = reply
      if reply[1] == 'CONFLICT' or reply[1] == 'TERMINAL' then break end
    end
    if written then
      flush_index(ix)
      settle_record(KEYS[k], st)
    end
    replies[#replies + 1] = items
  end
end
return replies
