-- The running ids a sweep is due to look at, with the server time it judged by
-- (issue 13: a pass reads only lapsed leases and never-claimed rows).
-- KEYS[1] the worklist (zset: score = when a sweep is next due, 0 = now)
local now = now_ms()
return {now, redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)}
