-- PR-1: delete a terminal process older than the cutoff with all its keys.
-- The record's own updated_at decides (index scores may lag, PR-5).
-- KEYS: record, events, replay, types (the zset of events written before the
-- type counts), wakes, acks, lease, grants, outbox, type counts
-- ARGV[1] cutoff ms (strict)
local state = redis.call('HMGET', KEYS[1], 'term', 'updated', 'wts')
if not state[2] then
  return {'MISSING'}
end
if state[1] ~= '1' then
  return {'RUNNING'}
end
if tonumber(state[2]) >= tonumber(ARGV[1]) then
  return {'YOUNG', state[2]}
end
local events = redis.call('XLEN', KEYS[2])
local reply = {'PRUNED', events, state[3] or ''}
local grants = redis.call('SMEMBERS', KEYS[8])
for i = 1, #grants do reply[#reply + 1] = grants[i] end
redis.call('DEL', unpack(KEYS))
return reply
