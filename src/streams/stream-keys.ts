/**
 * Every Redis key the service writes, built in one place. ioredis' keyPrefix is deliberately not used:
 * it is not applied to XGROUP/XINFO/XAUTOCLAIM arguments, so a prefix there would silently split keys.
 */
export class StreamKeys {
  constructor(readonly prefix: string) {}

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
    return `${this.prefix}jobs:view:${jobId}`;
  }
  /** What the API knew when it accepted the job: read-your-writes until the projection catches up. */
  record(jobId: string): string {
    return `${this.prefix}jobs:record:${jobId}`;
  }
  /** Stream entry ids of a job's events, in projection order (for `cli job` and SSE replay). */
  timeline(jobId: string): string {
    return `${this.prefix}jobs:timeline:${jobId}`;
  }
  lastProgress(jobId: string): string {
    return `${this.prefix}jobs:progress:last:${jobId}`;
  }
  /** Set atomically with the one `job.cancelled` of a job (the API and a worker may both try to send it). */
  cancelledMarker(jobId: string): string {
    return `${this.prefix}jobs:cancelled:${jobId}`;
  }
  /** Which request entry of a job runs it (a worker's lease; see JobLedger.claimForRun). */
  runLease(jobId: string): string {
    return `${this.prefix}gpu:run:${jobId}`;
  }
  /** Where a job's prompt was sent (instance, prompt id, attempt), written before it is sent. */
  placement(jobId: string): string {
    return `${this.prefix}gpu:placement:${jobId}`;
  }
  cancelFlag(jobId: string): string {
    return `${this.prefix}jobs:cancel:${jobId}`;
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
    return `${this.prefix}queue:request:${jobId}`;
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
    return `${this.prefix}attempts:${group}:${stream.slice(this.prefix.length)}:${id}`;
  }
  /** Bytes of a blob (Redis backend only). */
  blob(hash: string): string {
    return `${this.prefix}blob:${hash}`;
  }
  /** Who holds a blob: holder → expiry (ms), for every backend. */
  blobHolds(hash: string): string {
    return `${this.prefix}blob:holds:${hash}`;
  }
  /** Every stored blob scored by the latest expiry of its holds: what the sweeper deletes, and when. */
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
    return `${this.prefix}blob:deleting:${hash}`;
  }
  /** Pub/sub channel on which a consumer is told that an entry was handed to it (StreamConsumer, hand-offs). */
  handOffChannel(group: string, consumer: string): string {
    return `${this.prefix}handoff:${group}:${consumer}`;
  }
  get drainFlag(): string {
    return `${this.prefix}control:drain`;
  }
}
