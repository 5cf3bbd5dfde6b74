-- A dispatched job's start, one step: claim its free lease (LS-4) and record
-- first_started (ST-2), or say why it must not start: the row is terminal, an
-- owner-bound row was started by someone (DS-3), or a live owner holds it.
-- KEYS[1] record, KEYS[2] lease hash, KEYS[3] the worklist index (on a cluster,
--   where the index lives in another slot, the record key again: the caller
--   rescores the row itself)
-- ARGV: 1 attempt owner JSON, 2 owner_id, 3 incarnation_id, 4 ttl ms,
--       5 a fresh lease token (LS-6), 6 the worker's stem owner JSON (the
--       starter ST-2 records), 7 the disposition, 8 the process id
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOPROC'}
end
if redis.call('HGET', KEYS[1], 'term') == '1' then
  return {'TERMINAL'}
end
if ARGV[7] == 'owner_bound' and redis.call('HEXISTS', KEYS[1], 'started') == 1 then
  return {'STARTED'}
end
local now = now_ms()
local row = redis.call('HMGET', KEYS[2], 'token', 'fence', 'expires')
if row[1] and row[1] ~= '' and tonumber(row[3]) > now then
  return {'BUSY'}
end
local ttl = tonumber(ARGV[4])
local fence = tonumber(row[2] or '0') + 1
redis.call('HSET', KEYS[2], 'owner', ARGV[1], 'oid', ARGV[2], 'inc', ARGV[3],
  'token', ARGV[5], 'fence', fence, 'claimed', now, 'expires', now + ttl)
-- lash's serde JSON of ProcessStarted {owner, started_at_ms}, field for field.
local started = '{"owner":' .. ARGV[6] .. ',"started_at_ms":' .. string.format('%d', now) .. '}'
if redis.call('HSETNX', KEYS[1], 'started', started) == 1 then
  redis.call('HSET', KEYS[1], 'updated', now)
end
if KEYS[3] ~= KEYS[1] then
  -- Due when the lease lapses (store/worklist.py); XX: never re-adds a row.
  redis.call('ZADD', KEYS[3], 'XX', now + ttl, ARGV[8])
end
local lease = redis.call('HMGET', KEYS[2], 'owner', 'token', 'fence', 'claimed', 'expires')
local reply = {'ACQUIRED', lease[1], lease[2], lease[3], lease[4], lease[5]}
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields do reply[#reply + 1] = fields[i] end
return reply
