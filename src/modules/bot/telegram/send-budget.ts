import { randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import { sleep } from '../../../common/sleep.util';
import type { BotKeys } from '../bot-keys';

/**
 * One grant decision for every replica, on Redis' clock (TIME), so replicas with skewed clocks still share one
 * window: a shared 429 pause first, then the chat's edit interval, then the global sliding window. Returns 0
 * when granted (and records the grant), else how many ms to wait before asking again.
 */
const ACQUIRE_LUA = `
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then return pause end
if KEYS[3] then
  local slot = redis.call('PTTL', KEYS[3])
  if slot > 0 then return slot end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
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
return 0
`;

/** How late a grant may reach the caller and still be used (see acquire). */
const MAX_GRANT_LAG_MS = 200;

/** Extends the shared pause to at least ARGV[1] ms (never shortens one a peer set). */
const PAUSE_LUA = `
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
`;

export interface BudgetRequest {
  /** Droppable calls (intermediate progress edits) never wait and leave headroom for the others. */
  droppable: boolean;
  /** Set for edits: the chat whose 1-per-interval edit slot this call takes. */
  editChatId?: number;
}

export interface SendBudgetOptions {
  perSecond: number;
  /**
   * The window is longer than a second (by a 25% guard): grants are decided here, but Telegram counts arrivals,
   * which trail the grant by a variable delay (upload building, a busy event loop; grants later than
   * MAX_GRANT_LAG_MS are not used). A one-second window would let perSecond + 1 arrivals land in one second.
   */
  windowMs?: number;
  chatEditIntervalMs?: number;
}

/**
 * The Telegram send budget shared by every bot replica: ≤ perSecond messages (sends and edits) in any window,
 * ≤ 1 edit per chat per interval, and a shared pause after a 429 so that no replica keeps hammering Telegram
 * while it asked us to wait. Droppable calls use at most 80% of the window, so results and final edits always
 * find room.
 */
export class SendBudget {
  readonly perSecond: number;
  private readonly windowMs: number;
  private readonly chatEditIntervalMs: number;
  private readonly reserve: number;

  constructor(
    private readonly redis: Redis,
    private readonly keys: BotKeys,
    options: SendBudgetOptions,
  ) {
    this.perSecond = options.perSecond;
    this.windowMs = options.windowMs ?? 1_250;
    this.chatEditIntervalMs = options.chatEditIntervalMs ?? 1_100;
    this.reserve = this.perSecond >= 5 ? Math.floor(this.perSecond / 5) : 0;
  }

  /** 0 when granted, else the wait in ms before a grant is possible. */
  async tryAcquire(request: BudgetRequest): Promise<number> {
    const keys = [this.keys.budgetWindow, this.keys.budgetPause];
    if (request.editChatId !== undefined) keys.push(this.keys.chatEditSlot(request.editChatId));
    const reply = await this.redis.eval(
      ACQUIRE_LUA,
      keys.length,
      ...keys,
      String(this.perSecond),
      String(request.droppable ? this.reserve : 0),
      String(this.windowMs),
      String(this.chatEditIntervalMs),
      `${Date.now()}-${randomBytes(6).toString('hex')}`,
    );
    return Number(reply);
  }

  /**
   * Waits for a grant until `deadline` (epoch ms). A droppable request asks once. Returns false when no grant
   * came in time (or the signal aborted).
   */
  async acquire(request: BudgetRequest, deadline: number, signal?: AbortSignal): Promise<boolean> {
    for (let round = 0; round < 10_000; round++) {
      if (signal?.aborted) return false;
      const asked = Date.now();
      const wait = await this.tryAcquire(request);
      // A grant that reached us late (a stalled event loop) would be sent together with fresher ones and bunch
      // at Telegram: leave that slot spent and take a new one.
      if (wait === 0 && Date.now() - asked <= MAX_GRANT_LAG_MS) return true;
      if (wait === 0) {
        if (request.droppable) return false;
        continue;
      }
      if (request.droppable || Date.now() + wait > deadline) return false;
      // A little jitter so replicas woken by the same pause don't all ask in the same millisecond.
      await sleep(wait + Math.floor(Math.random() * 25), signal);
    }
    return false;
  }

  /** Telegram said "retry after": every replica waits at least that long before its next call. */
  async pause(ms: number): Promise<void> {
    await this.redis.eval(PAUSE_LUA, 1, this.keys.budgetPause, String(Math.ceil(ms)));
  }
}
