import type Redis from 'ioredis';
import { RunStatsRepository } from '../../src/modules/generation/projection/run-stats.repository';
import { StreamKeys } from '../../src/streams/stream-keys';
import { cleanupPrefix, testRedis, uniqueShardedPrefix } from '../support/test-redis';

/** STREAM_SHARDS: keys named through any shard's StreamKeys land in the shard their job or stream belongs to. */
describe('StreamKeys with shards', () => {
  const home = StreamKeys.sharded('cr:', 3);

  it('keeps the one-shard names as they were', () => {
    const one = StreamKeys.sharded('cr:', 1);
    expect(one.requests).toBe('cr:jobs:requests');
    expect(one.view('abc')).toBe('cr:jobs:view:abc');
    expect(one.attempts('gpu', 'cr:jobs:requests', '1-0')).toBe('cr:attempts:gpu:jobs:requests:1-0');
  });

  it("names a job's keys in the shard its id carries, whichever shard is asked", () => {
    for (const shard of home.shards) {
      const id = shard.mintJobId();
      expect(home.shardOfJob(id)).toBe(shard.shard);
      expect(home.view(id)).toBe(`${shard.prefix}jobs:view:${id}`);
      expect(home.forShard((shard.shard + 1) % 3).view(id)).toBe(`${shard.prefix}jobs:view:${id}`);
    }
  });

  it("names an entry's attempt history in its stream's shard (what `cli job` reads through shard 0's keys)", () => {
    const third = home.forShard(2);
    const key = home.attempts('gpu', third.requests, '5-0');
    expect(key).toBe(`${third.prefix}attempts:gpu:jobs:requests:5-0`);
    expect(third.attempts('gpu', third.requests, '5-0')).toBe(key);
  });
});

describe('run statistics with shards (real Redis)', () => {
  let redis: Redis;
  let prefix: string;

  beforeEach(() => {
    redis = testRedis();
    prefix = uniqueShardedPrefix('runstats');
  });

  afterEach(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it("a run the projector records is learned in the job's shard, as the completion script learns it", async () => {
    const home = StreamKeys.sharded(prefix, 3);
    const third = home.forShard(2);
    const stats = new RunStatsRepository(redis, home);
    await stats.recordRun(third.mintJobId(), 1_200, 'echo-invert:0.25mp:20s');
    expect(await redis.hget(third.runStats, 'completed')).toBe('1');
    expect(await redis.exists(home.runStats)).toBe(0);
    expect((await stats.learned('echo-invert:0.25mp:20s')).classMs).toBe(1_200);
  });
});
