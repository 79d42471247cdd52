import { hashToView, viewToHash } from '../../src/modules/generation/projection/job-view.codec';
import type { JobView } from '../../src/modules/generation/projection/job-view';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/test-redis';

const HASH = 'a'.repeat(64);
const view: JobView = {
  id: '41b793b6-afdf-409e-a7cf-0e47932bb400',
  correlationId: '41b793b6-afdf-409e-a7cf-0e47932bb400',
  workflow: 'edit',
  userId: 'tg:123456789',
  source: 'telegram',
  status: 'succeeded',
  ticket: 17,
  attempt: 1,
  createdAt: '2026-12-07T06:14:16.917Z',
  finishedAt: '2026-12-07T06:14:16.984Z',
  promptId: '9762fde0-1277-55f8-85f6-64cf9ce3861f',
  result: [
    { hash: HASH, size: 1_500_000, type: 'image/png' },
    { hash: 'b'.repeat(64), size: 9, type: 'image/webp' },
  ],
  inputBlobs: ['c'.repeat(64)],
  telegram: { chatId: -1001234567890, userId: 123456789, messageId: 42, updateId: 900001, language: 'ru' },
  deliveredTo: { chatId: -1001234567890, messageId: 43 },
  runMs: 60,
  queuedMs: 7,
  cancelRequested: true,
};

describe('job view codec', () => {
  it('round-trips every field', () => {
    expect(hashToView(viewToHash(view))).toEqual(view);
  });

  it('keeps every value within 64 bytes, so Redis stores a finished view as a compact listpack', async () => {
    const hash = viewToHash(view);
    expect(Object.entries(hash).filter(([, v]) => v.length > 64)).toEqual([]);
    const redis = testRedis();
    const key = `${uniquePrefix('codec')}view`;
    try {
      await redis.hset(key, hash);
      expect(await redis.object('ENCODING', key)).toBe('listpack');
    } finally {
      await cleanupPrefix(redis, key);
      redis.disconnect();
    }
  });

  it('reads views written with JSON fields (before they were spread out)', () => {
    const old = {
      id: view.id,
      status: 'succeeded',
      attempt: '1',
      result: JSON.stringify(view.result),
      telegram: JSON.stringify(view.telegram),
    };
    expect(hashToView(old)).toMatchObject({ result: view.result, telegram: view.telegram });
  });
});
