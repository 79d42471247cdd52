import type { JobView } from './job-view';

const JSON_FIELDS = ['error', 'result', 'inputBlobs', 'telegram', 'deliveredTo'] as const;
const NUMBER_FIELDS = ['ticket', 'attempt', 'runMs', 'queuedMs'] as const;
const STATUSES = new Set<string>(['queued', 'running', 'succeeded', 'failed', 'cancelled']);

/** JobView ⇄ flat hash fields (nested values as JSON), the shape `jobs:view:<id>` has in Redis. */
export function viewToHash(view: JobView): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(view) as [string, unknown][]) {
    if (value === undefined) continue;
    out[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return out;
}

export function hashToView(hash: Record<string, string>): JobView | undefined {
  if (!hash.id || !STATUSES.has(hash.status ?? '')) return undefined;
  const view: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(hash)) {
    if (key === 'rev') continue;
    if ((JSON_FIELDS as readonly string[]).includes(key)) view[key] = safeParse(value);
    else if ((NUMBER_FIELDS as readonly string[]).includes(key)) view[key] = Number(value);
    else if (key === 'cancelRequested') view[key] = value === 'true';
    else view[key] = value;
  }
  view.status = hash.status;
  view.attempt = Number(hash.attempt ?? 0);
  return view as unknown as JobView;
}

function safeParse(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}
