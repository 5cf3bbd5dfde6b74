-- Mark processes as holding wake intents, on a cluster (on a single server the
-- append script marks in the same step): the appender marks after its append
-- and before delivering, so a relay finds the intents of an appender that died
-- delivering. Score: the server time in microseconds (a fresh value per mark).
-- KEYS[1] the pending-outbox index; ARGV: the processes' encoded ids
local score = now_us_text()
for i = 1, #ARGV do
  redis.call('ZADD', KEYS[1], score, ARGV[i])
end
return #ARGV
