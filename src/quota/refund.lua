-- Gives back what a ticket charged beyond the bytes its upload stored, once (the charge record is
-- deleted), to the day it was charged on only (src/quota/shared.rs).
-- KEYS[1] the charge record ("subject day bytes"); ARGV[1] bytes stored, ARGV[2] the key prefix.
local c = redis.call('GET', KEYS[1])
if not c then return 0 end
redis.call('DEL', KEYS[1])
local subject, charged_day, charged = string.match(c, '^(.*) (%d+) (%d+)$')
if not subject then return 0 end
local refund = tonumber(charged) - tonumber(ARGV[1])
if refund <= 0 then return 0 end
local key = ARGV[2] .. subject .. ':day'
local d = redis.call('HMGET', key, 'day', 'bytes')
if tonumber(d[1]) ~= tonumber(charged_day) then return 0 end
redis.call('HSET', key, 'bytes', string.format('%d', math.max(0, (tonumber(d[2]) or 0) - refund)))
return refund
