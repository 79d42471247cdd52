/** The Redis backend reached BLOB_REDIS_MAX_BYTES: new content is refused until holds expire or are released. */
export class BlobStoreFullError extends Error {
  constructor(
    readonly storedBytes: number,
    readonly maxBytes: number,
    /** With STREAM_SHARDS > 1, the image's shard's even share of maxBytes, which storedBytes then counts against. */
    readonly shardCapBytes = maxBytes,
  ) {
    super(
      (shardCapBytes < maxBytes
        ? `blob store full: ${storedBytes} of ${shardCapBytes} bytes in use in this image's shard ` +
          `(BLOB_REDIS_MAX_BYTES=${maxBytes} split evenly over STREAM_SHARDS); `
        : `blob store full: ${storedBytes} of ${maxBytes} bytes (BLOB_REDIS_MAX_BYTES) in use; `) +
        'results are kept until delivered or expired (BLOB_TTL_SECONDS), or move images to BLOB_S3_BUCKET',
    );
    this.name = 'BlobStoreFullError';
  }
}

/** The backend (object store, disk) failed or timed out: the caller retries later, nothing is marked done. */
export class BlobStoreUnavailableError extends Error {
  constructor(operation: string, cause: unknown) {
    super(`blob store unavailable during ${operation}: ${describe(cause)}`, { cause });
    this.name = 'BlobStoreUnavailableError';
  }
}

function describe(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  // The SDK's message can be empty for HTTP errors without a body; the name (NoSuchBucket, TimeoutError) says it.
  return cause.message ? `${cause.name}: ${cause.message}` : cause.name;
}
