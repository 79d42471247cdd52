import { Catch, type ArgumentsHost, type RpcExceptionFilter } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';

/**
 * Nest's default RPC filter turns every non-RpcException into "Internal server error"; the streams transport
 * needs the original error (its class decides retry vs dead-letter, its message goes to the DLQ).
 */
@Catch()
export class StreamErrorPassthroughFilter implements RpcExceptionFilter {
  catch(exception: unknown, _host: ArgumentsHost): Observable<never> {
    return throwError(() => exception);
  }
}
