const STREAM_ID = /^\d{1,16}(-\d{1,20})?$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * A replay bound: a stream id (`1714550400000-0`, or just the milliseconds) or an ISO time
 * (`2024-05-01T10:00:00Z`), turned into an inclusive XRANGE bound. Returns undefined for anything else.
 * `end` makes a bare time or millisecond value cover its whole millisecond.
 */
export function parseStreamPosition(value: string, end = false): string | undefined {
  const text = value.trim();
  if (STREAM_ID.test(text)) return text.includes('-') ? text : end ? `${text}-${MAX_SEQ}` : `${text}-0`;
  if (!ISO_DATE.test(text)) return undefined;
  const ms = Date.parse(text);
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  return end ? `${ms}-${MAX_SEQ}` : `${ms}-0`;
}

const MAX_SEQ = '18446744073709551615';
