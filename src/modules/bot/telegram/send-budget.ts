import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../../../redis/redis-client';
import { SEND_BUDGET_ACQUIRE, SEND_BUDGET_PAUSE } from '../../../redis/scripts';
import { sleep } from '../../../common/sleep.util';
import type { BotKeys } from '../bot-keys';

/** How late a grant may reach the caller and still be used (see acquire). */
const MAX_GRANT_LAG_MS = 200;

export interface BudgetRequest {
  /** Droppable calls (intermediate progress edits) never wait and leave headroom for the others. */
  droppable: boolean;
  /** Set for edits: the chat whose 1-per-interval edit slot this call takes. */
  editChatId?: number;
  /**
   * With editChatId, for a job's status message: the job. The chat's status messages take turns on its edit slot,
   * so each running job shows progress; a droppable edit waits for its turn, others only count as one.
   */
  turnOf?: string;
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
  /**
   * A status message that has not asked for an edit for this long is no longer waiting for its turn. Longer than
   * the refresher's pass (1 s), so a message whose news was refused asks again before it drops out.
   */
  turnStaleMs?: number;
}

/**
 * The Telegram send budget shared by every bot replica: ≤ perSecond messages (sends and edits) in any window,
 * ≤ 1 edit per chat per interval (taken in turns by the chat's status messages), and a shared pause after a 429 so that no replica keeps hammering Telegram
 * while it asked us to wait. Droppable calls use at most 80% of the window, so results and final edits always
 * find room.
 */
export class SendBudget {
  readonly perSecond: number;
  private readonly windowMs: number;
  private readonly chatEditIntervalMs: number;
  private readonly reserve: number;
  private readonly turnStaleMs: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: BotKeys,
    options: SendBudgetOptions,
  ) {
    this.perSecond = options.perSecond;
    this.windowMs = options.windowMs ?? 1_250;
    this.chatEditIntervalMs = options.chatEditIntervalMs ?? 1_100;
    this.reserve = this.perSecond >= 5 ? Math.floor(this.perSecond / 5) : 0;
    this.turnStaleMs = options.turnStaleMs ?? 2_500;
  }

  /** 0 when granted, else the wait in ms before a grant is possible. */
  async tryAcquire(request: BudgetRequest): Promise<number> {
    const keys = [this.keys.budgetWindow, this.keys.budgetPause];
    const args = [
      String(this.perSecond),
      String(request.droppable ? this.reserve : 0),
      String(this.windowMs),
      String(this.chatEditIntervalMs),
      `${Date.now()}-${randomBytes(6).toString('hex')}`,
    ];
    if (request.editChatId !== undefined) {
      keys.push(this.keys.chatEditSlot(request.editChatId));
      if (request.turnOf !== undefined) {
        keys.push(this.keys.chatEditWaiting(request.editChatId), this.keys.chatEditTurns(request.editChatId));
        args.push(request.turnOf, request.droppable ? '1' : '0', String(this.turnStaleMs));
      }
    }
    return Number(await SEND_BUDGET_ACQUIRE.run(this.redis, keys, args));
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
    await SEND_BUDGET_PAUSE.run(this.redis, [this.keys.budgetPause], [String(Math.ceil(ms))]);
  }
}
