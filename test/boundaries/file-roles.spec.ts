import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const SRC = join(__dirname, '..', '..', 'src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
  );
}

/** A file's role suffix says what it exports: `x.service.ts` a `…Service`, `x.controller.ts` a `…Controller`. */
describe('file roles', () => {
  it.each([
    ['.service.ts', 'Service'],
    ['.controller.ts', 'Controller'],
    ['.module.ts', 'Module'],
  ])('every *%s exports a class named …%s', (suffix, classSuffix) => {
    const offenders = files(SRC)
      .filter((f) => f.endsWith(suffix))
      .filter((f) => !new RegExp(`export (abstract )?class \\w+${classSuffix}\\b`).test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f));
    expect(offenders).toEqual([]);
  });

  it.each([
    ['Service', '.service.ts'],
    ['Controller', '.controller.ts'],
    ['Store', '.store.ts'],
    ['Repository', '.repository.ts'],
    ['Reader', '.reader.ts'],
  ])('a class named …%s lives in a *%s file (one suffix per role)', (classSuffix, suffix) => {
    const offenders = files(SRC)
      .filter((f) => f.endsWith('.ts') && !f.endsWith(suffix))
      .filter((f) => new RegExp(`export (abstract )?class \\w+${classSuffix}\\b`).test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f));
    expect(offenders).toEqual([]);
  });
});
