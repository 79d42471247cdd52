import { join } from 'node:path';
import { WorkflowCatalog, WorkflowLoadError, validateWorkflowTemplate } from '../../src/workflows';
import { sampleTemplate, withTempDir, writeJson, type LooseJson } from './workflow-fixtures';

interface RuleCase {
  readonly rule: string;
  readonly mutate: (t: LooseJson) => void;
  readonly path: string;
  readonly message: string;
}

/** Loads `raw` as <fileName> from a temp dir and returns the WorkflowLoadError it must raise. */
async function loadError(raw: unknown, fileName = 'sample.json'): Promise<{ file: string; error: WorkflowLoadError }> {
  return withTempDir(async (dir) => {
    const file = await writeJson(dir, fileName, raw);
    try {
      await WorkflowCatalog.loadDir(dir);
    } catch (error: unknown) {
      if (error instanceof WorkflowLoadError) return { file, error };
      throw error;
    }
    throw new Error('loadDir accepted an invalid template');
  });
}

const cases: RuleCase[] = [
  { rule: 'unknown top-level field', mutate: (t) => (t.outputs = {}), path: '$.outputs', message: 'unknown field' },
  {
    rule: 'name pattern',
    mutate: (t) => {
      t.name = 'Bad Name';
    },
    path: '$.name',
    message: 'must be a string matching',
  },
  {
    rule: 'name equals file base name',
    mutate: (t) => {
      t.name = 'other';
    },
    path: '$.name',
    message: '"other" must equal the file\'s base name "sample"',
  },
  {
    rule: 'description required',
    mutate: (t) => {
      t.description = '';
    },
    path: '$.description',
    message: 'non-empty',
  },
  {
    rule: 'prompt is an object',
    mutate: (t) => {
      t.prompt = [];
    },
    path: '$.prompt',
    message: 'API-format graph',
  },
  {
    rule: 'UI-format export refused',
    mutate: (t) => (t.prompt = { nodes: [], links: [] }),
    path: '$.prompt',
    message: 'export it with "Save (API)"',
  },
  {
    rule: 'prompt has nodes',
    mutate: (t) => {
      t.prompt = {};
      t.inputs = {};
    },
    path: '$.prompt',
    message: 'has no nodes',
  },
  {
    rule: 'node has class_type',
    mutate: (t) => delete t.prompt['2'].class_type,
    path: '$.prompt.2.class_type',
    message: 'must be a non-empty string',
  },
  {
    rule: 'node has an inputs object',
    mutate: (t) => (t.prompt['2'].inputs = ['1', 0]),
    path: '$.prompt.2.inputs',
    message: 'must be an object',
  },
  {
    rule: 'links reference existing nodes',
    mutate: (t) => (t.prompt['2'].inputs.image = ['42', 0]),
    path: '$.prompt.2.inputs.image',
    message: 'links to node "42", which does not exist',
  },
  {
    rule: 'links are [nodeId, outputIndex]',
    mutate: (t) => (t.prompt['2'].inputs.image = [1, 0]),
    path: '$.prompt.2.inputs.image',
    message: 'must be ["<nodeId>", <outputIndex ≥ 0>]',
  },
  {
    rule: 'output.node exists',
    mutate: (t) => (t.output.node = '99'),
    path: '$.output.node',
    message: 'node "99" does not exist in prompt',
  },
  {
    rule: 'output.node is an image output node',
    mutate: (t) => (t.output.node = '1'),
    path: '$.output.node',
    message: 'node "1" (EmptyImage) is not an image output node',
  },
  {
    rule: 'without output a SaveImage is required',
    mutate: (t) => {
      delete t.output;
      t.prompt['3'].class_type = 'PreviewImage';
    },
    path: '$.output',
    message: 'the graph has no SaveImage node',
  },
  {
    rule: 'output has only known fields',
    mutate: (t) => (t.output.nodes = ['3']),
    path: '$.output.nodes',
    message: 'unknown field',
  },
  {
    rule: 'input names are identifiers',
    mutate: (t) => (t.inputs['bad-name'] = { type: 'string', bind: [] }),
    path: '$.inputs.bad-name',
    message: 'input name must match',
  },
  {
    rule: 'input names cannot reach a prototype',
    mutate: (t) =>
      Object.defineProperty(t.inputs, '__proto__', { value: { type: 'string', bind: [] }, enumerable: true }),
    path: '$.inputs.__proto__',
    message: 'input name must match',
  },
  {
    rule: 'input type is known',
    mutate: (t) => (t.inputs.text.type = 'text'),
    path: '$.inputs.text.type',
    message: 'must be one of string, integer, number, boolean, image, got string "text"',
  },
  {
    rule: 'input spec fields are known (typos caught)',
    mutate: (t) => (t.inputs.text.requird = true),
    path: '$.inputs.text.requird',
    message: 'unknown field for a string input',
  },
  {
    rule: 'fields belong to the type',
    mutate: (t) => (t.inputs.flag.max = 1),
    path: '$.inputs.flag.max',
    message: 'unknown field for a boolean input',
  },
  {
    rule: 'bind is an array',
    mutate: (t) => (t.inputs.text.bind = '4.inputs.text'),
    path: '$.inputs.text.bind',
    message: 'must be an array of "<nodeId>.inputs.<inputName>" paths',
  },
  {
    rule: 'bind path shape',
    mutate: (t) => (t.inputs.width.bind = ['1.width']),
    path: '$.inputs.width.bind[0]',
    message: 'must be "<nodeId>.inputs.<inputName>", got string "1.width"',
  },
  {
    rule: 'bind node exists',
    mutate: (t) => (t.inputs.width.bind = ['1.inputs.width', '77.inputs.width']),
    path: '$.inputs.width.bind[1]',
    message: 'node "77" does not exist in prompt',
  },
  {
    rule: 'bind input key exists on the node',
    mutate: (t) => (t.inputs.width.bind = ['1.inputs.widht']),
    path: '$.inputs.width.bind[0]',
    message: 'node "1" (EmptyImage) has no input "widht"; its inputs: width, height, batch_size, color',
  },
  {
    rule: 'binding over a link is refused',
    mutate: (t) => (t.inputs.text.bind = ['2.inputs.image']),
    path: '$.inputs.text.bind[0]',
    message: '"2.inputs.image" is a link to another node; only literal inputs can be bound',
  },
  {
    rule: 'bound literal has the input type',
    mutate: (t) => (t.inputs.text.bind = ['1.inputs.height']),
    path: '$.inputs.text.bind[0]',
    message: 'a string input cannot replace the number 512 at "1.inputs.height"',
  },
  {
    rule: 'free text never reaches filename_prefix',
    mutate: (t) => (t.inputs.text.bind = ['3.inputs.filename_prefix']),
    path: '$.inputs.text.bind[0]',
    message: 'filename_prefix is an output path',
  },
  {
    rule: 'one input per bind target',
    mutate: (t) => (t.inputs.seed.bind = ['1.inputs.width']),
    path: '$.inputs.seed.bind[0]',
    message: '"1.inputs.width" is already bound by input "width"',
  },
  {
    rule: 'default has the input type',
    mutate: (t) => (t.inputs.width.default = '64'),
    path: '$.inputs.width.default',
    message: 'must be an integer, got string "64"',
  },
  {
    rule: 'default within max',
    mutate: (t) => (t.inputs.width.default = 512),
    path: '$.inputs.width.default',
    message: 'must be at most 256, got 512',
  },
  {
    rule: 'default within min',
    mutate: (t) => (t.inputs.scale.default = -1),
    path: '$.inputs.scale.default',
    message: 'must be at least 0, got -1',
  },
  {
    rule: 'default honours multipleOf',
    mutate: (t) => (t.inputs.width.default = 60),
    path: '$.inputs.width.default',
    message: 'must be a multiple of 8, got 60',
  },
  {
    rule: 'default within maxLength',
    mutate: (t) => (t.inputs.text.default = 'far too long'),
    path: '$.inputs.text.default',
    message: 'must be at most 10 characters, got 12',
  },
  {
    rule: 'default in enum',
    mutate: (t) => (t.inputs.mode.default = 'c'),
    path: '$.inputs.mode.default',
    message: 'must be one of: "a", "b"',
  },
  {
    rule: '"random" default only for integers',
    mutate: (t) => (t.inputs.scale.default = 'random'),
    path: '$.inputs.scale.default',
    message: 'must be a number, got string "random"',
  },
  {
    rule: 'required input has no default',
    mutate: (t) => {
      t.inputs.text.required = true;
      t.inputs.text.default = 'x';
    },
    path: '$.inputs.text.default',
    message: 'a required input cannot have a default',
  },
  {
    rule: 'required is a boolean',
    mutate: (t) => (t.inputs.text.required = 'yes'),
    path: '$.inputs.text.required',
    message: 'must be a boolean',
  },
  {
    rule: 'image inputs are required',
    mutate: (t) => delete t.inputs.photo.required,
    path: '$.inputs.photo.required',
    message: 'image inputs must be required',
  },
  {
    rule: 'image inputs have no default',
    mutate: (t) => {
      t.inputs.photo.required = false;
      t.inputs.photo.default = 'x.png';
    },
    path: '$.inputs.photo.default',
    message: 'image inputs cannot have a default',
  },
  {
    rule: 'image maxBytes is a positive integer',
    mutate: (t) => (t.inputs.photo.maxBytes = 0),
    path: '$.inputs.photo.maxBytes',
    message: 'must be at least 1, got 0',
  },
  {
    rule: 'min does not exceed max',
    mutate: (t) => (t.inputs.width.min = 300),
    path: '$.inputs.width.min',
    message: 'must not exceed max (300 > 256)',
  },
  {
    rule: 'integer bounds are integers',
    mutate: (t) => (t.inputs.width.max = 255.5),
    path: '$.inputs.width.max',
    message: 'must be an integer, got number 255.5',
  },
  {
    rule: 'pattern compiles',
    mutate: (t) => (t.inputs.text.pattern = '(unclosed'),
    path: '$.inputs.text.pattern',
    message: 'is not a valid regular expression',
  },
  {
    rule: 'enum is a non-empty string array',
    mutate: (t) => (t.inputs.mode.enum = []),
    path: '$.inputs.mode.enum',
    message: 'must be a non-empty array of strings',
  },
  {
    rule: 'examples follow the rules',
    mutate: (t) => (t.inputs.width.examples = [64, 1000]),
    path: '$.inputs.width.examples[1]',
    message: 'must be at most 256, got 1000',
  },
  {
    rule: 'random seeds have no step',
    mutate: (t) => (t.inputs.seed.multipleOf = 2),
    path: '$.inputs.seed.multipleOf',
    message: 'cannot be combined with default "random"',
  },
];

describe('workflow template validator', () => {
  it.each(cases)('rule: $rule', async ({ mutate, path, message }) => {
    const template = sampleTemplate();
    mutate(template);
    const { file, error } = await loadError(template);
    expect(error.message).toContain(`${file}: ${path}: `);
    const problem = error.problems.find((p) => p.path === path);
    expect(problem).toEqual({ file, path, message: expect.stringContaining(message) });
  });

  it('rule: top level must be an object', async () => {
    const { file, error } = await loadError([1, 2]);
    expect(error.message).toContain(`${file}: $: must be a JSON object, got an array`);
  });

  it('accepts the sample template', () => {
    const result = validateWorkflowTemplate(sampleTemplate(), 'workflows/sample.json');
    expect(result.ok).toBe(true);
  });

  it('reports every problem of a file at once', () => {
    const template = sampleTemplate();
    template.name = 'wrong';
    template.inputs.width.default = 1;
    template.inputs.text.bind = ['9.inputs.text'];
    const result = validateWorkflowTemplate(template, 'dir/sample.json');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => p.path)).toEqual(['$.name', '$.inputs.text.bind[0]', '$.inputs.width.default']);
    expect(result.problems.every((p) => p.file === 'dir/sample.json')).toBe(true);
  });

  it('accepts "$" annotations, empty binds, PreviewImage and custom savers with an images link', () => {
    const template = sampleTemplate();
    template.$comment = 'note for template authors';
    template.inputs.text.$comment = 'also here';
    template.inputs.$comment = 'notes may sit among the inputs too';
    template.inputs.note = { type: 'string', bind: [] };
    template.prompt['7'] = { class_type: 'Image Save', inputs: { images: ['2', 0], path: 'x' } };
    const result = validateWorkflowTemplate(template, 'sample.json');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    // Annotations are dropped from the built template, so consumers iterating inputs only see specs.
    expect(Object.keys(result.template.inputs)).not.toContain('$comment');
    expect(Object.keys(result.template.inputs.text)).not.toContain('$comment');
    template.output.node = '7';
    expect(validateWorkflowTemplate(template, 'sample.json').ok).toBe(true);
    template.prompt['3'].class_type = 'PreviewImage';
    template.output.node = '3';
    expect(validateWorkflowTemplate(template, 'sample.json').ok).toBe(true);
  });

  it('allows an enum-restricted string to choose filename_prefix', () => {
    const template = sampleTemplate();
    template.inputs.folder = { type: 'string', enum: ['test/a', 'test/b'], bind: ['3.inputs.filename_prefix'] };
    expect(validateWorkflowTemplate(template, 'sample.json').ok).toBe(true);
  });

  it('without output, every SaveImage counts', () => {
    const template = sampleTemplate();
    delete template.output;
    expect(validateWorkflowTemplate(template, 'sample.json').ok).toBe(true);
  });

  it('names the file for invalid JSON', async () => {
    const { file, error } = await loadError('{ "name": "sample", ');
    expect(error.message).toContain(`${file}: $: invalid JSON:`);
  });

  it('uses bracket notation for node ids that are not plain words', () => {
    const template = sampleTemplate();
    template.prompt['a.b'] = { class_type: 'X', inputs: { image: ['nope', 0] } };
    const result = validateWorkflowTemplate(template, 'sample.json');
    expect(!result.ok && result.problems[0].path).toBe('$.prompt["a.b"].inputs.image');
  });

  it('error message lists the directory', async () => {
    await withTempDir(async (dir) => {
      await writeJson(dir, 'sample.json', { ...sampleTemplate(), name: 'x' });
      await expect(WorkflowCatalog.loadDir(dir)).rejects.toThrow(
        `Cannot load workflow templates from ${dir}:\n  - ${join(dir, 'sample.json')}: $.name:`,
      );
    });
  });
});
