import { ShardArbiter, type ArbitratedMember } from '../../src/streams/shard-arbiter';
import { pollUntil } from '../support/poll-until';

/** A shard's consumer as the arbiter sees it: a queue of unread tags, of which peers may read some first. */
class FakeShard implements ArbitratedMember {
  readonly started: number[] = [];
  held: number | undefined;
  releases = 0;
  interrupted = 0;
  peeks = 0;
  reads = 0;
  /** Tags a peer reads between this shard's peek and its read. */
  readonly stolenOnRead: number[] = [];

  constructor(
    readonly name: string,
    readonly unread: number[],
    private readonly log: string[],
    private readonly slots: { used: number },
  ) {}

  onRelease(): void {
    this.releases++;
    if (this.held !== undefined && this.slots.used < 1) {
      this.slots.used++;
      this.log.push(`${this.name}:${this.held}`);
      this.held = undefined;
    }
  }

  nextTag(): number | undefined {
    return this.held;
  }

  peekNext(): Promise<{ tag: number; stream: string } | undefined> {
    this.peeks++;
    const tag = this.unread[0];
    return Promise.resolve(tag === undefined ? undefined : { tag, stream: this.name });
  }

  takeNext(tag: number): Promise<{ took: boolean; next: { tag: number; stream: string } | undefined }> {
    this.reads++;
    if (this.stolenOnRead.length > 0 && this.unread[0] === this.stolenOnRead[0]) {
      this.stolenOnRead.shift();
      this.unread.shift();
    }
    const head = () => (this.unread[0] === undefined ? undefined : { tag: this.unread[0], stream: this.name });
    const next = this.unread[0];
    if (next === undefined || next > tag) return Promise.resolve({ took: false, next: head() });
    this.unread.shift();
    this.slots.used++;
    this.log.push(`${this.name}:${next}`);
    return Promise.resolve({ took: true, next: head() });
  }

  interruptRead(): void {
    this.interrupted++;
  }
}

/** One slot; each test frees it, lets the arbiter fill it, and records what started. */
function setUp(shards: Record<string, number[]>) {
  const log: string[] = [];
  const slots = { used: 1 };
  const members = Object.entries(shards).map(([name, tags]) => new FakeShard(name, [...tags], log, slots));
  // What it learnt of a shard stands for the whole test (a slow machine would otherwise make it look again).
  const arbiter = new ShardArbiter(members, () => 1 - slots.used, 60_000);
  const freeOne = async () => {
    const before = log.length;
    slots.used--;
    arbiter.run();
    await pollUntil(
      () => ({ started: log.length > before, open: arbiter.open }),
      (s) => s.started || s.open,
      { timeoutMs: 2_000, intervalMs: 1, description: 'the arbiter chose' },
    );
  };
  return { log, members, arbiter, freeOne };
}

describe('ShardArbiter: a freed slot goes to the lowest start tag of any shard', () => {
  it('starts the lowest next tag across shards, in order, then opens the readers when nothing is left', async () => {
    const { log, arbiter, members, freeOne } = setUp({ x: [0, 4, 8, 12], y: [0, 4, 8], z: [2] });
    for (let i = 0; i < 8; i++) await freeOne();
    expect(log.map((s) => Number(s.split(':')[1]))).toEqual([0, 0, 2, 4, 4, 8, 8, 12]);
    // Equal tags take turns between the shards.
    expect(log.slice(0, 2).sort()).toEqual(['x:0', 'y:0']);
    await freeOne();
    expect(arbiter.open).toBe(true);
    // Opening woke every reader (their blocking reads wait for new entries), and closing again interrupts them.
    expect(members.every((m) => m.releases > 0)).toBe(true);
    const interrupted = members.map((m) => m.interrupted);
    arbiter.run();
    expect(members.map((m) => m.interrupted)).toEqual(interrupted.map((n) => n + 1));
  });

  it("learns a shard's next entry from its last read there: one look per shard, not one per freed slot", async () => {
    const { log, members, freeOne } = setUp({ x: [0, 4, 8], y: [1, 5, 9] });
    for (let i = 0; i < 6; i++) await freeOne();
    expect(log).toEqual(['x:0', 'y:1', 'x:4', 'y:5', 'x:8', 'y:9']);
    expect(members.map((m) => m.peeks)).toEqual([1, 1]);
    expect(members.map((m) => m.reads)).toEqual([3, 3]);
  });

  it('compares a held entry with the shards it looks at, and starts it when it is lowest', async () => {
    const { log, members, freeOne } = setUp({ x: [8], y: [4] });
    members[0]!.held = 2;
    await freeOne();
    expect(log).toEqual(['x:2']);
    await freeOne();
    expect(log).toEqual(['x:2', 'y:4']);
  });

  it('looks again when a peer read the chosen entry first and the next one is higher', async () => {
    const { log, members, freeOne } = setUp({ x: [0, 8], y: [4] });
    members[0]!.stolenOnRead.push(0);
    await freeOne();
    // x's 0 went to a peer; x's next is 8, so y's 4 is the lowest now: not x's 8, which a plain read would start.
    expect(log).toEqual(['y:4']);
  });

  it('passes over a shard whose entries a peer read to the end', async () => {
    const { log, members, freeOne } = setUp({ x: [0], y: [4] });
    members[0]!.stolenOnRead.push(0);
    await freeOne();
    expect(log).toEqual(['y:4']);
  });
});
