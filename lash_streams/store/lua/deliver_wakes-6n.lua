-- Deliver wakes on a single server, each in one step, all in one call: per
-- wake, the scope's stream (unless its wake id still has an unacknowledged
-- entry there, at most for the dedupe window), then the fleet notice, then
-- clearing the process's outbox intent (and, once its outbox is empty, the
-- process's entry in the pending-outbox index). On a cluster these keys live in three
-- slots and deliver_wake-2 runs first, fleet_notice-2 and the clearing after
-- it, in order. Atomic here, so a delivery that never ran (NOSCRIPT, a refused
-- write) never loses its intent, and no fleet pod hears of a wake before it is
-- readable.
-- KEYS, 6 per wake: the scope's wake stream, the coalescing marker of its wake
--   id, the process's outbox stream, the fleet notice stream, the fleet groups
--   (notices only while one exists; same slot as the notice stream), the
--   pending-outbox index
-- ARGV: 1 window ms, then 5 per wake: the delivery JSON, the wake id, the source
--   key (process:<pid>:event:<seq>:wake), the outbox entry id ("" for none),
--   the scope id
-- Reply, per wake: {'NEW', entry id} or {'DUP', the entry it coalesced with}
local window = tonumber(ARGV[1])
local replies = {}
local fleet = nil
for k = 1, #KEYS, 6 do
  local a = 2 + (k - 1) / 6 * 5
  local existing = redis.call('GET', KEYS[k + 1])
  if existing then
    replies[#replies + 1] = {'DUP', existing}
  else
    local id = redis.call('XADD', KEYS[k], '*', 'd', ARGV[a], 'wid', ARGV[a + 1],
      'src', ARGV[a + 2])
    redis.call('SET', KEYS[k + 1], id, 'PX', window)
    if fleet == nil then fleet = redis.call('SCARD', KEYS[k + 4]) > 0 end
    if fleet then
      redis.call('XADD', KEYS[k + 3], '*', 'scope', ARGV[a + 4])
    end
    replies[#replies + 1] = {'NEW', id}
  end
  if ARGV[a + 3] ~= '' then
    redis.call('XDEL', KEYS[k + 2], ARGV[a + 3])
    if redis.call('XLEN', KEYS[k + 2]) == 0 then
      redis.call('ZREM', KEYS[k + 5], string.match(KEYS[k + 2], '{([^}]*)}'))
    end
  end
end
return replies
