import { applyDecorators, Controller, UseFilters } from '@nestjs/common';
import { EventPattern } from '@nestjs/microservices';
import type { ConsumerGroupName } from './consumer-groups';
import type { JobEventType } from './job-event.types';
import { StreamErrorPassthroughFilter } from './stream-error-passthrough.filter';

export interface StreamHandlerExtras {
  group: ConsumerGroupName;
}

/** Handles entries of `type` read by consumer group `group` (the entry's `type` field is the pattern). */
export function OnStreamEvent(type: JobEventType, group: ConsumerGroupName): MethodDecorator {
  const extras: StreamHandlerExtras = { group };
  return EventPattern(type, extras);
}

/** A controller of stream handlers: errors reach the transport unchanged, so it can retry or dead-letter. */
export function StreamController(): ClassDecorator {
  return applyDecorators(Controller(), UseFilters(StreamErrorPassthroughFilter));
}
