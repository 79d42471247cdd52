import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Attributes } from '@opentelemetry/api';

/**
 * Span attributes, names and event texts pass through the log scrubber before they leave the process: an HTTP
 * client span's URL may hold the bot token (Bot API URLs do), an exception event a Redis URL with its password.
 */
export class ScrubbingSpanExporter implements SpanExporter {
  constructor(
    private readonly inner: SpanExporter,
    private readonly scrub: (text: string) => string,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(
      spans.map((span) => this.scrubbed(span)),
      resultCallback,
    );
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }

  /** A view of the span with clean texts; everything else (context, times, resource) is read through to it. */
  private scrubbed(span: ReadableSpan): ReadableSpan {
    return Object.create(span, {
      name: { value: this.scrub(span.name) },
      attributes: { value: this.attributes(span.attributes) },
      events: {
        value: span.events.map((e) => ({
          ...e,
          ...(e.attributes ? { attributes: this.attributes(e.attributes) } : {}),
        })),
      },
      status: {
        value: span.status.message ? { ...span.status, message: this.scrub(span.status.message) } : span.status,
      },
    }) as ReadableSpan;
  }

  private attributes(attributes: Attributes): Attributes {
    const out: Attributes = {};
    for (const [key, value] of Object.entries(attributes)) {
      if (typeof value === 'string') out[key] = this.scrub(value);
      else if (Array.isArray(value)) {
        out[key] = value.map((v: unknown) => (typeof v === 'string' ? this.scrub(v) : v)) as typeof value;
      } else out[key] = value;
    }
    return out;
  }
}
