-- Fleet liveness: register a worker incarnation or record its exit, ordered by
-- the server (a per-worker counter), so no read-then-write race can let an old
-- incarnation's exit overwrite a newer registration (issue 13).
-- KEYS[1] workers hash: one field per worker identity (owner_id) holding its
--         latest incarnations, one line each: "<order> <state> <since_ms> <incarnation>\n"
-- ARGV: 1 mode "register" | "exit", 2 owner_id, 3 incarnation_id (no newline),
--       4 how many incarnations to keep per worker
-- An incarnation is provably dead when it exited or a higher order registered.
-- An exit nobody registered is kept with order 0: it proves only itself gone.
local raw = redis.call('HGET', KEYS[1], ARGV[2])
local rows, top, mine = {}, 0, nil
if raw and string.sub(raw, 1, 1) == '{' then
  -- The earlier JSON form: one incarnation, no order.
  local inc = string.match(raw, '"incarnation_id":"([^"]*)"')
  local state = string.match(raw, '"state":"(%a+)"') or 'running'
  local since = string.match(raw, '"since_ms":(%d+)') or '0'
  if inc then rows[1] = {1, state, since, inc} end
elseif raw then
  for order, state, since, inc in string.gmatch(raw, '(%d+) (%a+) (%d+) ([^\n]*)\n') do
    rows[#rows + 1] = {tonumber(order), state, since, inc}
  end
end
for _, row in ipairs(rows) do
  if row[1] > top then top = row[1] end
  if row[4] == ARGV[3] then mine = row end
end
local now = now_ms()
if ARGV[1] == 'register' then
  if mine then return {'KNOWN', mine[1], top} end
  mine = {top + 1, 'running', now, ARGV[3]}
  rows[#rows + 1] = mine
else
  if mine then
    if mine[2] == 'exited' then return {'KNOWN', mine[1], top} end
    mine[2], mine[3] = 'exited', now
  else
    mine = {0, 'exited', now, ARGV[3]}
    rows[#rows + 1] = mine
  end
end
table.sort(rows, function(a, b) return a[1] > b[1] end)
local keep = tonumber(ARGV[4])
local out = {}
for i = 1, math.min(#rows, keep) do
  local row = rows[i]
  out[#out + 1] = row[1] .. ' ' .. row[2] .. ' ' .. row[3] .. ' ' .. row[4] .. '\n'
end
redis.call('HSET', KEYS[1], ARGV[2], table.concat(out))
return {'OK', mine[1], math.max(top, mine[1])}
