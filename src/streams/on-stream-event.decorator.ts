import { applyDecorators, Controller, UseFilters } from '@nestjs/common';
import { EventPattern } from '@nestjs/microservices';
import type { ConsumerGroupName } from './consumer-groups';
import type { EnvelopeOf, JobEventType } from './job-event.types';
import type { StreamContext } from './stream.context';
import { StreamErrorPassthroughFilter } from './stream-error-passthrough.filter';

export interface StreamHandlerExtras {
  group: ConsumerGroupName;
}

/** A handler of events of type(s) T: it receives exactly the envelope of what it subscribed to. */
export type StreamEventHandler<T extends JobEventType> = (event: EnvelopeOf<T>, ctx: StreamContext) => unknown;

/**
 * Handles entries of `type` (or of each of several types) read by consumer group `group`; the entry's `type` field
 * is the pattern. Typed by the subscription: `@OnStreamEvent('job.completed', …)` on a method whose event parameter
 * is not `JobEnvelope<'job.completed'>` (or wider) does not compile.
 */
export function OnStreamEvent<const T extends JobEventType>(type: T | readonly T[], group: ConsumerGroupName) {
  const extras: StreamHandlerExtras = { group };
  const pattern = EventPattern(typeof type === 'string' ? type : [...type], extras);
  return <H extends StreamEventHandler<T>>(
    target: object,
    key: string | symbol,
    descriptor: TypedPropertyDescriptor<H>,
  ): void => {
    pattern(target, key, descriptor);
  };
}

/** A controller of stream handlers: errors reach the transport unchanged, so it can retry or dead-letter. */
export function StreamController(): ClassDecorator {
  return applyDecorators(Controller(), UseFilters(StreamErrorPassthroughFilter));
}
