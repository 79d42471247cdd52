import { ConcurrencyBudget, type BudgetMember } from '../../src/streams/concurrency-budget';
import { ShardArbiter, type ShardHead } from '../../src/streams/shard-arbiter';
import { pollUntil } from '../support/poll-until';

/** A shard's consumer as the budget sees it, with a queue of unread tags it starts into the budget's slots. */
class FakeMember implements BudgetMember {
  woken = 0;
  readonly started: number[] = [];

  constructor(
    private readonly slots: { take(): void; readonly free: number },
    readonly unread: number[] = [],
  ) {}

  onRelease(): void {
    this.woken++;
  }

  nextTag(): number | undefined {
    return undefined;
  }

  peekNext(): Promise<ShardHead | undefined> {
    const tag = this.unread[0];
    return Promise.resolve(tag === undefined ? undefined : { tag, stream: 's' });
  }

  takeNext(tag: number): Promise<{ took: boolean; next: ShardHead | undefined }> {
    const next = this.unread[0];
    const head = () => (this.unread[0] === undefined ? undefined : { tag: this.unread[0], stream: 's' });
    if (next === undefined || next > tag || this.slots.free <= 0) return Promise.resolve({ took: false, next: head() });
    this.unread.shift();
    this.slots.take();
    this.started.push(next);
    return Promise.resolve({ took: true, next: head() });
  }

  interruptRead(): void {}
}

describe('ConcurrencyBudget shared by shards, beside peers', () => {
  it('never leaves a free slot with nobody to fill it when the process goes from alone to beside peers', async () => {
    const budget = new ConcurrencyBudget(1);
    const [a, b] = [new FakeMember(budget, [0, 4, 8]), new FakeMember(budget, [2, 6])];
    budget.join(a);
    budget.join(b);
    budget.notePeers(a, true);
    budget.notePeers(b, false);
    expect(budget.arbitrates).toBe(true);
    // A job runs; its slot frees: the arbiter fills it (tag 0) and ends with the readers closed, as it should.
    budget.take();
    budget.release();
    await pollUntil(
      () => ({ free: budget.free, open: budget.readersOpen }),
      (s) => s.free === 0 && !s.open,
      { timeoutMs: 2_000, intervalMs: 1, description: 'the arbiter filled the slot' },
    );
    // The peer leaves: alone, a release takes the old way (the member is woken to read ahead).
    budget.notePeers(a, false);
    expect(budget.alone).toBe(true);
    budget.release();
    // The peer comes back while the slot is free: the arbiter must fill it, or the readers read; nothing did.
    const woken = a.woken;
    budget.notePeers(b, true);
    expect(budget.arbitrates).toBe(true);
    await pollUntil(
      () => ({ free: budget.free, open: budget.readersOpen }),
      (s) => s.free === 0 || s.open,
      { timeoutMs: 2_000, intervalMs: 1, description: 'the free slot has somebody to fill it' },
    );
    expect([...a.started, ...b.started]).toEqual([0, 2]);
    expect(a.woken).toBeGreaterThan(woken);
  });

  it('reads ahead only once every shard has checked and none has a peer', () => {
    const budget = new ConcurrencyBudget(1);
    const [a, b] = [new FakeMember(budget), new FakeMember(budget)];
    budget.join(a);
    budget.join(b);
    budget.notePeers(a, false);
    expect(budget.alone).toBe(false);
    budget.notePeers(b, false);
    expect(budget.alone).toBe(true);
  });
});

describe('ShardArbiter under releases that come while it chooses', () => {
  it.each(Array.from({ length: 12 }, (_, i) => i))(
    'a second freed slot %i microtasks after the first is filled too',
    async (delay) => {
      const slots = {
        used: 2,
        take: () => slots.used++,
        get free() {
          return 2 - slots.used;
        },
      };
      const members = [new FakeMember(slots, [0, 2, 4, 6, 8]), new FakeMember(slots, [1, 3, 5, 7, 9])];
      const arbiter = new ShardArbiter(members, () => slots.free, 60_000);
      slots.used--;
      arbiter.run();
      for (let i = 0; i < delay; i++) await Promise.resolve();
      slots.used--;
      arbiter.run();
      await pollUntil(
        () => slots.free,
        (free) => free === 0,
        { timeoutMs: 2_000, intervalMs: 1, description: 'both slots filled' },
      );
      expect(members.flatMap((m) => m.started).sort()).toEqual([0, 1]);
    },
  );
});
