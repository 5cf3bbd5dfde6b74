--! include _append.lua
-- A worker's terminal (SW-12, RX-12) in one atomic step: the fenced terminal
-- append of append_event-8, then, once the row is terminal, its lease
-- released (LS-8, by token) and, on a single server, the id moved from the
-- worklist to the prune index (RX-2). A worker killed after this step leaves
-- nothing behind; on a cluster the indexes live in other slots and the caller
-- moves the id after (store/worklist.py index_terminal), as for any terminal.
-- KEYS: 1..8 as append_event-8 (7: the lease hash), 9 the worklist index,
--       10 the prune index (on a cluster: the record key again, both)
-- ARGV: 1..15 as append_event-8 (12..15, the writer's lease, required),
--       16 the process id (the indexes' member)
-- Replies: as append_event-8. The lease is released after OK, REPLAY,
-- TERMINAL and CONFLICT (the row is terminal: nothing is left to hold it
-- for); never after FENCED, NOPROC or STALE.
local keyed = item_flags(2)

local function release_lease()
  if redis.call('HGET', KEYS[7], 'token') == ARGV[12] then
    redis.call('HDEL', KEYS[7], 'owner', 'oid', 'inc', 'token', 'claimed', 'expires')
  end
end

local function done(reply)
  release_lease()
  local row = redis.call('HMGET', KEYS[1], 'term', 'updated')
  if KEYS[9] ~= KEYS[1] and row[1] == '1' then
    redis.call('ZADD', KEYS[10], row[2] or '0', ARGV[16])
    redis.call('ZREM', KEYS[9], ARGV[16])
  end
  if reply[1] == 'OK' or reply[1] == 'REPLAY' then
    local fields = redis.call('HGETALL', KEYS[1])
    for i = 1, #fields do reply[#reply + 1] = fields[i] end
  end
  return reply
end

if ARGV[12] == nil or ARGV[12] == '' then
  return redis.error_reply('complete_job: a lease is required')
end
local hash, st = read_state(KEYS[1])
if not hash then
  return {'NOPROC'}
end
if keyed then
  local replay = replayed_item(KEYS[2], KEYS[3], st, 2)
  if replay then return done(replay) end
end
local reply, inserted = checked_insert(hash, st, true)
if not inserted then return reply end
return done(reply)
