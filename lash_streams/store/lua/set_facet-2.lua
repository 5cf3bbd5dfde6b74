-- The record's mutable facets (RG-7, RG-8): one script, one branch per rule.
-- KEYS[1] record hash, KEYS[2] lease hash
-- ARGV[1] op: first_started | abandon_request | external_ref | set_wait | clear_wait
--             | clear_wake_target
-- ARGV[2] value JSON (or the session id for clear_wake_target)
-- ARGV[3..6] the writer's lease for a fenced write (RX-12), "" when unfenced
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOPROC'}
end
if not fence_ok(KEYS[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]) then
  return {'FENCED'}
end
local op = ARGV[1]
if op == 'first_started' then
  -- ST-2: first writer wins, no status check.
  if redis.call('HSETNX', KEYS[1], 'started', ARGV[2]) == 1 then
    redis.call('HSET', KEYS[1], 'updated', now_ms())
  end
elseif op == 'abandon_request' then
  -- AB-3: terminal rejects; first authorization wins.
  if redis.call('HGET', KEYS[1], 'term') == '1' then
    return {'TERMINAL'}
  end
  if redis.call('HSETNX', KEYS[1], 'abandon', ARGV[2]) == 1 then
    redis.call('HSET', KEYS[1], 'updated', now_ms())
  end
elseif op == 'external_ref' then
  -- XR-1: set once; an identical repeat is a no-op; anything else conflicts.
  local existing = redis.call('HGET', KEYS[1], 'xref')
  if existing then
    if existing ~= ARGV[2] then
      return {'CONFLICT', existing}
    end
  else
    redis.call('HSET', KEYS[1], 'xref', ARGV[2], 'updated', now_ms())
  end
elseif op == 'set_wait' then
  -- WS-2
  if redis.call('HGET', KEYS[1], 'term') == '1' then
    return {'TERMINAL'}
  end
  redis.call('HSET', KEYS[1], 'wait', ARGV[2], 'updated', now_ms())
elseif op == 'clear_wait' then
  -- WS-3: allowed on terminal rows.
  redis.call('HDEL', KEYS[1], 'wait')
  redis.call('HSET', KEYS[1], 'updated', now_ms())
elseif op == 'clear_wake_target' then
  -- SD-2: only when the wake target belongs to the deleted session.
  if redis.call('HGET', KEYS[1], 'wts') == ARGV[2] then
    redis.call('HSET', KEYS[1], 'wt', '', 'wts', '', 'updated', now_ms())
  end
else
  return redis.error_reply('unknown facet op ' .. op)
end
return record_reply('OK', KEYS[1])
