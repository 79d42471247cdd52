import { Cluster } from 'ioredis';
import type { RedisClient } from '../../src/redis/redis-client';
import { startApp, type RunningApp } from '../../src/bootstrap';
import { loadConfig } from '../../src/config/config.loader';
import { cleanupPrefix, testRedis, TEST_REDIS_URL, uniquePrefix } from './test-redis';

export interface TestApp extends RunningApp {
  prefix: string;
  /** The test's own client: a Cluster client when the app runs on REDIS_CLUSTER_NODES. */
  redis: RedisClient;
  http(path: string, init?: RequestInit & { json?: unknown }): Promise<{ status: number; body: any; headers: Headers }>;
  stop(): Promise<void>;
}

/** A whole app (chosen roles) on a unique STREAM_PREFIX, HTTP on 127.0.0.1:<free port>, logs silent. */
export async function startTestApp(env: Record<string, string> = {}, prefix = uniquePrefix('app')): Promise<TestApp> {
  const config = loadConfig({
    REDIS_URL: TEST_REDIS_URL,
    STREAM_PREFIX: prefix,
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    CLAIM_IDLE_MS: '1000',
    SHUTDOWN_GRACE_MS: '2000',
    ...env,
  });
  const running = await startApp(config, { host: '127.0.0.1' });
  const redis: RedisClient = config.redisCluster
    ? new Cluster([...config.redisCluster.nodes], { redisOptions: { maxRetriesPerRequest: 3 } })
    : testRedis(config.redisUrl);
  let stopped = false;
  return {
    ...running,
    prefix,
    redis,
    async http(path, init = {}) {
      const { json, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (json !== undefined) headers.set('content-type', 'application/json');
      const response = await fetch(`${running.url}${path}`, {
        ...rest,
        headers,
        body: json !== undefined ? JSON.stringify(json) : rest.body,
      });
      const text = await response.text();
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      return { status: response.status, body, headers: response.headers };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await running.close();
      await cleanupPrefix(redis, prefix);
      redis.disconnect();
    },
  };
}
