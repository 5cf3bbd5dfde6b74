-- Delayed jobs whose time has come, taken off the schedule in one step (so two
-- workers never both take one). The caller queues each on its kind's ready
-- stream; one it fails to queue is still run by a sweep, whose worklist score
-- for the row is its start time.
-- KEYS[1] the delayed zset (member: JSON [kind, process id, disposition],
--   score: not-before, server ms)
-- ARGV[1] the most members to take
-- Reply: {ms until the next delayed job or -1, member...}
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
if #due > 0 then
  redis.call('ZREM', KEYS[1], unpack(due))
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if head[2] then
  wait = math.max(0, tonumber(head[2]) - now)
end
local reply = {wait}
for i = 1, #due do reply[#reply + 1] = due[i] end
return reply
