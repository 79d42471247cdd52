import { createHash, randomBytes } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';

/** How STREAM_SHARDS splits the keys: every shard's prefix, and which one this StreamKeys names. */
interface ShardLayout {
  /** STREAM_PREFIX as configured. */
  readonly base: string;
  readonly count: number;
}

/**
 * Every Redis key the service writes, built in one place. ioredis' keyPrefix is deliberately not used:
 * it is not applied to XGROUP/XINFO/XAUTOCLAIM arguments, so a prefix there would silently split keys.
 *
 * Shards (STREAM_SHARDS = N > 1, docs/job-state.md#shards): shard i's keys live under `<STREAM_PREFIX>{<tag>}:`,
 * one hash tag per shard (shardTag: `cr:{0.1}:`, `cr:{1.3}:`, `cr:{2}:` … for six), so each shard sits in one Redis
 * Cluster slot and the N shards spread evenly over the primaries. A shard holds its streams, groups, DLQ, fair queue,
 * run statistics, and the keys of its accounts and jobs; the shard of an account is a hash of it, and a job id
 * carries its shard (its first byte mod N), so any role finds a job's keys from its id alone. An image's keys sit in
 * the shard its content hash names (each shard keeps its own image index and byte total); the instance leases in the
 * last shard (one script compares every candidate instance, so they share one slot). The StreamKeys every module is
 * given is shard 0's, the home of the rest that belongs to no account (consumer names, drain flag, adverts, bot
 * state); the methods naming a job's, an image's or a lease's key route by themselves, and forJob / forAccount /
 * forBlob / shards give the other shards' keys. Spreading the images and leases keeps the primary of shard 0 from
 * carrying a third more than the others (bench measure 13). N = 1 (the default): one shard whose prefix is
 * STREAM_PREFIX itself — today's key names.
 */
export class StreamKeys {
  private readonly layout: ShardLayout;
  /** Every shard's keys, built once (shard 0 is the home keys). */
  private siblings?: readonly StreamKeys[];

  constructor(
    readonly prefix: string,
    layout?: ShardLayout,
    /** Which shard these keys name (0 when not sharded). */
    readonly shard = 0,
  ) {
    this.layout = layout ?? { base: prefix, count: 1 };
  }

  /** The home keys of a deployment with `count` shards under STREAM_PREFIX `base`. */
  static sharded(base: string, count: number): StreamKeys {
    return count <= 1 ? new StreamKeys(base) : new StreamKeys(shardPrefix(base, 0, count), { base, count }, 0);
  }

  get shardCount(): number {
    return this.layout.count;
  }

  /** STREAM_PREFIX: every shard's prefix starts with it (what a scan of the whole deployment matches). */
  get basePrefix(): string {
    return this.layout.base;
  }

  /** Every shard's keys, shard 0 first. */
  get shards(): readonly StreamKeys[] {
    this.siblings ??=
      this.layout.count <= 1
        ? [this]
        : Array.from({ length: this.layout.count }, (_, i) =>
            i === this.shard
              ? this
              : new StreamKeys(shardPrefix(this.layout.base, i, this.layout.count), this.layout, i),
          );
    return this.siblings;
  }

  forShard(shard: number): StreamKeys {
    const keys = this.shards[shard];
    if (!keys) throw new Error(`no shard ${shard} (STREAM_SHARDS=${this.layout.count})`);
    return keys;
  }

  /** The shard a job's keys live in: its id's first byte mod N (see mintJobId). */
  shardOfJob(jobId: string): number {
    return this.shardOfHex(jobId, 2);
  }

  forJob(jobId: string): StreamKeys {
    return this.layout.count <= 1 ? this : this.forShard(this.shardOfJob(jobId));
  }

  /**
   * The shard of an account (API key fingerprint, else user: the fair queue's account): its jobs, limits,
   * idempotency keys and fair-queue order stay in one shard, so every check the submit makes is one script call.
   */
  forAccount(account: string): StreamKeys {
    if (this.layout.count <= 1) return this;
    const digest = createHash('sha1').update(account).digest();
    return this.forShard(digest.readUInt32BE(0) % this.layout.count);
  }

  /**
   * A new job id (UUID v4) in these keys' shard: its first byte is ≡ shard (mod N), the rest random, so the id
   * alone names the shard to every role (API, gpu, bot, CLI) without a lookup.
   */
  mintJobId(): string {
    const bytes = randomBytes(16);
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    const n = this.layout.count;
    if (n > 1) {
      const rounds = Math.floor(256 / n); // keeps the byte below 256 and the shards equally likely
      bytes[0] = this.shard + n * (bytes[0] % rounds);
    }
    const hex = bytes.toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /**
   * The shard of an image's keys: its content hash's first 32 bits mod N. Content addressing spreads images evenly,
   * and every role derives the shard from the hash alone.
   */
  shardOfBlob(hash: string): number {
    return this.shardOfHex(hash, 8);
  }

  /** The first `digits` hex digits of `text` mod N; shard 0 for text that does not start with hex. */
  private shardOfHex(text: string, digits: number): number {
    if (this.layout.count <= 1) return 0;
    const head = parseInt(text.slice(0, digits), 16);
    return Number.isNaN(head) ? 0 : head % this.layout.count;
  }

  forBlob(hash: string): StreamKeys {
    return this.layout.count <= 1 ? this : this.forShard(this.shardOfBlob(hash));
  }

  /**
   * The shard of the ComfyUI instance leases and the model tails: the last one, so that with an even split of the
   * slots they sit on another primary than shard 0's home keys. One acquire script compares every candidate
   * instance, so the leases cannot spread by instance.
   */
  get pool(): StreamKeys {
    return this.layout.count <= 1 ? this : this.forShard(this.layout.count - 1);
  }

  /** A job's keys: in its own shard. */
  private of(jobId: string): string {
    return this.forJob(jobId).prefix;
  }

  /** An image's own keys: in its hash's shard. */
  private ofBlob(hash: string): string {
    return this.forBlob(hash).prefix;
  }

  get requests(): string {
    return `${this.prefix}jobs:requests`;
  }
  get requestsPriority(): string {
    return `${this.prefix}jobs:requests:priority`;
  }
  get events(): string {
    return `${this.prefix}jobs:events`;
  }
  get progress(): string {
    return `${this.prefix}jobs:progress`;
  }
  get dlq(): string {
    return `${this.prefix}jobs:dlq`;
  }
  /** Streams whose entries end a job when they are dead-lettered (the work itself could not be done). */
  get workStreams(): readonly string[] {
    return [this.requestsPriority, this.requests];
  }

  view(jobId: string): string {
    return `${this.of(jobId)}jobs:view:${jobId}`;
  }
  /** What the API knew when it accepted the job: read-your-writes until the projection catches up. */
  record(jobId: string): string {
    return `${this.of(jobId)}jobs:record:${jobId}`;
  }
  /** Stream entry ids of a job's events, in projection order (for `cli job` and SSE replay). */
  timeline(jobId: string): string {
    return `${this.of(jobId)}jobs:timeline:${jobId}`;
  }
  lastProgress(jobId: string): string {
    return `${this.of(jobId)}jobs:progress:last:${jobId}`;
  }
  /** Set atomically with the one `job.cancelled` of a job (the API and a worker may both try to send it). */
  cancelledMarker(jobId: string): string {
    return `${this.of(jobId)}jobs:cancelled:${jobId}`;
  }
  /** Which request entry of a job runs it (a worker's lease; see JobLedger.claimForRun). */
  runLease(jobId: string): string {
    return `${this.of(jobId)}gpu:run:${jobId}`;
  }
  /** Where a job's prompt was sent (instance, prompt id, attempt), written before it is sent. */
  placement(jobId: string): string {
    return `${this.of(jobId)}gpu:placement:${jobId}`;
  }
  cancelFlag(jobId: string): string {
    return `${this.of(jobId)}jobs:cancel:${jobId}`;
  }
  idempotency(scope: string, key: string): string {
    return `${this.prefix}idem:${scope}:${key}`;
  }
  userActive(userId: string): string {
    return `${this.prefix}user:${userId}:active`;
  }
  /**
   * Sorted set of queued jobs scored by their fair start tag (then ticket): ZRANK is the exact queue position, the
   * order in which they will start (docs/fair-queue.md).
   */
  get queue(): string {
    return `${this.prefix}queue:tickets`;
  }
  /** The priority tier's queued jobs (scored as in the queue): the per-tier metrics read it. */
  get queuePriority(): string {
    return `${this.prefix}queue:priority`;
  }
  /** Queued jobs not yet dispatched into a request stream, scored as in the queue (the fair queue's scripts). */
  get queuePending(): string {
    return `${this.prefix}queue:pending`;
  }
  /** A pending job's request (envelope, stream, account, tags) until it is dispatched. */
  queuedRequest(jobId: string): string {
    return `${this.of(jobId)}queue:request:${jobId}`;
  }
  /** The fair queue's virtual time: the start tag of the last job dispatched. */
  get queueVirtualTime(): string {
    return `${this.prefix}queue:vtime`;
  }
  /** Sorted set: account → the finish tag of its last queued job (accounts at or behind the virtual time dropped). */
  get queueFinishTags(): string {
    return `${this.prefix}queue:finish`;
  }
  get ticketCounter(): string {
    return `${this.prefix}queue:ticket-counter`;
  }
  /** Jobs taken off the queue and not yet ended, scored by when they were taken (ms): what runs ahead. */
  get inflight(): string {
    return `${this.prefix}queue:inflight`;
  }
  get runStats(): string {
    return `${this.prefix}stats:run`;
  }
  get gpuWorkers(): string {
    return `${this.prefix}gpu:workers`;
  }
  attempts(group: string, stream: string, id: string): string {
    // In the stream's own shard, whichever shard's keys are asked (the CLI reads every shard through shard 0's).
    const keys = this.shards.find((k) => stream.startsWith(k.prefix)) ?? this;
    return `${keys.prefix}attempts:${group}:${stream.slice(keys.prefix.length)}:${id}`;
  }
  /** A ComfyUI instance's slots in use: lease id → expiry (ms). In the pool's shard. */
  instanceLeases(instanceId: string): string {
    return `${this.pool.prefix}gpu:leases:${instanceId}`;
  }
  /** instance → the model set it was last given (GPU_MODEL_AFFINITY). In the pool's shard, beside the leases. */
  get modelTails(): string {
    return `${this.pool.prefix}gpu:model-tails`;
  }
  /** Bytes of a blob (Redis backend only). */
  blob(hash: string): string {
    return `${this.ofBlob(hash)}blob:${hash}`;
  }
  /** Who holds a blob: holder → expiry (ms), for every backend. */
  blobHolds(hash: string): string {
    return `${this.ofBlob(hash)}blob:holds:${hash}`;
  }
  /**
   * This shard's stored blobs scored by the latest expiry of their holds: what the sweeper deletes, and when. The
   * index, sizes and total of an image are its hash's shard's (`forBlob(hash).blobDue`).
   */
  get blobDue(): string {
    return `${this.prefix}blob:due`;
  }
  /** hash → size of every stored blob; with blobTotal, what BLOB_REDIS_MAX_BYTES is checked against. */
  get blobSizes(): string {
    return `${this.prefix}blob:sizes`;
  }
  get blobTotal(): string {
    return `${this.prefix}blob:total-bytes`;
  }
  /** Set while a blob's bytes are being deleted: a put of the same content waits until they are gone. */
  blobDeleting(hash: string): string {
    return `${this.ofBlob(hash)}blob:deleting:${hash}`;
  }
  /** Pub/sub channel on which a consumer is told that an entry was handed to it (StreamConsumer, hand-offs). */
  handOffChannel(group: string, consumer: string): string {
    return `${this.prefix}handoff:${group}:${consumer}`;
  }
  get drainFlag(): string {
    return `${this.prefix}control:drain`;
  }
}

/**
 * Shard i's prefix: STREAM_PREFIX followed by the shard's own hash tag, `cr:{<tag>}:` (shardTag).
 */
export function shardPrefix(base: string, shard: number, count: number): string {
  return `${base}{${shardTag(shard, count)}}:`;
}

const SLOTS = 16_384;

/**
 * Shard i's hash tag: the first of `i`, `i.1`, `i.2`, … whose hash slot lies in the i-th N-th of the slot space.
 * The shards then sit evenly over the slots, so a cluster whose primaries hold equal slot ranges (what
 * `redis-cli --cluster create` makes) gets N / primaries shards on each; plain `{0}`…`{5}` put 1, 3 and 2 of six
 * shards on three primaries. Deterministic: every process, the CLI and a replay derive the same names.
 */
export function shardTag(shard: number, count: number): string {
  const lo = Math.floor((shard * SLOTS) / count);
  const hi = Math.floor(((shard + 1) * SLOTS) / count);
  for (let k = 0; k < 100_000; k++) {
    const tag = k === 0 ? String(shard) : `${shard}.${k}`;
    const slot = calculateSlot(tag);
    if (slot >= lo && slot < hi) return tag;
  }
  return String(shard);
}
