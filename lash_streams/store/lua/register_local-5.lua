-- register_process on a single server in one atomic step (RG-4..RG-6, RX-2):
-- the record, its worklist index entries, its wake target's session index
-- and (a job that can start) its dispatch hint, all or nothing. On a cluster
-- the indexes live in other slots: register_process-1 plus separate steps.
-- KEYS: 1 record hash, 2 the index of every id, 3 the running worklist,
--   4 the wake target session's index (the record key again: none),
--   5 the kind's ready stream (the record key again: no dispatch)
-- ARGV: 1..5 as register_process-1 (registration JSON, hash, wake target
--   JSON, its session id, incarnation token), 6 process id, 7 disposition,
--   8 the ready stream's approximate cap, 9 how long after now a queued job
--   becomes due for sweeps (store/dispatch.py DISPATCH_GRACE_MS)
-- Reply: as register_process-1, {'CREATED'|'EXISTS', record fields...}.
-- An existing record with the same hash gets its index entries back (a
-- repair, as a repeated registration always did; the caller then moves a
-- terminal one to the terminal index); another hash writes nothing.
local pid = ARGV[6]
local function index_running(due)
  redis.call('ZADD', KEYS[2], 0, pid)
  redis.call('ZADD', KEYS[3], due, pid)
  if KEYS[4] ~= KEYS[1] then redis.call('SADD', KEYS[4], pid) end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'hash') == ARGV[2] then index_running(0) end
  return record_reply('EXISTS', KEYS[1])
end
local now = now_ms()
-- The record first: a server refusing writes (OOM) refuses this one, so a
-- refused registration writes nothing at all.
redis.call('HSET', KEYS[1], 'reg', ARGV[1], 'hash', ARGV[2], 'created', now,
  'updated', now, 'seq', 0, 'wt', ARGV[3], 'wts', ARGV[4], 'inc', now .. '-' .. ARGV[5])
-- Dispatch only while a worker of the kind reads the stream (ready_job-2).
-- A queued job is a worker's within one read: sweeps look at it only once
-- the grace ran out (a lost entry waits that long), so a worker starting
-- into a backlog does not read every new row on its first pass.
local queued = KEYS[5] ~= KEYS[1] and redis.call('EXISTS', KEYS[5]) == 1
index_running(queued and now + tonumber(ARGV[9]) or 0)
if queued then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], '*', 'id', pid, 'd', ARGV[7])
end
return record_reply('CREATED', KEYS[1])
