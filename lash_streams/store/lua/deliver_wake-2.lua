-- Deliver one wake to its scope's stream, once per wake id while its earlier
-- entry is unacknowledged (WK-12/RX-10 adapter decision: the consumer's ack
-- deletes the marker), and at most for the dedupe window (PX, server clock),
-- which bounds a marker whose entry nobody acknowledges.
-- KEYS[1] scope wake stream, KEYS[2] coalescing marker for this wake id
-- ARGV: 1 delivery JSON, 2 wake id, 3 source key (process:<pid>:event:<seq>:wake), 4 window ms
local existing = redis.call('GET', KEYS[2])
if existing then
  return {'DUP', existing}
end
local id = redis.call('XADD', KEYS[1], '*', 'd', ARGV[1], 'wid', ARGV[2], 'src', ARGV[3])
redis.call('SET', KEYS[2], id, 'PX', tonumber(ARGV[4]))
return {'NEW', id}
