/** One problem found in a template file; the loader prints them as `<file>: <path>: <message>`. */
export interface TemplateProblem {
  /** The template file as the loader was given it. */
  readonly file: string;
  /** JSON path inside the file, e.g. `$.inputs.width.bind[0]`. */
  readonly path: string;
  readonly message: string;
}

export type JsonObject = Record<string, unknown>;
/** Records one problem at a JSON path of the file being validated. */
export type Report = (path: string, message: string) => void;

export function formatTemplateProblem(problem: TemplateProblem): string {
  return `${problem.file}: ${problem.path}: ${problem.message}`;
}

export function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function childPath(parent: string, key: string): string {
  return /^[A-Za-z0-9_$-]+$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}
