-- Shared prelude, prepended to every script by lash_streams/store/scripts.py.
-- Server clock only (GEN-2, RX-11): every time a script decides with comes from TIME.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The server clock in microseconds, as exact decimal text (a pending-outbox
-- mark: two marks never share one, so a relay's compare-and-remove cannot
-- mistake a new mark for the one it read).
local function now_us_text()
  local t = redis.call('TIME')
  return t[1] .. string.format('%06d', tonumber(t[2]))
end

-- A whole record hash as a flat reply, so callers never need a second round trip.
local function record_reply(status, key)
  local reply = {status}
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields do reply[#reply + 1] = fields[i] end
  return reply
end

-- RX-12 fenced writes: "" token means unfenced. Otherwise the caller's lease
-- must be the current, live acquisition (token, incarnation, fencing token).
local function fence_ok(lease_key, token, oid, inc, fence)
  if token == nil or token == '' then return true end
  local row = redis.call('HMGET', lease_key, 'token', 'oid', 'inc', 'fence', 'expires')
  return row[1] == token and row[2] == oid and row[3] == inc and row[4] == fence
    and tonumber(row[5] or '0') > now_ms()
end
