import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type Redis from 'ioredis';
import { BLOB_STORE } from '../blobs/blob-store';
import { FsBlobStore } from '../blobs/fs-blob.store';
import { RedisBlobStore } from '../blobs/redis-blob.store';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { createRedis, REDIS } from './redis.provider';
import { StreamKeys } from './stream-keys';
import { StreamPublisher } from './stream.publisher';
import { StreamTail } from './stream-tail';

/** Redis, key names, the publisher, the shared stream tail and the blob store: what every role needs. */
@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [APP_CONFIG],
      useFactory: (c: AppConfig) => createRedis(c, `comfy-relay:${c.instanceName}`),
    },
    { provide: StreamKeys, inject: [APP_CONFIG], useFactory: (c: AppConfig) => new StreamKeys(c.streamPrefix) },
    {
      provide: StreamPublisher,
      inject: [REDIS, StreamKeys, APP_CONFIG],
      useFactory: (r: Redis, k: StreamKeys, c: AppConfig) => new StreamPublisher(r, k, c.progressMaxLen),
    },
    {
      provide: StreamTail,
      inject: [REDIS, StreamKeys],
      useFactory: (r: Redis, k: StreamKeys) => new StreamTail(r, [k.events, k.progress]),
    },
    {
      provide: BLOB_STORE,
      inject: [REDIS, StreamKeys, APP_CONFIG],
      useFactory: (r: Redis, k: StreamKeys, c: AppConfig) =>
        c.blobDir ? FsBlobStore.open(c.blobDir) : new RedisBlobStore(r, k, c.blobTtlSeconds),
    },
  ],
  exports: [REDIS, StreamKeys, StreamPublisher, StreamTail, BLOB_STORE],
})
export class StreamsModule implements OnApplicationShutdown {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    private readonly tail: StreamTail,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.tail.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
