import type { MeasureResult } from './context';
import { round } from './stats';

const HEADERS = ['#', 'measure', 'value', 'baseline', 'ratio', 'target', 'pass'];

function fmt(value: number | null, unit = ''): string {
  if (value === null || !Number.isFinite(value)) return value === null ? '' : String(value);
  const text = String(round(value));
  return unit ? `${text} ${unit}` : text;
}

function cells(r: MeasureResult): string[] {
  return [
    String(r.measure),
    r.name,
    fmt(r.value, r.unit),
    r.baseline === null ? '' : `${fmt(r.baseline, r.unit)} (${r.baselineName ?? 'baseline'})`,
    r.ratio === null ? '' : `${fmt(r.ratio)}×`,
    r.target ?? '',
    r.pass === null ? '' : r.pass ? 'PASS' : 'FAIL',
  ];
}

/** The results as an aligned text table (terminal) or a Markdown table (README). */
export function renderTable(rows: readonly MeasureResult[], style: 'text' | 'markdown' = 'text'): string {
  const body = rows.map(cells);
  if (style === 'markdown') {
    const escape = (s: string): string => s.replace(/\|/g, '\\|');
    return [
      `| ${HEADERS.join(' | ')} |`,
      `|${HEADERS.map(() => '---').join('|')}|`,
      ...body.map((row) => `| ${row.map(escape).join(' | ')} |`),
    ].join('\n');
  }
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (row: string[]): string =>
    row
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(HEADERS), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
