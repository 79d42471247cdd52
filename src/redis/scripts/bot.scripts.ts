import { LuaScript } from '../lua-script';

/** Creates a bot job record once: duplicate updates and racing replicas find it there and do nothing. */
export const BOT_JOB_REGISTER = new LuaScript(
  'bot-job-register',
  `
if redis.call('HSETNX', KEYS[1], 'jobId', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
`,
);

/** The first final phase wins; later ones (a redelivered or racing terminal event) change nothing. */
export const BOT_JOB_FINISH = new LuaScript(
  'bot-job-finish',
  `
local phase = redis.call('HGET', KEYS[1], 'phase')
redis.call('ZREM', KEYS[2], ARGV[1])
if phase ~= 'live' then return phase or '' end
redis.call('HSET', KEYS[1], 'phase', ARGV[2])
return 'live'
`,
  { allowOom: true },
);

/**
 * Takes a send from the global budget shared by every bot replica (a sliding window), honouring a shared pause
 * (a 429's retry_after) and, for edits, the chat's edit slot. 0: granted; else how many ms to wait.
 *
 * Edits of a job's status message name it (ARGV[6]): the chat's status messages then take turns on its edit slot.
 * Every ask marks the message as waiting (KEYS[4], scored by the ask; a message that stops asking drops out after
 * ARGV[8] ms), and a call that waits its turn (ARGV[7] = '1': progress edits) is granted only when no other
 * waiting message of the chat was edited longer ago (KEYS[5]: last grant per message; never = 0). Other edits of a
 * status message (the final one) never wait for a turn but count as one.
 * KEYS: window, pause, [chat edit slot, [chat's waiting messages, their last edits]]
 * ARGV: perSecond, reserve, windowMs, chatEditIntervalMs, window member, [turn, waits for it, staleMs]
 */
export const SEND_BUDGET_ACQUIRE = new LuaScript(
  'send-budget-acquire',
  `
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then return pause end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local turn = ARGV[6]
if turn then
  redis.call('ZADD', KEYS[4], now, turn)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[8]))
  redis.call('PEXPIRE', KEYS[4], 60000)
end
if KEYS[3] then
  local slot = redis.call('PTTL', KEYS[3])
  if slot > 0 then return slot end
end
if turn and ARGV[7] == '1' then
  local mine = tonumber(redis.call('HGET', KEYS[5], turn) or '0')
  for _, other in ipairs(redis.call('ZRANGE', KEYS[4], 0, 99)) do
    if other ~= turn and tonumber(redis.call('HGET', KEYS[5], other) or '0') < mine then
      return tonumber(ARGV[4])
    end
  end
end
local window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local allowed = tonumber(ARGV[1]) - tonumber(ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= allowed then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if not oldest[2] then return window end
  local wait = tonumber(oldest[2]) + window - now
  if wait < 1 then wait = 1 end
  return wait
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], window * 2)
if KEYS[3] then redis.call('SET', KEYS[3], '1', 'PX', ARGV[4]) end
if turn then
  redis.call('ZREM', KEYS[4], turn)
  redis.call('HSET', KEYS[5], turn, now)
  redis.call('PEXPIRE', KEYS[5], 60000)
end
return 0
`,
  { allowOom: true },
);

/** Extends the shared pause to at least ARGV[1] ms (never shortens one a peer set). */
export const SEND_BUDGET_PAUSE = new LuaScript(
  'send-budget-pause',
  `
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
`,
);
