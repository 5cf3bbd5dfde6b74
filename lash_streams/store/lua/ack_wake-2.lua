-- WA-2: idempotent, does not check the sequence; unknown process is an error.
-- KEYS[1] record, KEYS[2] ack set; ARGV[1] sequence
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 'NOPROC'
end
redis.call('SADD', KEYS[2], ARGV[1])
return 'OK'
