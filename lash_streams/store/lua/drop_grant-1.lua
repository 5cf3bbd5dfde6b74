-- Delete one scope-side grant row only if it was written for the given
-- incarnation of its process: a stale row (the process pruned, or registered
-- again since) goes, a newer grant of the same (scope, process) stays.
-- Rows are `<incarnation>|<grant JSON>`; a row stored before incarnations is
-- the bare JSON (it starts with `{`) and matches the incarnation "".
-- KEYS[1] scope grants hash
-- ARGV[1] process id, ARGV[2] the incarnation the row must carry
local row = redis.call('HGET', KEYS[1], ARGV[1])
if not row then
  return 0
end
local stamp = ''
if string.sub(row, 1, 1) ~= '{' then
  local bar = string.find(row, '|', 1, true)
  if bar then
    stamp = string.sub(row, 1, bar - 1)
  end
end
if stamp ~= ARGV[2] then
  return 0
end
return redis.call('HDEL', KEYS[1], ARGV[1])
