import { Linter } from 'eslint';
import tseslint from 'typescript-eslint';

// The selectors eslint.config.mjs applies to src (outside src/redis) with no-restricted-syntax.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const scriptRegistryRules = require('../../eslint.script-registry.cjs') as { selector: string; message: string }[];

/** Lines of `code` the one-script-registry rule refuses. */
function refusedLines(code: string): number[] {
  const linter = new Linter({ configType: 'flat' });
  const messages = linter.verify(
    code,
    [
      {
        files: ['**/*.ts'],
        languageOptions: { parser: tseslint.parser as Linter.Parser },
        rules: { 'no-restricted-syntax': ['error', ...scriptRegistryRules] },
      },
    ],
    { filename: 'src/modules/generation/bad.service.ts' },
  );
  const fatal = messages.filter((m) => m.fatal);
  if (fatal.length > 0) throw new Error(fatal.map((m) => m.message).join('; '));
  return messages.map((m) => m.line);
}

describe('one Lua script registry (ESLint)', () => {
  it('refuses Lua run or declared outside the registry, in each of its spellings', () => {
    const bad = [
      "await redis.eval('return 1', 0);",
      "await redis.evalsha('abc', 0);",
      "await redis.eval_ro('return 1', 0);",
      "await redis.fcall('f', 0);",
      "await redis.script('LOAD', 'return 1');",
      "redis.defineCommand('mine', { numberOfKeys: 1, lua: 'return 1' });",
      "await redis.call('EVAL', 'return 1', '0');",
      "await redis.call('evalsha', 'abc', '0');",
      "await pipeline.call('SCRIPT', 'LOAD', 'return 1');",
      "const s = new LuaScript('mine', 'return 1');",
    ];
    expect(refusedLines(bad.join('\n'))).toEqual(bad.map((_, i) => i + 1));
  });

  it('allows the registry’s scripts and other commands', () => {
    const good = [
      'await LEASE_RELEASE.run(redis, [key], [owner]);',
      "await redis.call('CLIENT', 'UNBLOCK', id);",
      "await redis.call('XREADGROUP', 'GROUP', g, c, 'STREAMS', s, '>');",
      'await redis.hgetall(key);',
      'evaluate(x);',
    ];
    expect(refusedLines(good.join('\n'))).toEqual([]);
  });
});
