/**
 * Small Python look-alikes. ComfyUI's error texts embed Python's str()/repr() and its int()/float()
 * conversion failures; reproducing them keeps the simulator's 400 bodies identical to the captures.
 */

/** A Python exception as ComfyUI reports it: `exception_type`, `str(ex)` and `traceback.format_tb`. */
export class PyException extends Error {
  constructor(
    readonly pyType: string,
    message: string,
    readonly traceback: string[] = [],
  ) {
    super(message);
    this.name = 'PyException';
  }
}

/** `repr()` of a str, the way CPython picks quotes. */
export function pyReprString(value: string): string {
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of value) {
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch < ' ' || ch === '\x7f') out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/** `repr()` of a JSON value (dict/list/str/int/float/bool/None). */
export function pyRepr(value: unknown): string {
  if (typeof value === 'string') return pyReprString(value);
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${pyReprString(k)}: ${pyRepr(v)}`)
      .join(', ')}}`;
  }
  return pyStr(value);
}

/** `str()` of a JSON value. JS cannot tell 1 from 1.0, so integral numbers print as ints. */
export function pyStr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return pyNumber(value);
  if (typeof value === 'string') return value;
  return pyRepr(value);
}

function pyNumber(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (n === Infinity) return 'inf';
  if (n === -Infinity) return '-inf';
  return String(n);
}

/** Python's type name for a JSON value, as used in TypeError messages. */
export function pyTypeName(value: unknown): string {
  if (value === null || value === undefined) return 'NoneType';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'string') return 'str';
  if (Array.isArray(value)) return 'list';
  return 'dict';
}

const INT_LITERAL = /^[+-]?\d+(?:_\d+)*$/;
const FLOAT_LITERAL = /^[+-]?(?:(?:\d+(?:_\d+)*)?(?:\.\d+(?:_\d+)*)?|\d+(?:_\d+)*\.)(?:[eE][+-]?\d+(?:_\d+)*)?$/;

/** Python `int(value)`; throws the same ValueError/TypeError texts. */
export function pyInt(value: unknown): number {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') {
    if (Number.isNaN(value)) throw new PyException('ValueError', 'cannot convert float NaN to integer');
    if (!Number.isFinite(value)) throw new PyException('OverflowError', 'cannot convert float infinity to integer');
    return Math.trunc(value);
  }
  if (typeof value === 'string') {
    const text = value.trim();
    if (INT_LITERAL.test(text)) return Number(text.replace(/_/g, ''));
    throw new PyException('ValueError', `invalid literal for int() with base 10: ${pyReprString(value)}`);
  }
  throw new PyException(
    'TypeError',
    `int() argument must be a string, a bytes-like object or a real number, not '${pyTypeName(value)}'`,
  );
}

/** Python `float(value)`. */
export function pyFloat(value: unknown): number {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    const text = value.trim();
    const lower = text.toLowerCase().replace(/^[+-]/, '');
    if (lower === 'inf' || lower === 'infinity') return text.startsWith('-') ? -Infinity : Infinity;
    if (lower === 'nan') return NaN;
    if (text !== '' && text !== '.' && FLOAT_LITERAL.test(text)) return Number(text.replace(/_/g, ''));
    throw new PyException('ValueError', `could not convert string to float: ${pyReprString(value)}`);
  }
  throw new PyException('TypeError', `float() argument must be a string or a real number, not '${pyTypeName(value)}'`);
}

/** Python truthiness of a JSON value. */
export function pyTruthy(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}

/** Python's round(): half to even. */
export function pyRound(n: number): number {
  const floor = Math.floor(n);
  const diff = n - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** `json.dumps(value)` with Python's default separators and ensure_ascii. */
export function pyJsonDumps(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (!Number.isFinite(value)) return value > 0 ? 'Infinity' : '-Infinity';
    return String(value);
  }
  if (typeof value === 'string') return asciiJsonString(value);
  if (Array.isArray(value)) return `[${value.map(pyJsonDumps).join(', ')}]`;
  return `{${Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => `${asciiJsonString(k)}: ${pyJsonDumps(v)}`)
    .join(', ')}}`;
}

function asciiJsonString(text: string): string {
  return JSON.stringify(text).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * One `traceback.format_tb` entry. `from` marks where CPython's caret underline starts (it runs to the end of
 * the line unless `marks` gives the exact underline, e.g. '~~~~~~^^^^^^').
 */
export function pyFrame(file: string, line: number, func: string, code: string, from?: string, marks?: string): string {
  const head = `  File "${file}", line ${line}, in ${func}\n    ${code}\n`;
  if (from === undefined) return head;
  const start = 4 + code.indexOf(from);
  return `${head}${' '.repeat(start)}${marks ?? '^'.repeat(4 + code.length - start)}\n`;
}
