-- One upload ticket's admission, atomic on the Redis/Valkey server (src/quota/shared.rs).
-- KEYS[1] the subject's GCRA state (theoretical arrival time, µs), KEYS[2] its day counters (hash:
-- day, bytes, uploads), KEYS[3] the ticket's charge record (for the refund of unused bytes).
-- ARGV: 1 emission interval µs (0: no rate limit), 2 burst, 3 bytes asked, 4 bytes per day
-- (0: no limit), 5 uploads per day (0: no limit), 6 subject, 7 charge record lifetime (s).
-- Reply {0, remaining, ms until the bucket is full} | {1, ms until a ticket is admitted} |
-- {2, s until the UTC day ends (bytes)} | {3, s until the UTC day ends (uploads)}.
-- The server's clock (TIME) is the fleet's one clock: replicas' clocks never matter.
local t = redis.call('TIME')
local secs = tonumber(t[1])
local now = secs * 1000000 + tonumber(t[2])
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local ask, max_bytes, max_uploads = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local day = math.floor(secs / 86400)
local to_midnight = (day + 1) * 86400 - secs
local d = redis.call('HMGET', KEYS[2], 'day', 'bytes', 'uploads')
local bytes, uploads = 0, 0
if tonumber(d[1]) == day then
  bytes = tonumber(d[2]) or 0
  uploads = tonumber(d[3]) or 0
end
if max_bytes > 0 and bytes + ask > max_bytes then return {2, to_midnight, 0} end
if max_uploads > 0 and uploads + 1 > max_uploads then return {3, to_midnight, 0} end
local remaining, reset = 0, 0
if interval > 0 then
  local tolerance = interval * burst
  local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
  local new_tat = tat + interval
  if new_tat - tolerance > now then
    return {1, math.ceil((new_tat - tolerance - now) / 1000), 0}
  end
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
  remaining = math.floor((tolerance - (new_tat - now)) / interval)
  reset = math.ceil((new_tat - now) / 1000)
end
redis.call('HSET', KEYS[2], 'day', string.format('%d', day), 'bytes', string.format('%d', bytes + ask),
  'uploads', string.format('%d', uploads + 1))
redis.call('EXPIRE', KEYS[2], 2 * 86400)
if ask > 0 then redis.call('SET', KEYS[3], ARGV[6] .. ' ' .. string.format('%d %d', day, ask), 'EX', ARGV[7]) end
return {0, remaining, reset}
