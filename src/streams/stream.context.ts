import { BaseRpcContext } from '@nestjs/microservices';
import type { HandlerContext } from './stream-consumer';

/** What a stream handler gets with `@Ctx()`: where the entry came from, its delivery count, an abort signal. */
export class StreamContext extends BaseRpcContext<[HandlerContext]> {
  get entry(): HandlerContext {
    return this.args[0];
  }
  get signal(): AbortSignal {
    return this.args[0].signal;
  }
  get deliveries(): number {
    return this.args[0].deliveries;
  }
}
