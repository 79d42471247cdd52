import { ShardArbiter, type ArbitratedMember } from './shard-arbiter';

/** One consumer sharing a budget. */
export interface BudgetMember extends ArbitratedMember {
  /** A slot freed: the member starts what it holds (if any) and wakes its reader. */
  onRelease(): void;
  /**
   * The fair-queue start tag of the entry the member would start next (the request entry's `tag` field);
   * -Infinity for a held entry without one (an earlier release's: it goes first rather than wait behind tagged
   * ones), undefined when it holds nothing.
   */
  nextTag(): number | undefined;
}

/**
 * The in-flight limit of one group in one process, shared by its consumers of every shard (STREAM_SHARDS): the
 * process never runs more than `limit` handlers of the group at once, however many shards it reads.
 *
 * Which shard a freed slot goes to: the consumer holding the entry with the lowest start tag, then the others in
 * turn, starting one further each time. The shards' fair queues tag their jobs on a shared virtual time
 * (VirtualTimeFloor), so the lowest tag is the job global start-time fair queuing would start next: an account
 * gets its share of the workers whichever shard it lives in, and the priority tier (which tags more densely) keeps
 * its weight across shards. Entries without tags (the projector's, the bot's) go in turn, so a shard with a deep
 * backlog cannot keep every slot while another shard's entry waits (test/streams/shard-fairness.spec.ts).
 *
 * The members learn the next tags in one of two ways (docs/fair-queue.md#shards). Alone on the shards, each reads
 * one entry ahead and the budget compares what they hold. Beside other gpu processes (`peers`), holding ahead
 * would keep entries from a peer with a free slot, so nobody holds ahead: a freed slot goes to the ShardArbiter,
 * which looks at each shard's next unread entry and takes the lowest.
 */
export class ConcurrencyBudget {
  private used = 0;
  private turn = 0;
  private readonly members: BudgetMember[] = [];
  /** Per member that checks for peers: whether another process's consumer reads its shard. */
  private readonly peersSeen = new Map<BudgetMember, boolean>();
  private readonly arbiter: ShardArbiter;

  constructor(readonly limit: number) {
    this.arbiter = new ShardArbiter(this.members, () => this.free);
  }

  get free(): number {
    return this.limit - this.used;
  }

  get shared(): boolean {
    return this.members.length > 1;
  }

  /** Every member has checked, and no shard has a peer: the members may read ahead. */
  get alone(): boolean {
    return this.peersSeen.size === this.members.length && [...this.peersSeen.values()].every((seen) => !seen);
  }

  /** Shared, and some shard has a peer: a freed slot goes through the arbiter (read ahead off). */
  get arbitrates(): boolean {
    return this.shared && [...this.peersSeen.values()].some(Boolean);
  }

  /**
   * With the arbiter: no choice under way and a slot free (the last look found nothing unread in any shard), so the
   * readers wait for new entries with their blocking reads; else they leave reading to the arbiter.
   */
  get readersOpen(): boolean {
    return !this.arbitrates || this.arbiter.open;
  }

  join(member: BudgetMember): void {
    this.members.push(member);
  }

  notePeers(member: BudgetMember, seen: boolean): void {
    const [arbitrated, alone] = [this.arbitrates, this.alone];
    this.peersSeen.set(member, seen);
    if (arbitrated === this.arbitrates && alone === this.alone) return;
    // The way slots are filled changed: a free slot goes to the arbiter, or the readers (woken) read as they may now.
    if (this.arbitrates && this.free > 0) this.arbiter.run();
    for (const m of this.members) m.onRelease();
  }

  take(): void {
    this.used++;
  }

  release(): void {
    this.used--;
    if (this.arbitrates) {
      this.arbiter.run();
      return;
    }
    const n = this.members.length;
    const start = this.turn++ % n;
    const inTurn = Array.from({ length: n }, (_, i) => this.members[(start + i) % n]);
    if (n > 1) {
      // Stable: equal tags (and untagged entries) keep the turn order.
      const tags = new Map(inTurn.map((m) => [m, m.nextTag() ?? Infinity]));
      inTurn.sort((a, b) => {
        const [x, y] = [tags.get(a)!, tags.get(b)!];
        return x === y ? 0 : x - y;
      });
    }
    for (const member of inTurn) member.onRelease();
  }

  /** A reader took entries with its blocking read: with the arbiter, the next free slot is its choice again. */
  readerTook(member: BudgetMember): void {
    if (this.arbitrates) this.arbiter.readerTook(member);
  }
}
