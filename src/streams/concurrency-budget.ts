/**
 * The in-flight limit of one group in one process, shared by its consumers of every shard (STREAM_SHARDS): the
 * process never runs more than `limit` handlers of the group at once, however many shards it reads. A freed slot is
 * offered to the consumers in turn, starting one further each time, so a shard with a deep backlog cannot keep
 * every slot while another shard's entry waits (test/streams/shard-fairness.spec.ts).
 */
export class ConcurrencyBudget {
  private used = 0;
  private turn = 0;
  private readonly members: (() => void)[] = [];

  constructor(readonly limit: number) {}

  get free(): number {
    return this.limit - this.used;
  }

  /** `onRelease` is called when a slot frees: the member starts what it holds (if any) and wakes its reader. */
  join(onRelease: () => void): void {
    this.members.push(onRelease);
  }

  take(): void {
    this.used++;
  }

  release(): void {
    this.used--;
    const n = this.members.length;
    const start = this.turn++ % n;
    for (let i = 0; i < n; i++) this.members[(start + i) % n]();
  }
}
