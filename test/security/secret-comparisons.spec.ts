import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UnauthorizedException, type ExecutionContext } from '@nestjs/common';
import * as ts from 'typescript';
import type { AppConfig } from '../../src/config/app-config';
import { ApiKeyGuard } from '../../src/modules/generation/api/api-key.guard';
import { CallbackSigner } from '../../src/modules/bot/updates/callback-data';

const ROOT = join(__dirname, '../..');
const SECRET_NAME = /key|token|secret|digest|presented|signature|expected|given/i;

interface Comparison {
  text: string;
  line: number;
}

/** The source's equality comparisons whose operands look like secrets, and its timingSafeEqual calls. */
function scan(file: string): { equalities: Comparison[]; safeCalls: string[][]; source: ts.SourceFile } {
  const source = ts.createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.ES2022, true);
  const equalities: Comparison[] = [];
  const safeCalls: string[][] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isBinaryExpression(node)) {
      const op = node.operatorToken.kind;
      const isEquality =
        op === ts.SyntaxKind.EqualsEqualsEqualsToken ||
        op === ts.SyntaxKind.ExclamationEqualsEqualsToken ||
        op === ts.SyntaxKind.EqualsEqualsToken ||
        op === ts.SyntaxKind.ExclamationEqualsToken;
      const sides = [node.left, node.right].map((n) => n.getText(source));
      // Lengths, types and "is it there at all" are not secrets.
      const harmless = (t: string) => /\.length$|^typeof |^undefined$|^null$|^'[^']*'$|^\d+$|^0$/.test(t);
      if (isEquality && sides.some((t) => SECRET_NAME.test(t)) && !sides.some(harmless)) {
        equalities.push({ text: node.getText(source), line: source.getLineAndCharacterOfPosition(node.pos).line + 1 });
      }
    }
    if (ts.isCallExpression(node) && node.expression.getText(source) === 'timingSafeEqual') {
      safeCalls.push(node.arguments.map((a) => a.getText(source)));
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { equalities, safeCalls, source };
}

const guard = (keys: string[]) => new ApiKeyGuard({ apiKeys: keys } as unknown as AppConfig);
const context = (authorization?: string) =>
  ({
    switchToHttp: () => ({ getRequest: () => ({ headers: authorization === undefined ? {} : { authorization } }) }),
  }) as unknown as ExecutionContext;

/**
 * Secrets are compared in constant time: API keys and the webhook secret as SHA-256 digests (equal lengths, so
 * timingSafeEqual never throws and nothing leaks through the length), button signatures with timingSafeEqual.
 * Checked on the source (no `===` on a secret) and on behaviour (any length of guess is a plain 401).
 */
describe('secrets are compared in constant time', () => {
  it.each([
    ['src/http/api-key-ring.ts', ['digest', 'presented']],
    ['src/modules/bot/launch/telegram-webhook.middleware.ts', ['digest(given)', 'this.secretDigest']],
    ['src/modules/bot/updates/callback-data.ts', ['expected', 'given']],
  ])('%s: timingSafeEqual, and no == on a secret', (file, args) => {
    const { equalities, safeCalls } = scan(file);
    expect(equalities).toEqual([]);
    expect(safeCalls).toContainEqual(args);
  });

  it('API keys: both sides are SHA-256 digests, and every configured key is checked (no early exit)', () => {
    const { source } = scan('src/http/api-key-ring.ts');
    const text = source.getFullText();
    expect(text).toMatch(/createHash\('sha256'\)\.update\(value\)\.digest\(\)/);
    expect(text).toMatch(/const presented = sha256\(/);
    const loop = /for \(const \{ digest, key \} of this\.entries\) \{([\s\S]*?)\n {4}\}/.exec(text);
    expect(loop).not.toBeNull();
    expect(loop![1]).not.toMatch(/\b(return|break)\b/);
  });

  it('the webhook secret is hashed before the comparison, so its length does not matter either', () => {
    const text = readFileSync(join(ROOT, 'src/modules/bot/launch/telegram-webhook.middleware.ts'), 'utf8');
    expect(text).toMatch(/createHash\('sha256'\)\.update\(value\)\.digest\(\)/);
    expect(text).toMatch(/this\.secretDigest = digest\(/);
  });

  it.each([0, 1, 31, 32, 33, 64, 255, 4096])('an API key guess of %i characters is a 401, never a crash', (length) => {
    const g = guard(['the-real-key-0123456789abcdef', 'another-real-key-0123456789']);
    const attempt = () => g.canActivate(context(`Bearer ${'g'.repeat(length)}`));
    if (length === 0) expect(attempt).toThrow(UnauthorizedException);
    else expect(attempt).toThrow(new UnauthorizedException('Invalid API key.'));
  });

  it('the right key passes whichever position it has in API_KEYS', () => {
    const keys = ['first-key-0123456789abcdef', 'second-key-0123456789abcde', 'third-key-0123456789abcdef'];
    for (const key of keys) expect(guard(keys).canActivate(context(`Bearer ${key}`))).toBe(true);
  });

  it('button signatures of any length are refused without throwing', () => {
    const signer = new CallbackSigner('123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ');
    const good = signer.sign('cancel', '3f0c7a52-9d0e-4c5a-8a5e-2b1c9d8e7f60', 42);
    const [action, id] = good.split(':');
    for (const sig of ['', 'a', 'a'.repeat(10), 'a'.repeat(11), 'a'.repeat(12), 'a'.repeat(64)]) {
      expect(signer.verify(`${action}:${id}:${sig}`, 42).ok).toBe(false);
    }
    expect(signer.verify(good, 42)).toMatchObject({ ok: true });
  });
});
