"""Lua scripts the Redis backend runs atomically, one round trip each.

Versions come from a per-prefix clock key that only moves forward: each invalidation takes
``max(clock + 1, server time in µs)``, so versions are never reused even if the clock key itself is
lost (a lost clock restarts at the server time, past every version it handed out). Numbers are
formatted with ``%.0f`` because Lua's default number-to-string conversion drops digits; server
times in microseconds stay well below 2^53, where doubles are exact.
"""

from __future__ import annotations

__all__ = ["CAPTURE", "INVALIDATE", "READ", "STORE"]

# KEYS[1] = clock, KEYS[2..] = version keys; ARGV[1] = version key TTL (ms).
# Returns the current versions, creating missing version keys at the clock's current value.
CAPTURE = """
local clock = false
local out = {}
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if not v then
    if not clock then
      clock = redis.call('GET', KEYS[1])
      if not clock then
        local t = redis.call('TIME')
        clock = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
        redis.call('SET', KEYS[1], clock)
      end
    end
    v = clock
    redis.call('SET', KEYS[i], v, 'PX', ARGV[1])
  end
  out[i - 1] = v
end
return out
"""

# KEYS[1] = clock, KEYS[2..] = version keys; ARGV[1] = version key TTL (ms), ARGV[2] = channel (or
# empty), ARGV[3] = the invalidating backend's origin id.
# Gives every version key the same new version, newer than any handed out before, and publishes
# "<origin>\n<key>\x1f<key>..." on the channel in the same atomic step: when the script has run, the
# message is queued for every subscriber, ahead of anything they ask Redis afterwards.
INVALIDATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local v = string.format('%.0f', math.max(last + 1, now))
redis.call('SET', KEYS[1], v)
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], v, 'PX', ARGV[1])
end
if ARGV[2] ~= '' then
  redis.call('PUBLISH', ARGV[2], ARGV[3] .. '\\n' .. table.concat(KEYS, '\\31', 2))
end
return v
"""

# KEYS[1] = entry, KEYS[2..] = version keys.
# Returns the entry (or false), its remaining TTL in ms, then the current versions (false if missing):
# what a read for a per-process copy needs, so that the copy never outlives the entry.
READ = """
local out = {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
for i = 2, #KEYS do
  out[i + 1] = redis.call('GET', KEYS[i])
end
return out
"""

# KEYS[1] = entry, KEYS[2..] = version keys; ARGV[1] = entry blob, ARGV[2] = entry TTL (ms),
# ARGV[3] = version key TTL (ms), ARGV[4..] = the versions captured before loading.
# Stores the entry only if those versions are still current, and keeps its version keys alive at
# least as long as the entry.
STORE = """
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) ~= ARGV[i + 2] then
    return 0
  end
end
for i = 2, #KEYS do
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
