import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WorkflowCatalog, WorkflowLoadError } from '../../src/workflows';
import { asTemplate, sampleTemplate, withTempDir, writeJson } from './workflow-fixtures';

describe('WorkflowCatalog', () => {
  it('loads *.json, ignores other files, and answers get/has/names/list', async () => {
    await withTempDir(async (dir) => {
      await writeJson(dir, 'sample.json', sampleTemplate());
      await writeJson(dir, 'other.json', { ...sampleTemplate(), name: 'other', description: 'Other one' });
      await writeFile(join(dir, 'README.md'), '# not a template');
      const catalog = await WorkflowCatalog.loadDir(dir);

      expect(catalog.names()).toEqual(['other', 'sample']);
      expect(catalog.size).toBe(2);
      expect(catalog.has('sample')).toBe(true);
      expect(catalog.has('README')).toBe(false);
      expect(catalog.get('sample')?.output).toEqual({ node: '3' });
      expect(catalog.get('missing')).toBeUndefined();

      const listed = catalog.list();
      expect(listed.map((w) => w.name)).toEqual(['other', 'sample']);
      const sample = listed[1];
      expect(sample.description).toBe('Sample workflow for tests');
      expect(sample.inputs.find((i) => i.name === 'width')).toEqual({
        name: 'width',
        type: 'integer',
        required: false,
        default: 64,
        min: 8,
        max: 256,
        multipleOf: 8,
      });
      expect(sample.inputs.find((i) => i.name === 'photo')).toEqual({ name: 'photo', type: 'image', required: true });
      expect(JSON.stringify(listed)).not.toContain('bind');
    });
  });

  it('freezes templates so no consumer can alter them for the next job', async () => {
    await withTempDir(async (dir) => {
      await writeJson(dir, 'sample.json', sampleTemplate());
      const template = (await WorkflowCatalog.loadDir(dir)).get('sample')!;
      expect(Object.isFrozen(template.prompt['1'].inputs)).toBe(true);
      expect(() => {
        (template.prompt['1'].inputs as Record<string, unknown>).width = 1;
      }).toThrow(TypeError);
    });
  });

  it('refuses a missing directory, naming it', async () => {
    const dir = join(__dirname, 'no-such-dir');
    await expect(WorkflowCatalog.loadDir(dir)).rejects.toThrow(`${dir}: $: cannot read directory`);
  });

  it('refuses a directory without templates', async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, 'README.md'), 'nothing here');
      await expect(WorkflowCatalog.loadDir(dir)).rejects.toThrow('contains no *.json workflow templates');
    });
  });

  it('refuses duplicate names (x.json and x.JSON)', async () => {
    await withTempDir(async (dir) => {
      await writeJson(dir, 'sample.JSON', sampleTemplate());
      await writeJson(dir, 'sample.json', sampleTemplate());
      const error = await WorkflowCatalog.loadDir(dir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WorkflowLoadError);
      expect((error as WorkflowLoadError).message).toContain(
        `${join(dir, 'sample.json')}: $.name: duplicate workflow name "sample" (also defined in ${join(dir, 'sample.JSON')})`,
      );
    });
  });

  it('refuses a directory named like a template', async () => {
    await withTempDir(async (dir) => {
      await writeJson(dir, 'sample.json', sampleTemplate());
      await mkdir(join(dir, 'folder.json'));
      await expect(WorkflowCatalog.loadDir(dir)).rejects.toThrow(
        `${join(dir, 'folder.json')}: $: is not a regular file`,
      );
    });
  });

  it('reports problems of every bad file, not just the first', async () => {
    await withTempDir(async (dir) => {
      await writeJson(dir, 'a.json', { ...sampleTemplate(), name: 'a', description: '' });
      await writeJson(dir, 'b.json', '{ not json');
      await writeJson(dir, 'sample.json', sampleTemplate());
      const error = (await WorkflowCatalog.loadDir(dir).catch((e: unknown) => e)) as WorkflowLoadError;
      expect(error.problems.map((p) => `${p.file} ${p.path}`)).toEqual([
        `${join(dir, 'a.json')} $.description`,
        `${join(dir, 'b.json')} $`,
      ]);
    });
  });

  it('fromTemplates validates and refuses duplicates', () => {
    const sample = asTemplate(sampleTemplate());
    expect(WorkflowCatalog.fromTemplates([sample]).names()).toEqual(['sample']);
    expect(() => WorkflowCatalog.fromTemplates([sample, sample])).toThrow('duplicate workflow name "sample"');
    const broken = asTemplate({ ...sampleTemplate(), output: { node: '42' } });
    expect(() => WorkflowCatalog.fromTemplates([broken])).toThrow(
      'sample.json: $.output.node: node "42" does not exist',
    );
  });

  it('fromTemplates detaches the catalog from the caller objects', () => {
    const raw = sampleTemplate();
    const catalog = WorkflowCatalog.fromTemplates([asTemplate(raw)]);
    raw.prompt['1'].inputs.width = 7;
    expect(catalog.get('sample')!.prompt['1'].inputs.width).toBe(512);
    expect(Object.isFrozen(raw)).toBe(false);
  });
});
