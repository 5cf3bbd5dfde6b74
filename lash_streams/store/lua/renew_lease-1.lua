-- LS-7: renew only the same live acquisition (token, incarnation, fencing).
-- KEYS[1] lease hash; ARGV: 1 token, 2 owner_id, 3 incarnation_id, 4 fencing, 5 ttl ms
local now = now_ms()
local row = redis.call('HMGET', KEYS[1], 'token', 'oid', 'inc', 'fence', 'expires')
if not row[1] or row[1] == '' or row[1] ~= ARGV[1] or row[2] ~= ARGV[2]
  or row[3] ~= ARGV[3] or row[4] ~= ARGV[4] or tonumber(row[5]) <= now then
  return {'EXPIRED'}
end
local expires = now + tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'expires', expires)
return {'OK', expires}
