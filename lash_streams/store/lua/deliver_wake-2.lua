-- Deliver one wake to its scope's stream, once per wake id within the dedupe
-- window (WK-9/WK-12 adapter decision: coalesce by (scope, wake id) for a
-- configurable window, measured on the server clock with PX).
-- KEYS[1] scope wake stream, KEYS[2] dedupe key for this wake id
-- ARGV: 1 delivery JSON, 2 wake id, 3 source key (process:<pid>:event:<seq>:wake), 4 window ms
local existing = redis.call('GET', KEYS[2])
if existing then
  return {'DUP', existing}
end
local id = redis.call('XADD', KEYS[1], '*', 'd', ARGV[1], 'wid', ARGV[2], 'src', ARGV[3])
redis.call('SET', KEYS[2], id, 'PX', tonumber(ARGV[4]))
return {'NEW', id}
