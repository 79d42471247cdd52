import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/**
 * A stand-in OpenTelemetry collector on 127.0.0.1 for the tracing rows: accepts OTLP/HTTP exports (protobuf or JSON)
 * and drops them, counting requests, bytes and the spans in them by name (so a row can show that every span really
 * left the processes, and how many a job makes).
 */
export class OtlpSink {
  requests = 0;
  bytes = 0;
  spans = 0;
  readonly spansByName = new Map<string, number>();
  private server?: Server;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => {
        this.bytes += chunk.length;
        chunks.push(chunk);
      });
      req.on('end', () => {
        this.requests++;
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        const names = String(req.headers['content-type']).includes('json') ? jsonSpanNames(body) : protoSpanNames(body);
        for (const name of names) this.spansByName.set(name, (this.spansByName.get(name) ?? 0) + 1);
        this.spans += names.length;
        res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf' });
        res.end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** The span names of an OTLP JSON ExportTraceServiceRequest. */
export function jsonSpanNames(body: Buffer): string[] {
  const request = JSON.parse(body.toString('utf8')) as {
    resourceSpans?: { scopeSpans?: { spans?: { name?: string }[] }[] }[];
  };
  return (request.resourceSpans ?? []).flatMap((r) =>
    (r.scopeSpans ?? []).flatMap((s) => (s.spans ?? []).map((span) => span.name ?? '')),
  );
}

/**
 * The span names of an OTLP protobuf ExportTraceServiceRequest, read off the wire format: resource_spans (field 1)
 * → scope_spans (field 2) → spans (field 2) → name (field 5). Enough for counting; no schema compiled.
 */
export function protoSpanNames(body: Buffer): string[] {
  const names: string[] = [];
  for (const resourceSpans of lengthDelimited(body, 1)) {
    for (const scopeSpans of lengthDelimited(resourceSpans, 2)) {
      for (const span of lengthDelimited(scopeSpans, 2)) {
        names.push(lengthDelimited(span, 5)[0]?.toString('utf8') ?? '');
      }
    }
  }
  return names;
}

/** The length-delimited values of one field number in a protobuf message (other fields skipped). */
function lengthDelimited(message: Buffer, field: number): Buffer[] {
  const values: Buffer[] = [];
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (at >= message.length) throw new Error('truncated protobuf varint');
      const byte = message[at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  while (at < message.length) {
    const key = varint();
    const wireType = key % 8;
    if (wireType === 0) varint();
    else if (wireType === 1) at += 8;
    else if (wireType === 5) at += 4;
    else if (wireType === 2) {
      const length = varint();
      if (Math.floor(key / 8) === field) values.push(message.subarray(at, at + length));
      at += length;
    } else throw new Error(`unsupported protobuf wire type ${wireType}`);
  }
  return values;
}
