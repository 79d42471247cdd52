/** What the arbiter needs of one shard's consumer. */
export interface ArbitratedMember {
  /** A slot is the member's: it starts what it holds (if any) and wakes its reader. */
  onRelease(): void;
  /** The start tag of the entry it holds and would start next; undefined when it holds nothing. */
  nextTag(): number | undefined;
  /**
   * The start tag of its shard's next entry no consumer of the group has read yet, and that entry's stream;
   * undefined when every entry there has been read (one script call: STREAM_PEEK_NEXT).
   */
  peekNext(): Promise<{ tag: number; stream: string } | undefined>;
  /**
   * Reads that stream's next entry without blocking, if its tag is still at most `tag`, and starts it: `changed`
   * when a peer read the peeked entry first and the next one has a higher tag, `none` when nothing is unread.
   */
  takeNext(stream: string, tag: number): Promise<'took' | 'changed' | 'none'>;
  /** Ends its blocking read, if one waits: an entry it took now would be held from the peers. */
  interruptRead(): void;
}

interface Offer {
  member: ArbitratedMember;
  tag: number;
  take(): Promise<'took' | 'changed' | 'none'>;
}

/** A bound on one arbitration's rounds (each ends with a slot taken or a shard passed over). */
const MAX_ROUNDS = 1_000;

/**
 * Gives a gpu process's free slots to the lowest start tag of any shard when other gpu processes read the same
 * shards (docs/fair-queue.md#shards). Reading one entry ahead per shard and comparing what is held (the budget's
 * way when a process is alone) would keep a held entry from a peer whose slot is free; here nobody holds ahead.
 * Instead, when a slot frees, the arbiter looks at every shard's next unread entry (one script call per shard, in
 * parallel) and reads the lowest one without blocking, so the slot goes where one global fair queue would send it.
 * The read is conditional (STREAM_READ_NEXT_UP_TO): if a peer read that entry first and the shard's next one has a
 * higher tag, nothing is read and the arbiter looks again. When no shard has anything unread the readers are
 * opened: they wait on their blocking reads, and the first entry to arrive starts.
 *
 * Where it bends: a shard's entries are compared only once dispatched to its stream (QUEUE_DISPATCH_AHEAD at a
 * time), and an entry another process holds (read while its slots were busy) is compared by that process, not here.
 */
export class ShardArbiter {
  /** The last look found nothing unread: the readers' blocking reads wait for new entries. */
  open = true;
  private running = false;
  private again = false;
  private turn = 0;

  constructor(
    private readonly members: readonly ArbitratedMember[],
    private readonly free: () => number,
  ) {}

  /** A slot freed or a reader took an entry: choose again (once the current choice, if any, is done). */
  run(): void {
    if (this.open) {
      // The readers' blocking reads would take what arrives next, even with every slot busy, and hold it from the
      // peers: the arbiter chooses from here on.
      this.open = false;
      for (const member of this.members) member.interruptRead();
    }
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.arbitrate()
      .catch(() => this.openReaders())
      .finally(() => (this.running = false));
  }

  private async arbitrate(): Promise<void> {
    let rounds = 0;
    do {
      this.again = false;
      const passed = new Set<ArbitratedMember>();
      while (this.free() > 0) {
        if (++rounds > MAX_ROUNDS) return this.openReaders();
        const offer = await this.lowest(passed);
        if (!offer) return this.openReaders();
        // `changed`: a peer was quicker; look at every shard again, this one's next entry may no longer be lowest.
        if ((await offer.take()) === 'none') passed.add(offer.member);
      }
    } while (this.again);
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
          member.onRelease();
          return Promise.resolve('took' as const);
        },
      };
    }
    // A failed look (a shard's primary away) leaves that shard to its blocking reader.
    const next = await member.peekNext().catch(() => undefined);
    return (
      next && {
        member,
        tag: next.tag,
        take: () => member.takeNext(next.stream, next.tag).catch(() => 'none' as const),
      }
    );
  }

  private openReaders(): void {
    this.open = true;
    for (const member of this.members) member.onRelease();
  }
}
