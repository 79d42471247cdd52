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
  cancelFlag(jobId: string): string {
    return `${this.prefix}jobs:cancel:${jobId}`;
  }
  idempotency(scope: string, key: string): string {
    return `${this.prefix}idem:${scope}:${key}`;
  }
  userActive(userId: string): string {
    return `${this.prefix}user:${userId}:active`;
  }
  /** Sorted set of queued jobs scored by ticket: ZRANK is the exact queue position. */
  get queue(): string {
    return `${this.prefix}queue:tickets`;
  }
  get ticketCounter(): string {
    return `${this.prefix}queue:ticket-counter`;
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
  blob(hash: string): string {
    return `${this.prefix}blob:${hash}`;
  }
  get drainFlag(): string {
    return `${this.prefix}control:drain`;
  }
}
