-- LS-8: release by token; keeps the fencing counter; never fails.
-- KEYS[1] lease hash; ARGV[1] lease token
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'owner', 'oid', 'inc', 'token', 'claimed', 'expires')
  return 1
end
return 0
