--! include _append.lua
-- EV-2 steps 1, 3, 8, 9 in one atomic step (RX-3); the client already ran
-- validation and materialization (steps 4-7) against the registration whose
-- hash it passes here as a compare-and-set. The sequence is assigned here,
-- last + 1, so concurrent appenders never race on it (one call each).
-- The stored entry is compact (docs/keys.md): what cannot be derived, i.e. the
-- type, the payload JSON, the server time, the replay key and non-default
-- semantics; the reader rebuilds lash's full ProcessEvent from it.
-- KEYS: 1 record, 2 events stream, 3 replay hash, 4 type index (hash of packed
--       sequences), 5 wake index, 6 outbox, 7 lease hash, 8 the namespace's
--       pending-outbox index (the record key again on a cluster: none)
-- ARGV: 1 expected registration hash, 2..11 the item (see _append.lua),
--       12..15 for a fenced write only (RX-12): the writer's lease token,
--       owner_id, incarnation_id, fencing token
-- Replies: an item reply (_append.lua), {'NOPROC'}, {'FENCED'}, {'STALE', hash}.
-- A terminal request's OK and REPLAY replies end with the record's fields, so
-- complete_process answers from this one step (nothing left to fail after it).
local keyed, terminal = item_flags(2)

local function with_record(reply)
  if terminal then
    local fields = redis.call('HGETALL', KEYS[1])
    for i = 1, #fields do reply[#reply + 1] = fields[i] end
  end
  return reply
end

local hash, st = read_state(KEYS[1])
if not hash then
  return {'NOPROC'}
end
if keyed then
  local replay = replayed_item(KEYS[2], KEYS[3], st, 2)
  if replay then
    if replay[1] == 'CONFLICT' then return replay end
    return with_record(replay)
  end
end
local reply = checked_insert(hash, st, #ARGV >= 15)
if reply[1] ~= 'OK' then return reply end
return with_record(reply)
