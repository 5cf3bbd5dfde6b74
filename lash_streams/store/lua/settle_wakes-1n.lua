-- Settle deliveries of one wake stream for one consumer, each only while that
-- consumer still owns it in the group's pending list (XACK and XCLAIM take no
-- owner: a stale consumer could otherwise settle what another one took over).
-- KEYS[1] the scope's wake stream, KEYS[2..] one coalescing marker per entry
--   (wake_dedupe of its wake id, same slot), in ARGV order
-- ARGV: 1 group, 2 consumer, 3 op, 4 idle ms (nack: the entry's new idle time,
--   so it is claimable after claim_idle_ms - idle ms; else unused), 5.. entry ids
-- ops: ack      XACK, and drop the entry's marker if it still names this entry
--               (RX-10: coalescing lasts while the entry is unacknowledged)
--      nack     give it back: XCLAIM to itself with IDLE, JUSTID (the count goes
--               up when it is claimed again, which is the next attempt)
--      touch    reset its idle time (XCLAIM IDLE 0 JUSTID): a long handler keeps
--               its delivery, nobody claims it meanwhile
-- Reply, per entry: 1 settled, 0 not pending any more (acked, or trimmed),
--   -1 refused (another consumer owns it now)
local group, me, op, idle = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local out = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local row = redis.call('XPENDING', KEYS[1], group, id, id, 1)[1]
  if not row then
    out[#out + 1] = 0
  elseif row[2] ~= me then
    out[#out + 1] = -1
  else
    if op == 'ack' then
      redis.call('XACK', KEYS[1], group, id)
      local marker = KEYS[i - 3]
      if marker and redis.call('GET', marker) == id then
        redis.call('DEL', marker)
      end
    elseif op == 'nack' then
      redis.call('XCLAIM', KEYS[1], group, me, 0, id, 'IDLE', idle, 'JUSTID')
    else
      redis.call('XCLAIM', KEYS[1], group, me, 0, id, 'IDLE', 0, 'JUSTID')
    end
    out[#out + 1] = 1
  end
end
return out
