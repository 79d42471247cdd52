/** Raw entry as Redis returns it: [id, [field, value, ...]] — fields are null for an entry deleted while pending. */
export interface RawEntry {
  id: string;
  fields: string[] | null;
}

/** Parses an XREAD/XREADGROUP reply `[[stream, [[id, fields]...]]...]` (null on timeout). */
export function parseReadReply(reply: unknown): { stream: string; entries: RawEntry[] }[] {
  if (!Array.isArray(reply)) return [];
  const out: { stream: string; entries: RawEntry[] }[] = [];
  for (const item of reply as unknown[]) {
    if (!Array.isArray(item) || item.length < 2) continue;
    const [stream, entries] = item as [unknown, unknown];
    out.push({ stream: String(stream), entries: parseEntries(entries) });
  }
  return out;
}

export function parseEntries(entries: unknown): RawEntry[] {
  if (!Array.isArray(entries)) return [];
  const out: RawEntry[] = [];
  for (const entry of entries as unknown[]) {
    if (!Array.isArray(entry) || entry.length < 2) continue;
    const [id, fields] = entry as [unknown, unknown];
    out.push({ id: String(id), fields: Array.isArray(fields) ? (fields as unknown[]).map(String) : null });
  }
  return out;
}

/** XAUTOCLAIM reply: [nextCursor, entries, deletedIds] (Redis 7). */
export function parseAutoclaimReply(reply: unknown): { cursor: string; entries: RawEntry[]; deleted: string[] } {
  if (!Array.isArray(reply)) return { cursor: '0-0', entries: [], deleted: [] };
  const [cursor, entries, deleted] = reply as [unknown, unknown, unknown];
  return {
    cursor: String(cursor),
    entries: parseEntries(entries),
    deleted: Array.isArray(deleted) ? (deleted as unknown[]).map(String) : [],
  };
}

/** Compares stream ids `<ms>-<seq>` numerically. */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

/** Causal rank of a job stream: a job's request precedes its events, which precede its progress ticks. */
function streamRank(stream: string): number {
  if (stream.endsWith('jobs:requests') || stream.endsWith('jobs:requests:priority')) return 0;
  if (stream.endsWith('jobs:events')) return 1;
  return 2;
}

/**
 * Orders entries of several streams: by id (time), and for equal ids — two appends in the same millisecond on
 * different streams — request before events before progress, which is the order they can have happened in.
 */
export function compareStreamEntries(a: { stream: string; id: string }, b: { stream: string; id: string }): number {
  return compareStreamIds(a.id, b.id) || streamRank(a.stream) - streamRank(b.stream);
}

/** One consumer group as XINFO GROUPS reports it. */
export interface GroupInfo {
  group: string;
  consumers: number;
  pending: number;
  /** Entries not yet delivered to the group; null when Redis cannot tell (after deletions or trims). */
  lag: number | null;
  lastDeliveredId: string;
}

/** The one reader of XINFO GROUPS replies (a list of flat field/value arrays per group); anything else → []. */
export function parseGroupsReply(reply: unknown): GroupInfo[] {
  if (!Array.isArray(reply)) return [];
  return reply.map((fields: unknown) => {
    const info = new Map<string, unknown>();
    if (Array.isArray(fields))
      for (let i = 0; i + 1 < fields.length; i += 2) info.set(String(fields[i]), fields[i + 1]);
    const lag = info.get('lag');
    const lastDelivered = info.get('last-delivered-id');
    return {
      group: stringOf(info.get('name')) ?? '',
      consumers: Number(info.get('consumers') ?? 0),
      pending: Number(info.get('pending') ?? 0),
      lag: lag === null || lag === undefined ? null : Number(lag),
      lastDeliveredId: stringOf(lastDelivered) ?? '0-0',
    };
  });
}

/** Redis answers strings (or Buffers with a buffer client); anything else is not a name. */
function stringOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString();
  return undefined;
}
