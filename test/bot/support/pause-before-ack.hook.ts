/**
 * Preloaded into a doomed bot process (`node -r ts-node/register/transpile-only -r <this file>`) by
 * test/bot/bot-crash.spec.ts: makes the crash window between "the picture is sent and recorded" and "the stream
 * entry is acked" deterministic without a test hook in the product. When the delivery ledger is read back with
 * every image `sent` and `job.delivered` not yet announced — the step right after the Bot API calls — it marks
 * the moment in Redis (`<prefix>bot:test:paused:<job>`) and never answers, so the entry stays unacknowledged
 * (kept fresh by the consumer's heartbeat) until the test kills the process with -9.
 */
import type Redis from 'ioredis';
import { DeliveryLedger } from '../../../src/modules/bot/delivery/delivery-ledger';

const original = DeliveryLedger.prototype.get;

DeliveryLedger.prototype.get = async function held(this: DeliveryLedger, jobId: string) {
  const entry = await original.call(this, jobId);
  const outputs = [...entry.outputs.values()];
  if (outputs.length === 0 || !outputs.every((o) => o.state === 'sent') || entry.announced) return entry;
  const redis = (this as unknown as { redis: Redis }).redis;
  await redis.set(`${process.env.STREAM_PREFIX ?? ''}bot:test:paused:${jobId}`, '1', 'EX', 600);
  return new Promise<never>(() => undefined);
};
