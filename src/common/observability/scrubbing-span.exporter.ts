import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Attributes } from '@opentelemetry/api';

/**
 * Span attributes, names and event texts pass through the log scrubber before they leave the process: an HTTP
 * client span's URL may hold the bot token (Bot API URLs do), an exception event a Redis URL with its password.
 *
 * Cheap on the common path, since it runs on every span: a text is scrubbed once per batch (a job's id, a group, a
 * host recur in most spans of a batch), and a span whose texts all come out unchanged is handed on as it is, so the
 * encoder reads the SDK's own span objects rather than a wrapper per span.
 */
export class ScrubbingSpanExporter implements SpanExporter {
  constructor(
    private readonly inner: SpanExporter,
    private readonly scrub: (text: string) => string,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const seen = new Map<string, string>();
    const scrub = (text: string): string => {
      let clean = seen.get(text);
      if (clean === undefined) {
        clean = this.scrub(text);
        seen.set(text, clean);
      }
      return clean;
    };
    this.inner.export(
      spans.map((span) => scrubbed(span, scrub)),
      resultCallback,
    );
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** The span itself when nothing needed scrubbing, else a view of it with clean texts (the rest reads through). */
function scrubbed(span: ReadableSpan, scrub: (text: string) => string): ReadableSpan {
  const name = scrub(span.name);
  const attributes = scrubAttributes(span.attributes, scrub);
  let events = span.events;
  for (let i = 0; i < span.events.length; i++) {
    const event = span.events[i];
    const eventAttributes = event.attributes ? scrubAttributes(event.attributes, scrub) : undefined;
    if (eventAttributes !== event.attributes) {
      if (events === span.events) events = span.events.slice();
      events[i] = { ...event, attributes: eventAttributes };
    }
  }
  const message = span.status.message === undefined ? undefined : scrub(span.status.message);
  const status = message === span.status.message ? span.status : { ...span.status, message };
  if (name === span.name && attributes === span.attributes && events === span.events && status === span.status) {
    return span;
  }
  return Object.create(span, {
    name: { value: name },
    attributes: { value: attributes },
    events: { value: events },
    status: { value: status },
  }) as ReadableSpan;
}

/** The same object when no value changed; a copy with the clean values otherwise. */
function scrubAttributes(attributes: Attributes, scrub: (text: string) => string): Attributes {
  let out: Attributes | undefined;
  for (const key in attributes) {
    const value = attributes[key];
    let clean: typeof value = value;
    if (typeof value === 'string') clean = scrub(value);
    else if (Array.isArray(value) && value.some((v: unknown) => typeof v === 'string' && scrub(v) !== v)) {
      clean = value.map((v: unknown) => (typeof v === 'string' ? scrub(v) : v)) as typeof value;
    }
    if (clean !== value) {
      out ??= { ...attributes };
      out[key] = clean;
    }
  }
  return out ?? attributes;
}
