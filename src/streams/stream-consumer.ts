import { ConcurrencyBudget, type BudgetMember } from './concurrency-budget';
import type { ShardHead } from './shard-arbiter';
import { duplicateConnection, isCluster, type RedisClient } from '../redis/redis-client';
import { sleep } from '../common/sleep.util';
import { silentLogger, withFields, type Logger } from '../common/logger';
import { AckBatcher } from './ack-batcher';
import { blockingCall } from './blocking-call';
import { ConsumerHeartbeat } from './consumer-heartbeat.script';
import { DeadLetterWriter } from './dead-letter.writer';
import { decodeEntry } from './envelope.codec';
import type { AnyJobEnvelope } from './job-event.types';
import { errorMessage, HandOffError, inPlaceRetryDelay, isDeadLetterError } from './stream-errors';
import type { StreamKeys } from './stream-keys';
import { parseAutoclaimReply, parseReadReply, type RawEntry } from './stream-reply.parser';
import { STREAM_PEEK_NEXT, STREAM_READ_NEXT_UP_TO } from '../redis/scripts';

export interface HandlerContext {
  stream: string;
  id: string;
  group: string;
  consumer: string;
  /** 1 on first delivery; grows with every claim/redelivery. */
  deliveries: number;
  /** Aborted when the consumer shuts down past its grace period or loses the entry to another consumer. */
  signal: AbortSignal;
  /** The entry's raw field/value list (the envelope field and any others a producer added). */
  fields: readonly string[];
}

export type EntryHandler = (envelope: AnyJobEnvelope, ctx: HandlerContext) => Promise<void>;

export interface StreamConsumerOptions {
  /** Read order is priority order. */
  streams: readonly string[];
  group: string;
  consumer: string;
  concurrency: number;
  claimIdleMs: number;
  maxDeliveries: number;
  /** Dead letters from this group end the job (true for the group that does the work). */
  deadLetterEndsJob: boolean;
  handle: EntryHandler;
  blockMs?: number;
  /** After a read that returned entries, wait this long before the next (entries arriving meanwhile come in one). */
  readBatchMs?: number;
  heartbeatMs?: number;
  sweepIntervalMs?: number;
  /**
   * Peers may hand this consumer entries (HandOffError): it listens on its hand-off channel and takes each entry
   * it is told about. A wake-up lost with a reconnect costs time, not the entry: it goes idle in this consumer's
   * PEL and a sweeper claims it after CLAIM_IDLE_MS, as it would a crashed consumer's.
   */
  acceptsHandOffs?: boolean;
  logger?: Logger;
  /**
   * Shared with this group's consumers of the other shards: `concurrency` is then the group's limit in the process,
   * not this consumer's (ConcurrencyBudget). Unset: a budget of its own.
   */
  budget?: ConcurrencyBudget;
  /**
   * With a shared budget: read one entry ahead while every slot is busy, so the budget can compare each shard's next
   * job's start tag when a slot frees (the gpu group with STREAM_SHARDS > 1). The entry is held, as any read entry is,
   * and heartbeats keep it this consumer's; a peer with a free slot takes the shard's other dispatched entries.
   */
  lookahead?: boolean;
}

interface HeldEntry {
  stream: string;
  id: string;
  fields: string[];
  deliveries: number;
  abort: AbortController;
  lost: boolean;
  /** Handled (being acked or dead-lettered): the heartbeat leaves it alone. */
  settled?: boolean;
  /** The fair-queue start tag a request entry carries (`tag`; -Infinity without one), read when first compared. */
  tag?: number;
}

export interface ConsumerStats {
  group: string;
  consumer: string;
  inFlight: number;
  backlog: number;
  processed: number;
  failed: number;
  deadLettered: number;
  claimed: number;
  readErrors: number;
  /** Entries this consumer passed to a peer that can do their work. */
  handedOff: number;
  lastReadAt: number;
  /** Reads an entry ahead of its free slots (the gpu group with shards, while no peer reads the shards). */
  readsAhead: boolean;
  /** Beside peers: a freed slot goes to the shard whose next unread entry has the lowest start tag (ShardArbiter). */
  arbitrated: boolean;
}

const MAX_BACKOFF_MS = 5_000;
const MAX_PARKED = 10_000;

/**
 * One consumer of one group: the loop ARCHITECTURE describes. Reads its own PEL first, then new entries with
 * XREADGROUP on a dedicated blocking connection, never holding more than `concurrency` in flight; beside the
 * loop a heartbeat keeps held entries fresh and a sweeper takes idle entries of dead consumers (XAUTOCLAIM).
 * Nothing ends the loop but close(); connection errors back off and retry.
 */
export class StreamConsumer {
  private readonly log: Logger;
  private readonly blockMs: number;
  private readonly heartbeatMs: number;
  private readonly sweepIntervalMs: number;
  private readonly dlq: DeadLetterWriter;
  private readonly heartbeat: ConsumerHeartbeat;
  private readonly acks: AckBatcher;
  private readonly budget: ConcurrencyBudget;
  private readonly held = new Map<string, HeldEntry>();
  /** Entries this consumer failed and left pending for a later attempt (by a sweeper after CLAIM_IDLE_MS). */
  private readonly parked = new Set<string>();
  private readonly backlog: HeldEntry[] = [];
  /** This consumer as its budget sees it. */
  private readonly member: BudgetMember;
  /** The reader waits in XREADGROUP … BLOCK. */
  private blockingRead = false;
  private readonly running = new Set<Promise<void>>();
  private readonly stopController = new AbortController();
  private blocking?: RedisClient;
  private subscriber?: RedisClient;
  private blockingClientId?: number;
  private loopPromise?: Promise<void>;
  private sweeperPromise?: Promise<void>;
  private heartbeatTimer?: NodeJS.Timeout;
  private closePromise?: Promise<void>;
  private wake: () => void = () => undefined;
  private groupsReady = false;
  private closing = false;
  private readonly counters = {
    processed: 0,
    failed: 0,
    deadLettered: 0,
    claimed: 0,
    readErrors: 0,
    handedOff: 0,
    lastReadAt: 0,
  };

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: StreamKeys,
    private readonly options: StreamConsumerOptions,
  ) {
    this.log = withFields(options.logger ?? silentLogger, { group: options.group, consumer: options.consumer });
    this.blockMs = options.blockMs ?? 5_000;
    this.heartbeatMs = options.heartbeatMs ?? Math.max(50, Math.floor(options.claimIdleMs / 3));
    this.sweepIntervalMs =
      options.sweepIntervalMs ?? Math.min(5_000, Math.max(50, Math.floor(options.claimIdleMs / 2)));
    this.dlq = new DeadLetterWriter(redis, keys);
    this.heartbeat = new ConsumerHeartbeat(redis);
    this.acks = new AckBatcher(redis, options.group);
    this.budget = options.budget ?? new ConcurrencyBudget(options.concurrency);
    this.member = {
      onRelease: () => {
        this.dispatch();
        this.wake();
      },
      nextTag: () => {
        const next = this.nextEntryIndex();
        return next === undefined ? undefined : tagOf(this.backlog[next]);
      },
      peekNext: () => this.peekNext(),
      takeNext: (tag) =>
        this.takeNext(tag).catch((err: unknown) => {
          // The script may have read an entry whose answer was lost (a timeout, a dropped connection): it is in
          // this consumer's PEL but not held. Take it now rather than after CLAIM_IDLE_MS.
          void this.takeUnheardHandOffs();
          throw err;
        }),
      interruptRead: () => this.interruptRead(),
    };
    this.budget.join(this.member);
  }

  get name(): string {
    return this.options.consumer;
  }

  stats(): ConsumerStats {
    return {
      group: this.options.group,
      consumer: this.options.consumer,
      inFlight: this.running.size,
      backlog: this.backlog.length,
      ...this.counters,
      readsAhead: this.readsAhead,
      arbitrated: this.options.lookahead === true && this.budget.arbitrates,
    };
  }

  /** Starts the loops; resolves once the groups exist (so a test can append right after). */
  async start(): Promise<void> {
    this.blocking = duplicateConnection(this.redis, {
      maxRetriesPerRequest: null,
      connectionName: `${this.options.consumer}:${this.options.group}:block`,
      enableAutoPipelining: false,
    });
    this.blocking.on('error', (err: Error) => this.log.debug({ err: err.message }, 'blocking connection error'));
    // A read in flight when the connection drops is sent again on the next one (after a failover: to the new
    // primary), where this connection has another client id: the old one must not be CLIENT UNBLOCKed there.
    this.blocking.on('close', () => (this.blockingClientId = undefined));
    await this.ensureGroups().catch((err: unknown) => {
      this.log.warn({ err: errorMessage(err), group: this.options.group }, 'cannot create groups yet; will retry');
    });
    await this.checkAlone().catch(() => undefined);
    if (this.options.acceptsHandOffs) this.listenForHandOffs();
    this.loopPromise = this.runLoop();
    this.sweeperPromise = this.runSweeper();
    this.heartbeatTimer = setInterval(() => void this.beat(), this.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  /**
   * Stops reading, hands back entries not yet started, waits up to `graceMs` for in-flight handlers, hands
   * back what is still running, and deletes the consumer only if its PEL is empty. Memoised.
   */
  close(graceMs = 10_000): Promise<void> {
    this.closePromise ??= this.doClose(graceMs);
    return this.closePromise;
  }

  private async doClose(graceMs: number): Promise<void> {
    this.closing = true;
    this.stopController.abort();
    this.wake();
    await this.unblockReader();
    await this.loopPromise?.catch(() => undefined);
    await this.sweeperPromise?.catch(() => undefined);
    const waiting = this.backlog.splice(0);
    for (const entry of waiting) this.held.delete(heldKey(entry.stream, entry.id));
    await this.handBack(waiting);
    await waitAll(this.running, graceMs);
    // Stop the heartbeat first: a beat during the hand-back would reset the idle time peers wait for.
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    const stillRunning = [...this.held.values()];
    for (const entry of stillRunning) {
      entry.settled = true;
      entry.abort.abort(new Error('consumer shutting down'));
    }
    await this.handBack(stillRunning);
    await this.deleteConsumerIfIdle();
    this.blocking?.disconnect();
    this.subscriber?.disconnect();
  }

  /**
   * Subscribes on every (re)connect — a SUBSCRIBE that failed is never replayed by ioredis — and then takes what
   * was handed over while nobody listened (a reconnect drops pub/sub messages). Not awaited by start(): a Redis
   * that is down holds up nothing; the first `ready` catches up.
   */
  private listenForHandOffs(): void {
    if (this.closing) return;
    const channel = this.keys.handOffChannel(this.options.group, this.options.consumer);
    const subscriber = duplicateConnection(this.redis, {
      connectionName: `${this.options.consumer}:${this.options.group}:handoffs`,
      enableAutoPipelining: false,
      maxRetriesPerRequest: null,
    });
    this.subscriber = subscriber;
    subscriber.on('error', (err: Error) => this.log.debug({ err: err.message }, 'hand-off listener error'));
    subscriber.on('message', (_channel: string, message: string) => void this.takeHandedOff(message));
    subscriber.on('ready', () => {
      if (this.closing) return;
      subscriber.subscribe(channel).then(
        () => this.takeUnheardHandOffs(),
        (err: unknown) => this.log.warn({ err: errorMessage(err), channel }, 'cannot listen for hand-offs yet'),
      );
    });
  }

  /** Entries in this consumer's PEL it neither holds nor left pending itself: handed over while it was not listening. */
  private async takeUnheardHandOffs(): Promise<void> {
    for (const stream of this.options.streams) {
      const rows = (await this.redis
        .xpending(stream, this.options.group, '-', '+', 100, this.options.consumer)
        .catch(() => [])) as [string, string, number, number][];
      for (const [id] of rows) {
        const key = heldKey(stream, id);
        if (!this.held.has(key) && !this.parked.has(key)) await this.takeHandedOff(`${stream} ${id}`);
      }
    }
  }

  /** Takes an entry a peer handed to this consumer (message: `<stream> <id>`), unless it is no longer ours. */
  private async takeHandedOff(message: string): Promise<void> {
    const [stream, id] = message.split(' ');
    if (
      this.closing ||
      !stream ||
      !id ||
      !this.options.streams.includes(stream) ||
      this.held.has(heldKey(stream, id))
    ) {
      return;
    }
    try {
      const [[, pending], [, range]] = (await this.redis
        .pipeline()
        .xpending(stream, this.options.group, id, id, 1)
        .xrange(stream, id, id)
        .exec()) as [[Error | null, [string, string, number, number][]], [Error | null, [string, string[]][]]];
      const row = pending?.[0];
      if (!row || row[1] !== this.options.consumer) return;
      const fields = range?.[0]?.[1] ?? null;
      if (this.closing) {
        // Arrived while shutting down: a peer takes it now rather than after CLAIM_IDLE_MS.
        await this.handBack([
          { stream, id, fields: [], deliveries: row[3], abort: new AbortController(), lost: false },
        ]);
        return;
      }
      this.accept(stream, [{ id, fields }], () => row[3]);
      this.dispatch();
    } catch (err) {
      this.log.warn({ err: errorMessage(err), entryId: id }, 'could not take a handed-off entry; a sweeper will');
    }
  }

  private async unblockReader(): Promise<void> {
    if (this.blockingClientId === undefined) {
      // Its id on this server is not known (never read, or reconnected since): dropping the connection ends a read.
      this.blocking?.disconnect();
      return;
    }
    try {
      await this.redis.call('CLIENT', 'UNBLOCK', String(this.blockingClientId));
    } catch {
      this.blocking?.disconnect();
    }
  }

  private async runLoop(): Promise<void> {
    let backoff = 100;
    let ownPendingRead = false;
    while (!this.closing) {
      try {
        if (!this.groupsReady) await this.ensureGroups();
        if (!ownPendingRead) {
          await this.readOwnPending();
          ownPendingRead = true;
        }
        await this.waitForCapacity();
        if (this.closing) break;
        // A budget shared with other shards' consumers may have lost the slot that woke this reader to one of them
        // before it ran again: wait for the next, since COUNT 0 means no limit to Redis (the whole backlog). A reader
        // that reads ahead takes one entry to hold instead. Beside peers (the ShardArbiter) it takes one at a time:
        // what arrives while the slots are busy is held from them.
        const count = this.budget.arbitrates
          ? Math.min(1, this.budget.free)
          : Math.max(this.budget.free, this.readsAhead ? 1 : 0);
        if (count <= 0) continue;
        const args = ['GROUP', this.options.group, this.options.consumer, 'COUNT', String(count), 'BLOCK'];
        args.push(String(this.blockMs), 'STREAMS', ...this.options.streams, ...this.options.streams.map(() => '>'));
        // On a cluster CLIENT ID would go to any primary, not the one this read blocks on: close() drops the
        // connection instead (unblockReader without an id).
        if (!isCluster(this.blocking!)) this.blockingClientId ??= Number(await this.blocking!.call('CLIENT', 'ID'));
        // A read must answer within its BLOCK time; past that (plus slack) the connection is presumed dead.
        this.blockingRead = true;
        const reply = await blockingCall(this.blocking!, this.blockMs + 10_000, 'xreadgroup', args).finally(
          () => (this.blockingRead = false),
        );
        this.counters.lastReadAt = Date.now();
        let read = 0;
        for (const { stream, entries } of parseReadReply(reply)) {
          read += entries.length;
          this.accept(stream, entries, () => 1);
        }
        this.dispatch();
        if (read > 0) this.budget.readerTook(this.member);
        backoff = 100;
        if (read > 0 && this.options.readBatchMs) await sleep(this.options.readBatchMs, this.stopController.signal);
      } catch (err) {
        if (this.closing) break;
        this.counters.readErrors++;
        const message = errorMessage(err);
        if (message.includes('NOGROUP')) this.groupsReady = false; // Redis lost the group (restart without AOF)
        if (message.includes('timed out')) this.blocking?.disconnect(true); // half-open socket: start afresh
        this.blockingClientId = undefined;
        this.log.warn({ err: message, group: this.options.group, backoffMs: backoff }, 'stream read failed; retrying');
        await sleep(backoff, this.stopController.signal);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }

  private async ensureGroups(): Promise<void> {
    for (const stream of this.options.streams) {
      try {
        await this.redis.xgroup('CREATE', stream, this.options.group, '0', 'MKSTREAM');
      } catch (err) {
        if (!errorMessage(err).includes('BUSYGROUP')) throw err;
      }
    }
    this.groupsReady = true;
  }

  /** A restarted consumer (same stable name) first finishes what it held: XREADGROUP with id 0. */
  private async readOwnPending(): Promise<void> {
    for (const stream of this.options.streams) {
      let cursor = '0';
      for (let page = 0; page < 1_000 && !this.closing; page++) {
        const reply = await this.redis.call(
          'xreadgroup',
          'GROUP',
          this.options.group,
          this.options.consumer,
          'COUNT',
          '100',
          'STREAMS',
          stream,
          cursor,
        );
        const entries = parseReadReply(reply)[0]?.entries ?? [];
        if (entries.length === 0) break;
        const fresh = entries.filter((e) => !this.held.has(heldKey(stream, e.id)));
        const deliveries = fresh.length > 0 ? await this.deliveryCounts(stream, fresh) : new Map<string, number>();
        this.accept(stream, fresh, (id) => deliveries.get(id) ?? 1);
        cursor = entries[entries.length - 1].id;
      }
    }
    if (this.backlog.length > 0) {
      this.log.info({ group: this.options.group, entries: this.backlog.length }, 'resuming own pending entries');
    }
    this.dispatch();
  }

  private async deliveryCounts(stream: string, entries: readonly RawEntry[]): Promise<Map<string, number>> {
    const pipeline = this.redis.pipeline();
    for (const entry of entries) pipeline.xpending(stream, this.options.group, entry.id, entry.id, 1);
    const results = (await pipeline.exec()) ?? [];
    const counts = new Map<string, number>();
    results.forEach(([err, value], i) => {
      const row = !err && Array.isArray(value) ? (value[0] as unknown[] | undefined) : undefined;
      counts.set(entries[i].id, Number(row?.[3] ?? 1));
    });
    return counts;
  }

  private accept(stream: string, entries: readonly RawEntry[], deliveries: (id: string) => number): void {
    for (const entry of entries) {
      const key = heldKey(stream, entry.id);
      if (this.held.has(key)) continue;
      this.parked.delete(key);
      if (entry.fields === null) {
        void this.deadLetterDeleted(stream, entry.id);
        continue;
      }
      const held: HeldEntry = {
        stream,
        id: entry.id,
        fields: entry.fields,
        deliveries: deliveries(entry.id),
        abort: new AbortController(),
        lost: false,
      };
      this.held.set(key, held);
      this.backlog.push(held);
    }
  }

  /**
   * Which held entry starts next: the first read, or with a shared budget the one with the lowest start tag (the
   * budget compared the shards by it; an untagged entry goes first).
   */
  private nextEntryIndex(): number | undefined {
    if (this.backlog.length === 0) return undefined;
    if (!this.budget.shared) return 0;
    let best = 0;
    for (let i = 1; i < this.backlog.length; i++) if (tagOf(this.backlog[i]) < tagOf(this.backlog[best])) best = i;
    return best;
  }

  private dispatch(): void {
    while (this.backlog.length > 0 && this.budget.free > 0 && !this.closing) {
      const [entry] = this.backlog.splice(this.nextEntryIndex()!, 1) as [HeldEntry];
      this.budget.take();
      const run = this.process(entry).finally(() => {
        this.running.delete(run);
        this.held.delete(heldKey(entry.stream, entry.id));
        // Offers the slot to every consumer sharing the budget in turn (this one included): dispatch + wake.
        this.budget.release();
      });
      this.running.add(run);
    }
  }

  /**
   * Reads one entry ahead of the free slots (StreamConsumerOptions.lookahead), once the budget is shared, while no
   * other consumer reads this shard's group: a held entry stays out of reach of a peer with a free slot (it counts
   * as dispatched, so nothing new is dispatched for the peer either).
   */
  private get readsAhead(): boolean {
    return this.options.lookahead === true && this.budget.shared && this.budget.alone;
  }

  /**
   * Whether another consumer of the group read or held entries of this shard lately (XINFO CONSUMERS: idle below
   * twice the longest quiet spell of a live consumer — a blocking read or a heartbeat). Checked at start and with
   * each sweep; only when reading ahead is wanted.
   */
  private async checkAlone(): Promise<void> {
    if (this.options.lookahead !== true) return;
    const quietMs = 2 * Math.max(this.blockMs, this.heartbeatMs) + 1_000;
    // Every stream of the shard: beside peers a busy process reads only the stream the arbiter chose, and its
    // heartbeats touch only the streams of the entries it holds.
    let peers = 0;
    for (const stream of this.options.streams) {
      const reply = (await this.redis.call('xinfo', 'CONSUMERS', stream, this.options.group).catch((err: unknown) => {
        if (errorMessage(err).includes('no such key')) return [];
        throw err;
      })) as unknown[][];
      peers += reply.filter((row) => {
        const fields = new Map<string, unknown>();
        for (let i = 0; i + 1 < row.length; i += 2) fields.set(String(row[i]), row[i + 1]);
        return fields.get('name') !== this.options.consumer && Number(fields.get('idle')) < quietMs;
      }).length;
    }
    const before = this.budget.alone;
    this.budget.notePeers(this.member, peers > 0);
    if (before !== this.budget.alone)
      this.log.debug(
        { alone: this.budget.alone },
        this.budget.alone ? 'reading ahead' : 'a peer reads too: not reading ahead; the arbiter compares the shards',
      );
  }

  /**
   * The reader reads when it holds nothing and a slot is free (beside peers: while the arbiter found nothing
   * unread in any shard), or it reads ahead.
   */
  private get mayRead(): boolean {
    return this.backlog.length === 0 && ((this.budget.free > 0 && this.budget.readersOpen) || this.readsAhead);
  }

  /**
   * Ends a blocking read in progress (ShardArbiter), by CLIENT UNBLOCK: the read returns empty and the loop waits
   * for the arbiter. Without the connection's id (a cluster) the read runs on: what it takes is held, and the
   * arbiter compares it like any held entry.
   */
  private interruptRead(): void {
    if (!this.blockingRead || this.blockingClientId === undefined || this.closing) return;
    void this.redis.call('CLIENT', 'UNBLOCK', String(this.blockingClientId)).catch(() => undefined);
  }

  /** This shard's next unread entry (ShardArbiter). */
  private async peekNext(): Promise<ShardHead | undefined> {
    const reply = (await STREAM_PEEK_NEXT.run(this.redis, this.options.streams, [this.options.group])) as
      [number, string] | null;
    return reply ? this.headOf(reply[0], reply[1]) : undefined;
  }

  /** A shard head as the scripts answer it (index in `streams` from 1, 0 for none; tag '' for an untagged entry). */
  private headOf(index: number, tag: string): ShardHead | undefined {
    const stream = this.options.streams[index - 1];
    return index < 1 || stream === undefined ? undefined : { tag: tagValue(tag), stream };
  }

  /** Reads this shard's next unread entry without blocking if its tag is still at most `tag` (ShardArbiter). */
  private async takeNext(tag: number): Promise<{ took: boolean; next: ShardHead | undefined }> {
    if (this.closing || !this.groupsReady) return { took: false, next: undefined };
    const [read, index, id, fields, nextIndex, nextTag] = (await STREAM_READ_NEXT_UP_TO.run(
      this.redis,
      this.options.streams,
      [this.options.group, this.options.consumer, Number.isFinite(tag) ? String(tag) : '-inf'],
    )) as [number, number, string, string[], number, string];
    this.counters.lastReadAt = Date.now();
    const next = this.headOf(nextIndex, nextTag);
    if (read !== 1) return { took: false, next };
    const stream = this.options.streams[index - 1];
    if (stream === undefined) return { took: false, next };
    this.accept(stream, [{ id, fields }], () => 1);
    this.dispatch();
    return { took: true, next };
  }

  private waitForCapacity(): Promise<void> {
    if (this.closing || this.mayRead) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.wake = () => {
        if (this.closing || this.mayRead) {
          this.wake = () => undefined;
          resolve();
        }
      };
    });
  }

  private async process(entry: HeldEntry): Promise<void> {
    for (;;) {
      const retryAfterMs = await this.processOnce(entry);
      if (retryAfterMs === undefined || !(await this.redeliverInPlace(entry, retryAfterMs))) return;
    }
  }

  /** Runs the handler once; returns a delay when the entry is to be retried in place. */
  private async processOnce(entry: HeldEntry): Promise<number | undefined> {
    const decoded = decodeEntry(entry.fields);
    if (!decoded.ok) {
      await this.deadLetter(entry, `malformed entry: ${decoded.reason}`);
      return undefined;
    }
    const { envelope } = decoded;
    if (entry.deliveries > this.options.maxDeliveries) {
      await this.deadLetter(entry, `exceeded MAX_DELIVERIES (${this.options.maxDeliveries})`, envelope);
      return undefined;
    }
    const ctx: HandlerContext = {
      stream: entry.stream,
      id: entry.id,
      group: this.options.group,
      consumer: this.options.consumer,
      deliveries: entry.deliveries,
      signal: entry.abort.signal,
      fields: entry.fields,
    };
    try {
      await this.options.handle(envelope, ctx);
    } catch (err) {
      if (
        err instanceof HandOffError &&
        this.options.acceptsHandOffs &&
        !entry.lost &&
        err.toConsumer !== this.options.consumer
      ) {
        entry.settled = true;
        await this.handOff(entry, envelope, err);
        return undefined;
      }
      const retryAfterMs = inPlaceRetryDelay(err);
      if (retryAfterMs !== undefined && this.mayRetryInPlace(entry)) {
        // Not settled: the heartbeat keeps the entry ours while it waits for its next delivery.
        this.counters.failed++;
        this.log.warn(
          { err: errorMessage(err), jobId: envelope.jobId, correlationId: envelope.correlationId, type: envelope.type },
          `handler failed for ${envelope.type}; retrying in place after ${retryAfterMs} ms`,
        );
        await this.recordAttempt(entry, errorMessage(err));
        return retryAfterMs;
      }
      entry.settled = true;
      await this.onHandlerError(entry, envelope, err);
      return undefined;
    }
    entry.settled = true;
    if (entry.lost) return undefined;
    await this.ack(entry);
    this.counters.processed++;
    return undefined;
  }

  /**
   * Passes the entry to the peer the handler named. If that fails (Redis unreachable) the entry stays pending and
   * unheld: the sweepers take it after CLAIM_IDLE_MS, as for a crashed consumer.
   */
  private async handOff(entry: HeldEntry, envelope: AnyJobEnvelope, err: HandOffError): Promise<void> {
    const { group, consumer } = this.options;
    const fields = {
      jobId: envelope.jobId,
      correlationId: envelope.correlationId,
      entryId: entry.id,
      to: err.toConsumer,
    };
    try {
      const channel = this.keys.handOffChannel(group, err.toConsumer);
      const outcome = await this.heartbeat.handOff(entry.stream, group, consumer, err.toConsumer, entry.id, channel);
      if (outcome === 'handed') {
        this.counters.handedOff++;
        await this.recordAttempt(entry, err.message);
        this.log.info({ ...fields, reason: err.reason }, 'entry handed off to a peer that can do its work');
      } else if (outcome === 'deleted') {
        await this.deadLetterDeleted(entry.stream, entry.id);
      }
    } catch (failure) {
      this.log.warn({ ...fields, err: errorMessage(failure) }, 'hand-off failed; the entry stays pending');
    }
  }

  private mayRetryInPlace(entry: HeldEntry): boolean {
    return !this.closing && !entry.lost && !entry.abort.signal.aborted && entry.deliveries < this.options.maxDeliveries;
  }

  /**
   * Waits, then takes the entry again as its next delivery. False when it is no longer ours to run: shutdown
   * (it stays held and is handed back), lost to another consumer, or deleted from the stream (dead-lettered).
   */
  private async redeliverInPlace(entry: HeldEntry, delayMs: number): Promise<boolean> {
    await sleep(delayMs, AbortSignal.any([this.stopController.signal, entry.abort.signal]));
    if (entry.lost) return false;
    if (this.closing) {
      // Shutting down: a peer takes it now rather than after CLAIM_IDLE_MS.
      entry.settled = true;
      await this.handBack([entry]);
      return false;
    }
    try {
      const next = await this.heartbeat.redeliverOwn(entry.stream, this.options.group, this.options.consumer, entry.id);
      if (next === 'lost') {
        this.markLost(entry.stream, entry.id);
        return false;
      }
      if (next === 'deleted') {
        entry.settled = true;
        await this.deadLetterDeleted(entry.stream, entry.id);
        return false;
      }
      entry.deliveries = next.deliveries;
      entry.fields = next.fields;
      return true;
    } catch (err) {
      // Redis unreachable: leave the entry pending; the sweeper (ours after a restart, or a peer's) retries it.
      entry.settled = true;
      this.log.warn({ err: errorMessage(err), entryId: entry.id }, 'in-place retry failed; entry stays pending');
      return false;
    }
  }

  private async onHandlerError(entry: HeldEntry, envelope: AnyJobEnvelope, err: unknown): Promise<void> {
    const message = errorMessage(err);
    this.counters.failed++;
    if (entry.lost) return;
    if (this.closing && entry.abort.signal.aborted) return; // shutdown: left pending for another consumer
    if (isDeadLetterError(err) || entry.deliveries >= this.options.maxDeliveries) {
      await this.recordAttempt(entry, message);
      await this.deadLetter(entry, message, envelope);
      return;
    }
    this.log.warn(
      {
        err: message,
        jobId: envelope.jobId,
        correlationId: envelope.correlationId,
        type: envelope.type,
        stream: entry.stream,
        entryId: entry.id,
        deliveries: entry.deliveries,
      },
      `handler failed for ${envelope.type}; will retry after ${this.options.claimIdleMs} ms`,
    );
    if (this.options.acceptsHandOffs) this.park(heldKey(entry.stream, entry.id));
    await this.recordAttempt(entry, message);
  }

  /** Remembers a failed entry left pending (bounded: the oldest are forgotten; a sweeper takes them anyway). */
  private park(key: string): void {
    this.parked.add(key);
    if (this.parked.size > MAX_PARKED) this.parked.delete(this.parked.values().next().value!);
  }

  private async recordAttempt(entry: HeldEntry, error: string): Promise<void> {
    const key = this.keys.attempts(this.options.group, entry.stream, entry.id);
    const attempt = JSON.stringify({
      at: new Date().toISOString(),
      consumer: this.options.consumer,
      delivery: entry.deliveries,
      error: error.slice(0, 1000),
    });
    await this.redis
      .multi()
      .rpush(key, attempt)
      .ltrim(key, -20, -1)
      .pexpire(key, 7 * 24 * 3600 * 1000)
      .exec()
      .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'could not record attempt'));
  }

  private async ack(entry: HeldEntry): Promise<void> {
    try {
      if (entry.deliveries > 1) {
        await this.redis
          .multi()
          .xack(entry.stream, this.options.group, entry.id)
          .del(this.keys.attempts(this.options.group, entry.stream, entry.id))
          .exec();
      } else {
        await this.acks.ack(entry.stream, entry.id);
      }
    } catch (err) {
      // The entry stays pending; the sweeper hands it out again (at-least-once), so just say so.
      this.log.warn({ err: errorMessage(err), entryId: entry.id }, 'ack failed; entry will be redelivered');
    }
  }

  private async deadLetter(entry: HeldEntry, reason: string, envelope?: AnyJobEnvelope): Promise<void> {
    try {
      await this.dlq.write({
        stream: entry.stream,
        group: this.options.group,
        consumer: this.options.consumer,
        id: entry.id,
        fields: entry.fields,
        deliveries: entry.deliveries,
        reason,
        envelope,
        endsJob: this.options.deadLetterEndsJob,
      });
      this.counters.deadLettered++;
      this.log.warn(
        {
          jobId: envelope?.jobId,
          correlationId: envelope?.correlationId,
          type: envelope?.type,
          stream: entry.stream,
          entryId: entry.id,
          reason,
        },
        'entry dead-lettered',
      );
    } catch (err) {
      this.log.error({ err: errorMessage(err), entryId: entry.id }, 'dead-lettering failed; entry stays pending');
    }
  }

  private async deadLetterDeleted(stream: string, id: string): Promise<void> {
    const entry: HeldEntry = { stream, id, fields: [], deliveries: 0, abort: new AbortController(), lost: false };
    await this.deadLetter(entry, 'entry was deleted from the stream while pending (trimmed or XDEL)');
  }

  private async beat(): Promise<void> {
    if (this.held.size === 0) return;
    const byStream = new Map<string, string[]>();
    for (const entry of this.held.values()) {
      if (entry.settled) continue;
      const ids = byStream.get(entry.stream) ?? [];
      ids.push(entry.id);
      byStream.set(entry.stream, ids);
    }
    for (const [stream, ids] of byStream) {
      try {
        const lost = await this.heartbeat.beat(stream, this.options.group, this.options.consumer, ids);
        for (const id of lost) this.markLost(stream, id);
      } catch (err) {
        this.log.debug({ err: errorMessage(err) }, 'heartbeat failed');
      }
    }
  }

  private markLost(stream: string, id: string): void {
    const entry = this.held.get(heldKey(stream, id));
    if (!entry || entry.settled) return;
    entry.lost = true;
    entry.abort.abort(new Error('entry was claimed by another consumer'));
    const index = this.backlog.indexOf(entry);
    if (index >= 0) {
      this.backlog.splice(index, 1);
      this.held.delete(heldKey(stream, id));
      this.wake(); // its reader may read again (a read-ahead reader holds nothing now)
    }
    this.log.warn({ entryId: id, group: this.options.group }, 'lost an entry to another consumer');
  }

  private async runSweeper(): Promise<void> {
    while (!this.closing) {
      await sleep(this.sweepIntervalMs, this.stopController.signal);
      if (this.closing) break;
      try {
        if (this.groupsReady) await this.sweep();
        if (this.groupsReady) await this.checkAlone();
      } catch (err) {
        this.log.debug({ err: errorMessage(err) }, 'sweep failed');
      }
    }
  }

  /** XAUTOCLAIM entries idle past CLAIM_IDLE_MS (dead consumers' and our own failed ones), within capacity. */
  private async sweep(): Promise<void> {
    for (const stream of this.options.streams) {
      let cursor = '0-0';
      for (let round = 0; round < 10 && !this.closing; round++) {
        const free = this.budget.free - this.backlog.length;
        if (free <= 0) return;
        const reply = await this.redis.call(
          'xautoclaim',
          stream,
          this.options.group,
          this.options.consumer,
          String(this.options.claimIdleMs),
          cursor,
          'COUNT',
          String(free),
        );
        const claimed = parseAutoclaimReply(reply);
        for (const id of claimed.deleted) await this.deadLetterDeleted(stream, id);
        const live = claimed.entries.filter((e) => e.fields !== null && !this.held.has(heldKey(stream, e.id)));
        if (live.length > 0) {
          const deliveries = await this.deliveryCounts(stream, live);
          this.counters.claimed += live.length;
          this.log.info({ group: this.options.group, stream, entries: live.length }, 'claimed idle entries');
          this.accept(stream, live, (id) => deliveries.get(id) ?? 2);
          this.dispatch();
        }
        cursor = claimed.cursor;
        if (cursor === '0-0') break;
      }
    }
  }

  /** Makes entries immediately claimable by other consumers (idle = CLAIM_IDLE_MS), without a delivery bump. */
  private async handBack(entries: readonly HeldEntry[]): Promise<void> {
    const byStream = new Map<string, string[]>();
    for (const entry of entries) byStream.set(entry.stream, [...(byStream.get(entry.stream) ?? []), entry.id]);
    for (const [stream, ids] of byStream) {
      await this.redis
        .call(
          'xclaim',
          stream,
          this.options.group,
          this.options.consumer,
          '0',
          ...ids,
          'IDLE',
          String(this.options.claimIdleMs),
          'JUSTID',
        )
        .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'hand-back failed'));
    }
  }

  private async deleteConsumerIfIdle(): Promise<void> {
    try {
      for (const stream of this.options.streams) {
        const mine = await this.redis.xpending(stream, this.options.group, '-', '+', 1, this.options.consumer);
        if (mine.length > 0) return;
      }
      for (const stream of this.options.streams) {
        await this.redis.xgroup('DELCONSUMER', stream, this.options.group, this.options.consumer);
      }
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, 'could not delete consumer');
    }
  }
}

function heldKey(stream: string, id: string): string {
  return `${stream}\u0000${id}`;
}

async function waitAll(promises: ReadonlySet<Promise<void>>, timeoutMs: number): Promise<void> {
  if (promises.size === 0) return;
  const timeout = new AbortController();
  await Promise.race([Promise.allSettled([...promises]), sleep(timeoutMs, timeout.signal)]);
  timeout.abort();
}

/** A held entry's start tag, read from its fields once (only a budget shared by shards compares them). */
function tagOf(entry: HeldEntry): number {
  entry.tag ??= startTagOf(entry.fields);
  return entry.tag;
}

/** The fair-queue start tag a request entry carries (the `tag` field the ledger's scripts append); -Infinity without. */
function startTagOf(fields: readonly string[]): number {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'tag') return tagValue(fields[i + 1]);
  return -Infinity;
}

/** A start tag as written: anything but a finite number goes first (-Infinity), as the arbiter's scripts read it. */
function tagValue(text: string): number {
  const tag = text === '' ? NaN : Number(text);
  return Number.isFinite(tag) ? tag : -Infinity;
}
