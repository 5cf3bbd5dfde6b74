-- Queue a registered job on its kind's ready stream, read by the worker group
-- (dispatch). Only while the stream exists (a worker of the kind created it
-- with its group: nobody to read it otherwise) and only a row that can start.
-- A hint: a job never queued is run by a sweep (its worklist score is 0).
-- KEYS[1] record (on a cluster, the stream again: the caller checked the
--   row it registered), KEYS[2] the kind's ready stream
-- ARGV[1] process id, ARGV[2] disposition, ARGV[3] the stream's approximate cap
if redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
if KEYS[1] ~= KEYS[2] then
  if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HGET', KEYS[1], 'term') == '1' then
    return 0
  end
  if ARGV[2] == 'owner_bound' and redis.call('HEXISTS', KEYS[1], 'started') == 1 then
    return 0
  end
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'id', ARGV[1], 'd', ARGV[2])
return 1
