import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { connectionNameOf, type RedisClient } from '../redis/redis-client';
import type { Logger } from 'pino';
import { BLOB_STORE } from '../blobs/blob-store';
import { createBlobStore } from '../blobs/blob-store.factory';
import { preloadScripts } from '../redis/lua-script';
import { ReplicaAck } from '../redis/replica-ack';
import '../redis/scripts';
import { ROOT_LOGGER } from '../common/root-logger';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { RedisMemoryMonitor } from './redis-memory.monitor';
import { ConsumerDirectory } from './consumer-directory';
import { createRedis, REDIS } from './redis.provider';
import { StreamKeys } from './stream-keys';
import { StreamPublisher } from './stream.publisher';
import { StreamTail } from './stream-tail';
import { StreamTailFactory } from './stream-tail.factory';
import { StreamReader } from './stream.reader';

const BLOB_STORE_HANDLE = Symbol('BLOB_STORE_HANDLE');

/**
 * Connection errors (Redis down, a failover under way: the connection retries by itself) as log lines of the
 * process's logger rather than ioredis' unstructured "Unhandled error event" on stderr.
 */
function logErrors(redis: RedisClient, log: Logger | undefined): RedisClient {
  redis.on('error', (err: Error) =>
    log?.warn(
      { err: err.message, connection: connectionNameOf(redis) },
      'redis connection error (it reconnects by itself)',
    ),
  );
  return redis;
}
type BlobStoreHandle = Awaited<ReturnType<typeof createBlobStore>>;

/**
 * Redis, key names, the publisher, the shared stream tail (and a factory for tails of one's own), the stream reader,
 * the blob store and the directory of this process's consumers: what every role needs. REDIS itself is for stores
 * and repositories (see .dependency-cruiser.cjs, rule raw-redis-client-only-in-stores).
 */
@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [APP_CONFIG, { token: ROOT_LOGGER, optional: true }],
      useFactory: (c: AppConfig, log: Logger | undefined) => {
        const redis = logErrors(createRedis(c, `comfy-relay:${c.instanceName}`), log);
        // Every script once, up front (queued until connected; a Redis that is down now holds up nothing, and
        // EVALSHA falls back to EVAL after a Redis restart anyway).
        preloadScripts(redis).catch(() => undefined);
        return redis;
      },
    },
    {
      provide: ReplicaAck,
      inject: [REDIS, APP_CONFIG, { token: ROOT_LOGGER, optional: true }],
      useFactory: (r: RedisClient, c: AppConfig, log: Logger | undefined) => {
        const { replicas, timeoutMs } = c.replicaAck;
        if (replicas === 0) return ReplicaAck.off(r);
        const acked = logErrors(createRedis(c, `comfy-relay:${c.instanceName}:acked`), log);
        return ReplicaAck.on(r, acked, replicas, timeoutMs);
      },
    },
    {
      provide: StreamKeys,
      inject: [APP_CONFIG],
      useFactory: (c: AppConfig) => StreamKeys.sharded(c.streamPrefix, c.streamShards),
    },
    {
      provide: StreamPublisher,
      inject: [REDIS, StreamKeys, APP_CONFIG],
      useFactory: (r: RedisClient, k: StreamKeys, c: AppConfig) => new StreamPublisher(r, k, c.progressMaxLen),
    },
    {
      provide: StreamTail,
      inject: [REDIS, StreamKeys],
      // Live for its listeners (SSE clients, the bot's status messages); while none listens it reads in batches.
      useFactory: (r: RedisClient, k: StreamKeys) =>
        new StreamTail(
          r,
          k.shards.flatMap((s) => [s.events, s.progress]),
          undefined,
          { unwatchedCoalesceMs: 200 },
        ),
    },
    ConsumerDirectory,
    { provide: StreamTailFactory, inject: [REDIS], useFactory: (r: RedisClient) => new StreamTailFactory(r) },
    {
      provide: StreamReader,
      inject: [REDIS, StreamKeys],
      useFactory: (r: RedisClient, k: StreamKeys) => new StreamReader(r, k),
    },
    {
      provide: RedisMemoryMonitor,
      inject: [REDIS, APP_CONFIG],
      useFactory: (r: RedisClient, c: AppConfig) => new RedisMemoryMonitor(r, c.redisMemoryHighWatermark),
    },
    {
      provide: BLOB_STORE_HANDLE,
      inject: [REDIS, StreamKeys, APP_CONFIG, { token: ROOT_LOGGER, optional: true }],
      useFactory: (r: RedisClient, k: StreamKeys, c: AppConfig, log: Logger | undefined) =>
        createBlobStore(c.blobs, r, k, log ?? { warn: () => undefined }),
    },
    {
      provide: BLOB_STORE,
      inject: [BLOB_STORE_HANDLE],
      useFactory: (handle: BlobStoreHandle) => handle.store,
    },
  ],
  exports: [
    REDIS,
    ReplicaAck,
    StreamKeys,
    StreamPublisher,
    StreamTail,
    StreamTailFactory,
    StreamReader,
    BLOB_STORE,
    RedisMemoryMonitor,
    ConsumerDirectory,
  ],
})
export class StreamsModule implements OnApplicationShutdown {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(BLOB_STORE_HANDLE) private readonly blobs: BlobStoreHandle,
    private readonly tail: StreamTail,
    private readonly acks: ReplicaAck,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.tail.close();
    this.blobs.close();
    await this.acks.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
