/** A shard's next unread entry: its start tag and stream. */
export interface ShardHead {
  tag: number;
  stream: string;
}

/** What the arbiter needs of one shard's consumer. */
export interface ArbitratedMember {
  /** A slot is the member's: it starts what it holds (if any) and wakes its reader. */
  onRelease(): void;
  /** The start tag of the entry it holds and would start next; undefined when it holds nothing. */
  nextTag(): number | undefined;
  /**
   * Its shard's next entry no consumer of the group has read yet (the lowest-tagged of its streams' next ones);
   * undefined when every entry there has been read (STREAM_PEEK_NEXT).
   */
  peekNext(): Promise<ShardHead | undefined>;
  /**
   * Reads its shard's next unread entry without blocking, if its tag is still at most `tag`, and starts it
   * (STREAM_READ_NEXT_UP_TO). Answers whether it did, and the shard's next unread entry now.
   */
  takeNext(tag: number): Promise<{ took: boolean; next: ShardHead | undefined }>;
  /** Ends its blocking read, if one waits: an entry it took now would be held from the peers. */
  interruptRead(): void;
}

interface Offer {
  member: ArbitratedMember;
  tag: number;
  take(): Promise<'took' | 'changed' | 'none'>;
}

interface Known {
  head: ShardHead | undefined;
  at: number;
}

/**
 * How long what the arbiter learnt of a shard stands. A shard's next unread entry only moves later as entries are
 * read (a stale one is caught by the conditional read), but a shard seen empty gets new entries: for this long
 * its newcomers wait, at most, while other shards' entries start.
 */
export const SHARD_HEAD_TTL_MS = 250;

/** A bound on one arbitration's rounds (each ends with a slot taken or a shard passed over). */
const MAX_ROUNDS = 1_000;

/**
 * Gives a gpu process's free slots to the lowest start tag of any shard when other gpu processes read the same
 * shards (docs/fair-queue.md#shards). Reading one entry ahead per shard and comparing what is held (the budget's
 * way when a process is alone) would keep a held entry from a peer whose slot is free; here nobody holds ahead.
 * Instead, when a slot frees, the arbiter compares every shard's next unread entry and reads the lowest without
 * blocking, so the slot goes where one global fair queue would send it. It learns a shard's next entry from its
 * last read there (the read answers it) or by looking (STREAM_PEEK_NEXT, for shards not read from within
 * SHARD_HEAD_TTL_MS, in parallel). The read is conditional (STREAM_READ_NEXT_UP_TO): if a peer read that entry
 * first and the shard's next one has a higher tag, it reads nothing, answers the new one, and the arbiter chooses
 * again. When no shard has anything unread the readers are opened: they wait on their blocking reads, and the first
 * entry to arrive starts.
 *
 * Where it bends: a shard's entries are compared only once dispatched to its stream (QUEUE_DISPATCH_AHEAD at a
 * time); an entry another process holds (read while its slots were busy) is compared by that process, not here;
 * and a shard seen empty is looked at again only after SHARD_HEAD_TTL_MS.
 */
export class ShardArbiter {
  private running = false;
  private again = false;
  private turn = 0;
  private readonly known = new Map<ArbitratedMember, Known>();

  constructor(
    private readonly members: readonly ArbitratedMember[],
    private readonly free: () => number,
    private readonly headTtlMs = SHARD_HEAD_TTL_MS,
  ) {}

  /**
   * No choice under way and a slot free: the readers' blocking reads fill it (the last choice found nothing unread
   * in any shard). Derived, never stored: a free slot always has somebody to fill it.
   */
  get open(): boolean {
    return !this.running && this.free() > 0;
  }

  /** A slot freed or a reader took an entry: choose again (once the current choice, if any, is done). */
  run(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    // The readers' blocking reads would take what arrives next, even with every slot busy, and hold it from the
    // peers: the arbiter chooses from here on.
    for (const member of this.members) member.interruptRead();
    this.running = true;
    this.again = false;
    void this.arbitrate()
      .catch(() => undefined)
      .finally(() => {
        this.running = false;
        // Something changed while it chose (a slot freed, a reader took an entry): choose again.
        if (this.again) return this.run();
        // Nothing unread anywhere (or a look failed): a slot still free is the readers' now, so wake them.
        if (this.free() > 0) for (const member of this.members) member.onRelease();
      });
  }

  /** A blocking read took an entry: its shard has entries after all (it may have been seen empty), choose again. */
  readerTook(member: ArbitratedMember): void {
    this.known.delete(member);
    this.run();
  }

  private async arbitrate(): Promise<void> {
    const passed = new Set<ArbitratedMember>();
    for (let round = 0; round < MAX_ROUNDS && this.free() > 0; round++) {
      const offer = await this.lowest(passed);
      if (!offer) return;
      // `changed`: a peer was quicker, and this shard's next entry may no longer be the lowest: choose again.
      if ((await offer.take()) === 'none') passed.add(offer.member);
    }
  }

  /** The lowest tag any member holds or its shard offers; equal tags go to the shards in turn. */
  private async lowest(passed: ReadonlySet<ArbitratedMember>): Promise<Offer | undefined> {
    const n = this.members.length;
    const start = this.turn++ % n;
    const inTurn = Array.from({ length: n }, (_, i) => this.members[(start + i) % n]);
    const offers = await Promise.all(inTurn.filter((m) => !passed.has(m)).map((m) => this.offerOf(m)));
    let best: Offer | undefined;
    for (const offer of offers) if (offer && (!best || offer.tag < best.tag)) best = offer;
    return best;
  }

  private async offerOf(member: ArbitratedMember): Promise<Offer | undefined> {
    const held = member.nextTag();
    if (held !== undefined) {
      return {
        member,
        tag: held,
        take: () => {
          // It starts the entry unless it cannot (closing): then it is no offer, not a slot taken.
          const free = this.free();
          member.onRelease();
          return Promise.resolve(this.free() < free ? ('took' as const) : ('none' as const));
        },
      };
    }
    const head = await this.headOf(member);
    return (
      head && {
        member,
        tag: head.tag,
        take: async () => {
          // A failed read (a shard's primary away) leaves that shard to its blocking reader.
          const result = await member.takeNext(head.tag).catch(() => undefined);
          this.known.set(member, { head: result?.next, at: Date.now() });
          if (result?.took) return 'took';
          return result?.next ? 'changed' : 'none';
        },
      }
    );
  }

  private async headOf(member: ArbitratedMember): Promise<ShardHead | undefined> {
    const known = this.known.get(member);
    if (known && Date.now() - known.at < this.headTtlMs) return known.head;
    // A failed look leaves that shard to its blocking reader.
    const head = await member.peekNext().catch(() => undefined);
    this.known.set(member, { head, at: Date.now() });
    return head;
  }
}
