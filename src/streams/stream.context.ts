import { BaseRpcContext } from '@nestjs/microservices';
import type { TraceHandle } from '../common/observability/observability.hooks';
import type { HandlerContext } from './stream-consumer';

/**
 * What a stream handler gets with `@Ctx()`: where the entry came from, its delivery count, an abort signal, and with
 * tracing on the handler's span, for the calls it makes for the job.
 */
export class StreamContext extends BaseRpcContext<[HandlerContext, (TraceHandle | undefined)?]> {
  get entry(): HandlerContext {
    return this.args[0];
  }
  get signal(): AbortSignal {
    return this.args[0].signal;
  }
  get deliveries(): number {
    return this.args[0].deliveries;
  }
  get trace(): TraceHandle | undefined {
    return this.args[1];
  }
}
