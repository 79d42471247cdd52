import type { CliOutput } from '../cli-io';
import { formatDuration } from '../format.util';
import { jobTraceId } from '../../common/observability/traceparent';
import { formatTable } from '../text-table';
import type { DeliveryState, JobReport } from './job-inspector.service';

/** `cli job` for humans: header, the verdict (why it failed), the timeline, attempts, dead letters, next steps. */
export function printJobReport(out: CliOutput, r: JobReport): void {
  const v = r.view;
  const request = r.steps.find((s) => s.envelope.type === 'job.requested')?.envelope;
  const req = request?.type === 'job.requested' ? request.payload : undefined;
  out.line(`job ${r.jobId}  status ${r.status ?? 'unknown'}  (prefix ${r.prefix})`);
  out.line(
    [
      `workflow ${v?.workflow ?? req?.workflow ?? r.record?.workflow ?? '-'}`,
      `user ${v?.userId ?? req?.userId ?? r.record?.userId ?? '-'}`,
      `source ${v?.source ?? req?.source ?? '-'}`,
      `ticket ${v?.ticket ?? request?.ticket ?? r.record?.ticket ?? '-'}`,
      `attempts ${v?.attempt ?? '-'}`,
      `correlation ${v?.correlationId ?? request?.correlationId ?? '-'}`,
    ].join('  '),
  );
  const where = [v?.worker ? `worker ${v.worker}` : '', v?.instance ? `instance ${v.instance}` : ''].filter(Boolean);
  if (where.length > 0) out.line(where.join('  '));
  // Set when the job ran with tracing on (OTEL_EXPORTER_OTLP_ENDPOINT): look it up in Jaeger/Tempo.
  const traceId = jobTraceId(r.steps.map((s) => s.envelope));
  if (traceId) out.line(`trace ${traceId}`);
  out.line(
    `queue wait ${formatDuration(r.durations.queueWaitMs)}  run ${formatDuration(r.durations.runMs)}  ` +
      `total ${formatDuration(r.durations.totalMs)}` +
      (r.lastProgress && r.status === 'running' ? `  progress ${r.lastProgress.value}/${r.lastProgress.max}` : ''),
  );
  if (r.redriveOf) {
    out.line(
      `re-drive of DLQ entry ${r.redriveOf.dlqEntryId}` +
        (r.redriveOf.originalJobId ? ` (job ${r.redriveOf.originalJobId})` : '') +
        (r.redriveOf.by ? ` by ${r.redriveOf.by}` : '') +
        (r.redriveOf.reason ? `: ${r.redriveOf.reason}` : ''),
    );
  }
  if (r.failure) {
    const f = r.failure;
    out.line();
    out.line(
      `${f.final ? 'WHY IT FAILED' : 'LAST FAILURE (will retry)'}: ${f.code} — ${f.message}` +
        (f.attempt !== undefined ? ` (attempt ${f.attempt}` + (f.retriable === false ? ', not retriable)' : ')') : '') +
        (f.at ? ` at ${f.at}` : '') +
        ` [from ${f.source}]`,
    );
  }

  out.line();
  const source = {
    index: "the projector's timeline index",
    'index+scan': "the projector's index plus a scan of the streams",
    scan: 'a scan of the streams (no timeline index)',
    none: 'nowhere: no events left in the streams',
  }[r.timelineSource];
  out.line(`Timeline: ${r.steps.length} event(s), from ${source}`);
  if (r.steps.length > 0) {
    const rows = formatTable(
      r.steps.map((s, i) => ({ ...s, n: i + 1 })),
      [
        { header: '#', value: (s) => String(s.n), align: 'right' },
        { header: 'time (UTC)', value: (s) => s.at },
        { header: '+prev', value: (s) => (s.n === 1 ? '' : formatDuration(s.sincePreviousMs)), align: 'right' },
        { header: '+start', value: (s) => formatDuration(s.sinceStartMs), align: 'right' },
        { header: 'event', value: (s) => s.type },
        { header: 'actor', value: (s) => s.actor, max: 32 },
        { header: 'attempt', value: (s) => (s.attempt === undefined ? '' : String(s.attempt)), align: 'right' },
        { header: 'deliveries', value: (s) => s.deliveries.map(describeDelivery).join(' ') },
        { header: 'entry', value: (s) => `${s.stream} ${s.entryId}` },
        { header: 'detail', value: (s) => s.summary, max: 100 },
      ],
    );
    for (const line of rows) out.line(`  ${line}`);
  }

  if (r.attempts.length > 0) {
    out.line();
    out.line(`Attempts (${r.attempts.length}, from the consumers' retry history)`);
    const rows = formatTable(r.attempts, [
      { header: 'at', value: (a) => a.at ?? '-' },
      { header: 'group', value: (a) => a.group },
      { header: 'consumer', value: (a) => a.consumer ?? '-' },
      { header: 'delivery', value: (a) => (a.delivery === undefined ? '-' : String(a.delivery)), align: 'right' },
      { header: 'state', value: (a) => (a.source === 'dlq' ? 'dead-lettered' : 'retrying') },
      { header: 'error', value: (a) => a.error, max: 140 },
    ]);
    for (const line of rows) out.line(`  ${line}`);
  }

  if (r.deadLetters.length > 0) {
    out.line();
    out.line(`Dead letters (${r.deadLetters.length})`);
    const rows = formatTable(r.deadLetters, [
      { header: 'dlq id', value: (d) => d.id },
      { header: 'at', value: (d) => d.at },
      { header: 'group', value: (d) => d.group },
      { header: 'entry', value: (d) => `${d.stream.slice(r.prefix.length)} ${d.entryId}` },
      { header: 'type', value: (d) => d.type ?? '?' },
      { header: 'deliveries', value: (d) => String(d.deliveries), align: 'right' },
      { header: 're-driven as', value: (d) => d.redrivenAs ?? (d.notRedrivable ? 'n/a' : '-') },
      { header: 'reason', value: (d) => d.reason, max: 120 },
    ]);
    for (const line of rows) out.line(`  ${line}`);
  }

  const next = r.deadLetters.filter((d) => !d.redrivenAs && !d.notRedrivable);
  const redriven = r.deadLetters.filter((d) => d.redrivenAs);
  if (next.length > 0 || redriven.length > 0) out.line();
  for (const d of redriven) out.line(`Re-driven: see  npm run cli -- job ${d.redrivenAs}`);
  for (const d of next) out.line(`Next: npm run cli -- dlq redrive ${d.id} --reason "<why it should work now>"`);
}

function describeDelivery(d: DeliveryState): string {
  const times = d.deliveries !== undefined ? `×${d.deliveries}` : '';
  switch (d.state) {
    case 'pending':
      return `${d.group}:pending${times}(${d.consumer ?? '?'}, idle ${formatDuration(d.idleMs)})`;
    case 'dead-lettered':
      return `${d.group}:dlq${times}`;
    case 'acked':
      return `${d.group}:ok${times}`;
    case 'waiting':
      return `${d.group}:waiting`;
  }
}
