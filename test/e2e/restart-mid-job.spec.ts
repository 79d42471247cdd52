import Redis from 'ioredis';
import { TEST_REDIS_URL } from '../support/test-redis';
import { describeRestartMidJob } from './support/restart-mid-job.suite';

describeRestartMidJob({ env: () => ({ REDIS_URL: TEST_REDIS_URL }), client: () => new Redis(TEST_REDIS_URL) });
