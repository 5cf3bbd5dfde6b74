-- Drop a process from the pending-outbox index after the relay found its
-- outbox empty, unless it was marked again since the relay read its mark (an
-- append wrote a new intent meanwhile: the next pass visits it).
-- KEYS[1] the pending-outbox index; ARGV: 1 encoded id, 2 the mark read
local mark = redis.call('ZSCORE', KEYS[1], ARGV[1])
if mark and tonumber(mark) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
