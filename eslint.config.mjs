// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';
import scriptRegistryRules from './eslint.script-registry.cjs';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'eslint.config.mjs', 'eslint.script-registry.cjs', 'jest.config.js', '.dependency-cruiser.cjs'] },
  eslint.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-extraneous-class': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-unnecessary-condition': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-confusing-void-expression': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
    },
  },
  {
    // One script registry: Lua is declared in src/redis/scripts and run by hash (src/redis/lua-script.ts).
    files: ['src/**/*.ts'],
    ignores: ['src/redis/**'],
    rules: {
      'no-restricted-syntax': ['error', ...scriptRegistryRules],
    },
  },
  // Module boundaries (ARCHITECTURE.md, who owns what): a job's state has one owner, reached through the
  // generation module's public index; the gpu and bot roles never import each other; infrastructure imports no
  // feature module.
  {
    files: ['src/modules/gpu/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/generation/**'], message: "Use the generation module's public index (modules/generation)." },
            { group: ['**/bot', '**/bot/**'], message: 'The gpu role does not import the bot module.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/modules/bot/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/generation/**'], message: "Use the generation module's public index (modules/generation)." },
            { group: ['**/gpu', '**/gpu/**'], message: 'The bot role does not import the gpu module.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/streams/**/*.ts', 'src/blobs/**/*.ts', 'src/redis/**/*.ts', 'src/common/**/*.ts', 'src/config/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/modules/**'], message: 'Infrastructure imports no feature module.' }] },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts', '**/*.spec.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
    },
  },
);
