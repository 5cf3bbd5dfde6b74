-- LS-4 claim and LS-10 reclaim, one script: they differ only in whether a live
-- holder may be displaced on the claimant's death evidence.
-- KEYS[1] record, KEYS[2] lease hash (its "fence" outlives every holder, LS-5)
-- ARGV: 1 owner JSON, 2 owner_id, 3 incarnation_id, 4 ttl ms,
--       5 mode "claim" | "reclaim", 6 a fresh random token for a new acquisition (LS-6),
--       and for reclaim the observed holder:
--       7 lease token, 8 owner_id, 9 incarnation_id, 10 fencing token,
--       11 "1" when the claimant holds death evidence for that holder (LV-2)
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOPROC'}
end
local now = now_ms()
local row = redis.call('HMGET', KEYS[2], 'token', 'oid', 'inc', 'fence', 'expires')
local held = row[1] and row[1] ~= ''
local live = held and tonumber(row[5]) > now
local ttl = tonumber(ARGV[4])
local function reply(status)
  local r = redis.call('HMGET', KEYS[2], 'owner', 'token', 'fence', 'claimed', 'expires')
  return {status, r[1], r[2], r[3], r[4], r[5]}
end
if live then
  if ARGV[5] == 'claim' then
    if row[2] == ARGV[2] and row[3] == ARGV[3] then
      -- Re-entry by the same incarnation: extend, tokens unchanged.
      redis.call('HSET', KEYS[2], 'expires', now + ttl)
      return reply('ACQUIRED')
    end
    return reply('BUSY')
  end
  local same = row[1] == ARGV[7] and row[2] == ARGV[8] and row[3] == ARGV[9]
    and row[4] == ARGV[10]
  if not (same and ARGV[11] == '1') then
    return reply('BUSY')
  end
end
local fence = tonumber(row[4] or '0') + 1
redis.call('HSET', KEYS[2], 'owner', ARGV[1], 'oid', ARGV[2], 'inc', ARGV[3],
  'token', ARGV[6], 'fence', fence, 'claimed', now, 'expires', now + ttl)
return reply('ACQUIRED')
