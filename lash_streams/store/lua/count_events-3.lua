-- RD-2: how many events of one type a process has through a sequence.
-- KEYS: 1 record, 2 type index (hash: <type> -> count, <type>\0<chunk> ->
--       packed 5-byte sequences, 12 to a chunk, written by append_event-8),
--       3 the type index of events written before it (zset of
--       "<type>\0<seq:020d>", read only)
-- ARGV: 1 the encoded event type, 2 the sequence (inclusive), 3 the same as
--       the legacy index's "<seq:020d>" suffix
-- Reply: {exists (0/1), count}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 0}
end
local CHUNK = 12
local upto = tonumber(ARGV[2])
local total = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local chunks = {}
local function seq_at(i)
  local c = math.floor(i / CHUNK)
  local packed = chunks[c]
  if not packed then
    packed = redis.call('HGET', KEYS[2], ARGV[1] .. '\0' .. c) or ''
    chunks[c] = packed
  end
  local at = (i % CHUNK) * 5
  local n = 0
  for j = 1, 5 do n = n * 256 + string.byte(packed, at + j) end
  return n
end
-- The first index whose sequence is past `upto`: that many are at or before it.
local lo, hi = 0, total
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  if seq_at(mid) <= upto then lo = mid + 1 else hi = mid end
end
local legacy = 0
if redis.call('EXISTS', KEYS[3]) == 1 then
  legacy = redis.call('ZLEXCOUNT', KEYS[3], '[' .. ARGV[1] .. '\0',
    '[' .. ARGV[1] .. '\0' .. ARGV[3])
end
return {1, lo + legacy}
