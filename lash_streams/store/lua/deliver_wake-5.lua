-- Deliver one wake, on a single server, in one step: the scope's stream (once
-- per wake id while its earlier entry is unacknowledged, at most for the
-- dedupe window), then the fleet notice, then clearing the process's outbox
-- intent. On a cluster these keys live in three slots and deliver_wake-2 runs
-- first, fleet_notice-2 and the clearing after it, in order. Atomic here, so a
-- delivery that never ran (NOSCRIPT, a refused write) never loses its intent,
-- and no fleet pod hears of a wake before it is readable.
-- KEYS[1] scope wake stream, KEYS[2] coalescing marker for this wake id,
-- KEYS[3] the process's outbox stream, KEYS[4] the fleet notice stream,
-- KEYS[5] the fleet groups (notices only while one exists; same slot as 4)
-- ARGV: 1 delivery JSON, 2 wake id, 3 source key (process:<pid>:event:<seq>:wake),
--       4 window ms, 5 outbox entry id ("" for none), 6 scope id
local reply
local existing = redis.call('GET', KEYS[2])
if existing then
  reply = {'DUP', existing}
else
  local id = redis.call('XADD', KEYS[1], '*', 'd', ARGV[1], 'wid', ARGV[2], 'src', ARGV[3])
  redis.call('SET', KEYS[2], id, 'PX', tonumber(ARGV[4]))
  if redis.call('SCARD', KEYS[5]) > 0 then
    redis.call('XADD', KEYS[4], '*', 'scope', ARGV[6])
  end
  reply = {'NEW', id}
end
if ARGV[5] ~= '' then
  redis.call('XDEL', KEYS[3], ARGV[5])
end
return reply
