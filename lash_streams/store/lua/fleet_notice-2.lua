-- The fleet notice of a delivered wake, on a cluster (deliver_wakes-6n writes it
-- itself on a single server): written only while a fleet group exists, never
-- capped (pods trim what every fleet group acknowledged).
-- KEYS[1] the fleet notice stream, KEYS[2] the fleet groups; ARGV[1] scope id
if redis.call('SCARD', KEYS[2]) > 0 then
  return redis.call('XADD', KEYS[1], '*', 'scope', ARGV[1])
end
return false
