-- A worker took ready entries (started them, or found they cannot start):
-- acknowledge and delete them in one step, so a settle is one script call
-- that joins the group commit of the starts it goes with (store/grouped.py).
-- KEYS[1] the kind's ready stream; ARGV[1] the group, ARGV[2..] entry ids.
local ids = {}
for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
-- In pieces: unpack() is bounded by the Lua stack.
for i = 1, #ids, 4000 do
  local part = {unpack(ids, i, math.min(i + 3999, #ids))}
  redis.call('XACK', KEYS[1], ARGV[1], unpack(part))
  redis.call('XDEL', KEYS[1], unpack(part))
end
return #ids
