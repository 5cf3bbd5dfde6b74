-- GR-1, first of a grant's three writes (docs/atomicity.md), in the process's
-- slot: the process must exist; the scope enters the reverse grant index
-- stamped with the record's incarnation, which the caller then stamps the
-- scope row with. A record stored before incarnations has no `inc`: its
-- `created` stands in (a new record's `inc` is `<created>-<token>`, never equal).
-- KEYS[1] record hash, KEYS[2] reverse grant index (set)
-- ARGV[1] scope JSON, ARGV[2] the incarnation the caller expects, or "" for any
local f = redis.call('HMGET', KEYS[1], 'inc', 'created')
local inc = f[1] or f[2]
if not inc then
  return {'NOPROC'}
end
if ARGV[2] ~= '' and ARGV[2] ~= inc then
  return {'STALE', inc}
end
redis.call('SADD', KEYS[2], inc .. '|' .. ARGV[1])
return {'OK', inc}
