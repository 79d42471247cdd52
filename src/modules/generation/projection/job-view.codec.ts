import type { BlobRef, TelegramOrigin } from '../../../streams/job-event.types';
import type { JobView } from './job-view';

const JSON_FIELDS = ['error', 'deliveredTo'] as const;
const NUMBER_FIELDS = ['ticket', 'attempt', 'runMs', 'queuedMs'] as const;
const TELEGRAM_NUMBERS = new Set(['chatId', 'userId', 'messageId', 'updateId']);
const STATUSES = new Set<string>(['queued', 'running', 'succeeded', 'failed', 'cancelled']);

/**
 * JobView ⇄ flat hash fields, the shape `jobs:view:<id>` has in Redis. Nested values are spread over fields of
 * at most 64 bytes each (`result.0.hash`, `telegram.chatId`, `inputBlobs.0`) rather than stored as JSON: Redis
 * keeps a hash whose every value fits in 64 bytes as a compact listpack, and one longer value (a result's JSON is
 * ~100 bytes) turns the whole view into a hashtable of twice the memory (docs/operations.md, sizing).
 */
export function viewToHash(view: JobView): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(view) as [string, unknown][]) {
    if (value === undefined) continue;
    if (key === 'result') spreadRefs(out, value as BlobRef[]);
    else if (key === 'inputBlobs') (value as string[]).forEach((hash, i) => (out[`inputBlobs.${i}`] = hash));
    else if (key === 'telegram') spreadObject(out, 'telegram', value as TelegramOrigin);
    else out[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return out;
}

export function hashToView(hash: Record<string, string>): JobView | undefined {
  if (!hash.id || !STATUSES.has(hash.status ?? '')) return undefined;
  const view: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(hash)) {
    if (key === 'rev' || key.includes('.')) continue;
    // `result` / `telegram` / `inputBlobs` as JSON: views written before the fields were spread out.
    if ((JSON_FIELDS as readonly string[]).includes(key) || ['result', 'telegram', 'inputBlobs'].includes(key)) {
      view[key] = safeParse(value);
    } else if ((NUMBER_FIELDS as readonly string[]).includes(key)) view[key] = Number(value);
    else if (key === 'cancelRequested') view[key] = value === 'true';
    else view[key] = value;
  }
  const refs = gatherRefs(hash);
  if (refs.length > 0) view.result = refs;
  const inputs = gatherIndexed(hash, 'inputBlobs');
  if (inputs.length > 0) view.inputBlobs = inputs;
  const telegram = gatherObject(hash, 'telegram');
  if (telegram) view.telegram = telegram;
  view.status = hash.status;
  view.attempt = Number(hash.attempt ?? 0);
  return view as unknown as JobView;
}

function spreadRefs(out: Record<string, string>, refs: readonly BlobRef[]): void {
  refs.forEach((ref, i) => {
    out[`result.${i}.hash`] = ref.hash;
    out[`result.${i}.size`] = String(ref.size);
    out[`result.${i}.type`] = ref.type;
  });
}

function spreadObject(out: Record<string, string>, name: string, value: object): void {
  for (const [key, v] of Object.entries(value) as [string, string | number | undefined][]) {
    if (v !== undefined) out[`${name}.${key}`] = String(v);
  }
}

function gatherRefs(hash: Record<string, string>): BlobRef[] {
  const refs: BlobRef[] = [];
  for (let i = 0; hash[`result.${i}.hash`] !== undefined; i++) {
    refs.push({
      hash: hash[`result.${i}.hash`],
      size: Number(hash[`result.${i}.size`]),
      type: hash[`result.${i}.type`],
    });
  }
  return refs;
}

function gatherIndexed(hash: Record<string, string>, name: string): string[] {
  const values: string[] = [];
  for (let i = 0; hash[`${name}.${i}`] !== undefined; i++) values.push(hash[`${name}.${i}`]);
  return values;
}

function gatherObject(hash: Record<string, string>, name: string): TelegramOrigin | undefined {
  const prefix = `${name}.`;
  const entries = Object.entries(hash).filter(([key]) => key.startsWith(prefix));
  if (entries.length === 0) return undefined;
  return Object.fromEntries(
    entries.map(([key, value]) => {
      const field = key.slice(prefix.length);
      return [field, TELEGRAM_NUMBERS.has(field) ? Number(value) : value];
    }),
  ) as unknown as TelegramOrigin;
}

function safeParse(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}
