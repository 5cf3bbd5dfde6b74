-- KEYS[1] record hash
-- ARGV[1] prepared registration JSON, ARGV[2] registration hash,
-- ARGV[3] wake target scope JSON or "", ARGV[4] its session id or "" (RG-4, RG-5, RG-6)
-- ARGV[5] a random token: `inc` = `<created>-<token>` names this incarnation of
-- the id; grants are stamped with it, so none outlives a prune (GR-*, PR-4)
if redis.call('EXISTS', KEYS[1]) == 1 then
  -- Equal hash: the stored record comes back unchanged (whatever its state);
  -- a different hash is the caller's registration_conflict. Nothing is written.
  return record_reply('EXISTS', KEYS[1])
end
local now = now_ms()
redis.call('HSET', KEYS[1], 'reg', ARGV[1], 'hash', ARGV[2], 'created', now,
  'updated', now, 'seq', 0, 'wt', ARGV[3], 'wts', ARGV[4], 'inc', now .. '-' .. ARGV[5])
return record_reply('CREATED', KEYS[1])
