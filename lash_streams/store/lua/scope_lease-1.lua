-- A pod's exclusive, fenced hold on one scope in fleet mode (docs/wakes.md).
-- The value is the holder's token (``<pod>|<random>``, new per acquisition), so
-- a pod that lost the scope (paused past the lease) cannot renew or release
-- the next holder's lease, even under the same pod name. Expiry is PX on the
-- server clock.
-- KEYS[1] scope owner key; ARGV: 1 op acquire|renew|release, 2 token, 3 ttl ms
local owner = redis.call('GET', KEYS[1])
local op = ARGV[1]
if op == 'acquire' then
  if owner and owner ~= ARGV[2] then
    return 0
  end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3]))
  return 1
elseif op == 'renew' then
  if owner ~= ARGV[2] then
    return 0
  end
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
  return 1
elseif op == 'release' then
  if owner == ARGV[2] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end
return redis.error_reply('unknown scope lease op ' .. op)
