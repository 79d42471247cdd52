import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { WorkflowLoadError } from './workflow.errors';
import { validateWorkflowTemplate, type TemplateProblem } from './workflow-template.validator';
import type { WorkflowInputSpec, WorkflowInputSummary, WorkflowSummary, WorkflowTemplate } from './workflow.types';

/** The validated, immutable set of workflow templates the service accepts jobs for. */
export class WorkflowCatalog {
  private constructor(private readonly templates: ReadonlyMap<string, WorkflowTemplate>) {}

  /**
   * Loads every `*.json` in `dir` (other files, e.g. README.md, are ignored). Any bad file, a duplicate name or
   * an empty directory throws WorkflowLoadError listing every problem, so start-up stops naming the files.
   */
  static async loadDir(dir: string): Promise<WorkflowCatalog> {
    let entries: string[];
    try {
      entries = (await readdir(dir)).filter((entry) => extname(entry).toLowerCase() === '.json').sort();
    } catch (error: unknown) {
      throw new WorkflowLoadError(dir, [
        { file: dir, path: '$', message: `cannot read directory: ${errorText(error)}` },
      ]);
    }
    const problems: TemplateProblem[] = [];
    const sources: { file: string; raw: unknown }[] = [];
    for (const entry of entries) {
      const file = join(dir, entry);
      const raw = await readTemplateFile(file, problems);
      if (raw !== undefined) sources.push({ file, raw });
    }
    if (entries.length === 0) {
      problems.push({ file: dir, path: '$', message: 'contains no *.json workflow templates' });
    }
    return WorkflowCatalog.build(dir, sources, problems);
  }

  /** Builds a catalog from in-memory templates (validated the same way, each as if read from "<name>.json"). */
  static fromTemplates(templates: readonly WorkflowTemplate[]): WorkflowCatalog {
    return WorkflowCatalog.build(
      '(in-memory)',
      templates.map((template) => ({ file: `${template.name}.json`, raw: template })),
      [],
    );
  }

  private static build(
    dir: string,
    sources: readonly { file: string; raw: unknown }[],
    problems: TemplateProblem[],
  ): WorkflowCatalog {
    const templates = new Map<string, WorkflowTemplate>();
    const fileOf = new Map<string, string>();
    for (const { file, raw } of sources) {
      const result = validateWorkflowTemplate(raw, file);
      if (!result.ok) {
        problems.push(...result.problems);
        continue;
      }
      const { name } = result.template;
      const previous = fileOf.get(name);
      if (previous !== undefined) {
        problems.push({
          file,
          path: '$.name',
          message: `duplicate workflow name "${name}" (also defined in ${previous})`,
        });
        continue;
      }
      fileOf.set(name, file);
      // structuredClone detaches the catalog from the caller's objects before freezing.
      templates.set(name, deepFreeze(structuredClone(result.template)));
    }
    // Stable sort: each file's problems stay together and in document order, whichever phase found them.
    problems.sort((x, y) => (x.file < y.file ? -1 : x.file > y.file ? 1 : 0));
    if (problems.length > 0) throw new WorkflowLoadError(dir, problems);
    return new WorkflowCatalog(templates);
  }

  get(name: string): WorkflowTemplate | undefined {
    return this.templates.get(name);
  }

  has(name: string): boolean {
    return this.templates.has(name);
  }

  names(): string[] {
    return [...this.templates.keys()].sort();
  }

  get size(): number {
    return this.templates.size;
  }

  /** Public description for GET /v1/workflows: names, descriptions and inputs, without graph internals. */
  list(): WorkflowSummary[] {
    return this.names().map((name) => {
      const template = this.templates.get(name)!;
      return {
        name,
        description: template.description,
        inputs: Object.entries(template.inputs).map(([inputName, spec]) => summarizeInput(inputName, spec)),
      };
    });
  }
}

async function readTemplateFile(file: string, problems: TemplateProblem[]): Promise<unknown> {
  let text: string;
  try {
    if (!(await stat(file)).isFile()) {
      problems.push({ file, path: '$', message: 'is not a regular file' });
      return undefined;
    }
    text = await readFile(file, 'utf8');
  } catch (error: unknown) {
    problems.push({ file, path: '$', message: `cannot read file: ${errorText(error)}` });
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error: unknown) {
    problems.push({ file, path: '$', message: `invalid JSON: ${errorText(error)}` });
    return undefined;
  }
}

const SUMMARY_FIELDS = [
  'default',
  'description',
  'min',
  'max',
  'multipleOf',
  'minLength',
  'maxLength',
  'pattern',
  'enum',
  'maxBytes',
  'examples',
] as const;

// Picks documented fields only: bind paths are internal and "$comment"-style notes are for template authors.
function summarizeInput(name: string, spec: WorkflowInputSpec): WorkflowInputSummary {
  const summary: Record<string, unknown> = { name, type: spec.type, required: spec.required === true };
  for (const field of SUMMARY_FIELDS) {
    if (field in spec) summary[field] = (spec as unknown as Record<string, unknown>)[field];
  }
  return summary as unknown as WorkflowInputSummary;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
