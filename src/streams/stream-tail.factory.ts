import type { RedisClient } from '../redis/redis-client';
import type { Logger } from '../common/logger';
import { StreamTail, type StreamTailOptions } from './stream-tail';

/**
 * Opens a tail of its own for a role that needs other streams or another batching than the shared StreamTail (the
 * gpu role's cancel fan-out, the api role's job metrics). The caller closes what it opened.
 */
export class StreamTailFactory {
  constructor(private readonly redis: RedisClient) {}

  open(streams: readonly string[], log: Logger, options: StreamTailOptions = {}): StreamTail {
    return new StreamTail(this.redis, streams, log, options);
  }
}
