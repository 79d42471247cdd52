import { GenerationService } from '../../src/modules/generation/commands/generation.service';
import { JOB_SUBMIT } from '../../src/redis/scripts';
import { REDIS } from '../../src/streams/redis.provider';
import type { RedisClient } from '../../src/redis/redis-client';
import { startTestApp, type TestApp } from '../support/app-harness';
import { recordWrites } from '../support/redis-writes';

/** The submit's Redis round trips: what goes together (counted by socket writes, never by time). */
describe('submit round trips', () => {
  let api: TestApp;
  beforeAll(async () => {
    api = await startTestApp({ ROLE: 'api', USER_MAX_ACTIVE: '20' });
  });
  afterAll(async () => {
    await api.stop();
  });

  it("reads the 202's position and ETA in the submit script's round trip, behind the script", async () => {
    const service = api.app.get(GenerationService);
    const recorder = recordWrites(api.app.get<RedisClient>(REDIS));
    let first;
    let second;
    try {
      first = await service.submit({ workflow: 'echo-invert', inputs: {}, userId: 'rt-a', source: 'api' });
      second = await service.submit({ workflow: 'echo-invert', inputs: {}, userId: 'rt-b', source: 'api' });
    } finally {
      recorder.stop();
    }
    // Nothing runs the jobs here (no gpu role): each waits behind the ones before it.
    expect(second.position).toBe(first.position + 1);
    for (const { id } of [first, second]) {
      const together = recorder.writes.filter((w) => w.includes(JOB_SUBMIT.sha) && w.includes(id));
      expect(together).toHaveLength(1);
      const batch = together[0]!;
      const rank = batch.indexOf('zrank');
      expect(rank).toBeGreaterThan(batch.indexOf(JOB_SUBMIT.sha)); // after the script: it sees the new job
      expect(batch.slice(rank)).toContain(id);
    }
  });
});
