-- PR-1: delete a terminal process older than the cutoff with all its keys.
-- The record's own updated_at decides (index scores may lag, PR-5).
-- KEYS: record, events, replay, types (the zset of events written before the
-- type counts), wakes, acks, lease, grants, outbox, type counts
-- ARGV[1] cutoff ms (strict)
--
-- The reverse grant index (KEYS[8]) is not deleted: its members
-- (`<incarnation>|<scope JSON>`, or the bare scope JSON before incarnations)
-- are the durable intent of the scope-side clean-up, which the client does
-- next and which removes each member once its scope row is gone. A pruner
-- killed before that leaves the members of a dead incarnation, and every
-- reply hands them out again, whatever the record's state, so the next prune
-- finishes the work (docs/atomicity.md).
-- Reply: {status, number, wake target session, members to clean up...}
--   PRUNED  number = events deleted; members = the whole index
--   MISSING members = the whole index (no incarnation is alive)
--   RUNNING / YOUNG (number = the record's updated_at): members of earlier
--   incarnations only
local state = redis.call('HMGET', KEYS[1], 'term', 'updated', 'wts', 'inc', 'created')
local members = redis.call('SMEMBERS', KEYS[8])

local function reply_with(status, number, session, keep_current)
  local reply = {status, number, session}
  local inc = state[4] or state[5]
  for i = 1, #members do
    local m = members[i]
    local current = false
    if keep_current then
      if string.sub(m, 1, 1) == '{' then
        current = not state[4] -- a bare member belongs to a record without `inc`
      else
        current = string.sub(m, 1, #inc + 1) == inc .. '|'
      end
    end
    if not current then
      reply[#reply + 1] = m
    end
  end
  return reply
end

if not state[2] then
  return reply_with('MISSING', 0, '', false)
end
if state[1] ~= '1' then
  return reply_with('RUNNING', 0, '', true)
end
if tonumber(state[2]) >= tonumber(ARGV[1]) then
  return reply_with('YOUNG', state[2], '', true)
end
local events = redis.call('XLEN', KEYS[2])
local reply = reply_with('PRUNED', events, state[3] or '', false)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[9], KEYS[10])
return reply
