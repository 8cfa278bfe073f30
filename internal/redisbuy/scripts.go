package redisbuy

// script is a Lua script and its SHA-1, the name EVALSHA runs it by. The
// digest is written here rather than computed, so that programs linking
// this package (the bench's every buyer process) spend nothing on it at
// start; TestScriptDigests checks each against its source.
type script struct {
	src, sha string
}

// buyScript is the purchase, atomic on the server. A purchase is named by
// its Store (ARGV[2]) and number (ARGV[3]); the Store's last purchase and
// its ticket are kept in last:<store>, so that the same purchase sent
// again (a retry after a lost reply, by the client library or by Buy)
// returns the ticket it bought instead of buying another. Every check
// comes before the write, and the shebang makes Redis refuse the whole
// script up front when it is out of memory, so no purchase is ever half
// made. Its error replies are a code and a message: Redis 7 prefixes
// "ERR " to a reply that is a single word, which would hide the code.
//
// The purchase is one write: a single HSET sets remaining, the buyer's
// ledger and last:<store> to values computed here. Redis logs a script's
// writes to the append-only file, several of them as one MULTI/EXEC
// block. A server killed during that write(2) leaves the block torn, and
// Redis 7.0's loader (with aof-load-truncated, the default) cuts the file
// after the torn block's last whole command, not before its MULTI; the
// next server appends there, and the one after it replays the torn half
// purchase inside the next transaction: remaining and the ledger count a
// ticket no buyer received, whose buyer's retry had bought another
// (ticketshm/redisstore's TestTornAOF; TestExactlyOnce met it in 1-2 %
// of its runs; Valkey fixed its loader in valkey-io/valkey#4342). A single
// command is never wrapped in MULTI/EXEC, and a torn one is cut whole.
var buyScript = script{src: `#!lua
local h = redis.call('HMGET', KEYS[1], 'total', 'remaining', 'last:' .. ARGV[2], 'sold:' .. ARGV[1])
if not h[1] and not h[2] then
	if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOCOUNTER no ticket counter at this key') end
	return redis.error_reply('NOTCOUNTER a hash without total and remaining')
end
local function count(s)
	if type(s) ~= 'string' or #s > 16 or not (s == '0' or string.match(s, '^[1-9]%d*$')) then return nil end
	local n = tonumber(s)
	if n > 9007199254740992 then return nil end
	return n
end
local total, remaining = count(h[1]), count(h[2])
if not total or not remaining or remaining > total then
	return redis.error_reply('CORRUPT total ' .. tostring(h[1]) .. ', remaining ' .. tostring(h[2]))
end
if h[3] then
	local seq, t = string.match(h[3], '^(%d+) (%d+)$')
	if seq == ARGV[3] then return tonumber(t) end
end
if remaining == 0 then return 0 end
local sold = 0
if h[4] then
	sold = count(h[4])
	if not sold or sold >= total then
		return redis.error_reply('CORRUPT sold:' .. ARGV[1] .. ' ' .. tostring(h[4]) .. ' of total ' .. tostring(h[1]))
	end
end
local t = total - remaining + 1
redis.call('HSET', KEYS[1], 'remaining', string.format('%d', remaining - 1),
	'sold:' .. ARGV[1], string.format('%d', sold + 1),
	'last:' .. ARGV[2], ARGV[3] .. ' ' .. string.format('%d', t))
return t
`, sha: "0253e0f7a0d101d409c9f7e8f25a937ee76a44fa"}

// initScript makes the counter unless it exists (or replace is "1").
// Making one is a single HSET (DEL writes nothing when there is no key),
// but replacing one is two writes, DEL and HSET, a MULTI/EXEC block that
// a crash can tear as it tore the old three-write purchase (buyScript):
// no single command replaces a whole hash in Redis 7. Replacing is an
// operator's act between sales; one that failed is checked with
// AuditCounter.
var initScript = script{src: `#!lua
if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then
	local t = redis.call('HGET', KEYS[1], 'total')
	if not t then return redis.error_reply('NOTCOUNTER a hash without total') end
	return t
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'remaining', ARGV[1])
return ARGV[1]
`, sha: "8df5862202958ca6b71b7dd33d866a8b71483866"}
