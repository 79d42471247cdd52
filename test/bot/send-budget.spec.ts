import type Redis from 'ioredis';
import { BotKeys } from '../../src/modules/bot/bot-keys';
import { SendBudget } from '../../src/modules/bot/telegram/send-budget';
import { StreamKeys } from '../../src/streams/stream-keys';
import { pollUntil } from '../support/poll-until';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';

describe('SendBudget (shared by replicas through Redis)', () => {
  let redis: Redis;
  let prefix: string;
  let keys: BotKeys;

  beforeEach(() => {
    redis = testRedis();
    prefix = uniquePrefix('budget');
    keys = new BotKeys(new StreamKeys(prefix));
  });

  afterEach(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('two replicas together get at most perSecond grants per window, then a wait', async () => {
    const a = new SendBudget(redis, keys, { perSecond: 10, windowMs: 5_000 });
    const b = new SendBudget(redis, keys, { perSecond: 10, windowMs: 5_000 });
    const waits = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).tryAcquire({ droppable: false })),
    );
    expect(waits.filter((w) => w === 0)).toHaveLength(10);
    for (const w of waits.filter((x) => x > 0)) expect(w).toBeLessThanOrEqual(5_000);
  });

  it('droppable calls leave a fifth of the window to the others', async () => {
    const budget = new SendBudget(redis, keys, { perSecond: 10, windowMs: 5_000 });
    let droppable = 0;
    while ((await budget.tryAcquire({ droppable: true })) === 0 && droppable < 20) droppable++;
    expect(droppable).toBe(8);
    expect(await budget.tryAcquire({ droppable: false })).toBe(0);
    expect(await budget.tryAcquire({ droppable: false })).toBe(0);
    expect(await budget.tryAcquire({ droppable: false })).toBeGreaterThan(0);
  });

  it('one edit per chat per interval; other chats are not held up', async () => {
    const budget = new SendBudget(redis, keys, { perSecond: 25, chatEditIntervalMs: 2_000 });
    expect(await budget.tryAcquire({ droppable: true, editChatId: 1 })).toBe(0);
    const wait = await budget.tryAcquire({ droppable: true, editChatId: 1 });
    expect(wait).toBeGreaterThan(1_500);
    expect(wait).toBeLessThanOrEqual(2_000);
    expect(await budget.tryAcquire({ droppable: true, editChatId: 2 })).toBe(0);
    expect(await budget.tryAcquire({ droppable: false })).toBe(0); // sends don't take the chat's edit slot
  });

  it("a chat's status messages take turns on its edit slot; one that stops asking is not waited for", async () => {
    const budget = new SendBudget(redis, keys, { perSecond: 25, chatEditIntervalMs: 200, turnStaleMs: 400 });
    const edit = (job: string, droppable = true, chat = 1) =>
      budget.tryAcquire({ droppable, editChatId: chat, turnOf: job });
    const slotFree = () =>
      pollUntil(
        () => redis.pttl(keys.chatEditSlot(1)),
        (ms) => ms <= 0,
        { description: 'chat edit slot free' },
      );
    expect(await edit('a')).toBe(0);
    expect(await edit('b')).toBeGreaterThan(0); // slot busy: b now waits for its turn
    await slotFree();
    expect(await edit('a')).toBeGreaterThan(0); // free, but b's turn (never edited)
    expect(await edit('b')).toBe(0);
    await slotFree();
    expect(await edit('b')).toBeGreaterThan(0); // a asked meanwhile and was edited longer ago
    expect(await edit('a')).toBe(0);
    expect(await edit('c', true, 2)).toBe(0); // another chat: its own slot and turns
    // b asks no more (its job ended, or its message shows the latest): a is held back only until b drops out.
    await pollUntil(
      () => edit('a'),
      (wait) => wait === 0,
      { timeoutMs: 3_000, description: 'a granted once b stopped asking' },
    );
    // b waits again; a final edit of a (not droppable) does not wait for b's turn.
    expect(await edit('b')).toBeGreaterThan(0);
    await slotFree();
    expect(await edit('a', false)).toBe(0);
  });

  it('a 429 pause holds every replica, is never shortened, and acquire waits it out within the deadline', async () => {
    const a = new SendBudget(redis, keys, { perSecond: 25 });
    const b = new SendBudget(redis, keys, { perSecond: 25 });
    await a.pause(400);
    await b.pause(100);
    expect(await b.tryAcquire({ droppable: false })).toBeGreaterThan(200);
    expect(await a.acquire({ droppable: true }, Date.now() + 5_000)).toBe(false); // droppable: no waiting
    expect(await a.acquire({ droppable: false }, Date.now() + 100)).toBe(false); // deadline before the pause ends
    const started = Date.now();
    expect(await b.acquire({ droppable: false }, Date.now() + 5_000)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });
});
