-- The generic cell rate algorithm for one key, atomically (Redis runs a script alone).
--
-- KEYS[1]  the key's theoretical arrival time (TAT), in microseconds of the Redis clock
-- ARGV[1]  requests per second (the emission interval is 1 s / ARGV[1])
-- ARGV[2]  burst: how many requests may arrive at once
--
-- Returns {1, 0} when the request is admitted (and counts it), or {0, wait} when it is not,
-- wait being the microseconds until it would be. A refused request changes nothing.
-- The clock is the server's own (TIME), so every instance measures time alike. The key
-- expires when its TAT has passed: a key that is back to a full burst needs no memory.

-- Redis 3.2 to 4 must be told to replicate effects before a script may read TIME and then
-- write; later versions always do, and keep the call as a no-op.
if redis.replicate_commands then
    redis.replicate_commands()
end

local interval = 1000000 / tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])

local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
    tat = math.max(tonumber(stored), now)
end

local new_tat = tat + interval
local allowed_at = new_tat - tolerance
if allowed_at > now then
    return {0, math.ceil(allowed_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, 0}
