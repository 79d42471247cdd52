/**
 * Module boundaries, checked in `npm test` (scripts/test.sh) by dependency-cruiser; the rules are tested against
 * a fixture with deliberately bad imports (test/boundaries). ESLint's no-restricted-imports says the same in the
 * editor; this is the check that covers every file, type-only and dynamic imports included.
 */
/**
 * Files with a store role: they alone may hold the raw Redis client (the REDIS token of src/streams/redis.provider).
 * Services, controllers, commands, SSE handlers and tails get one of these injected instead (immich's
 * server/src/repositories is the model): a store owns its keys, and the code that decides what to do with them
 * never names them.
 */
const STORE_ROLES = [
  // Named for the state they own: `bot-job.store.ts`, `job-view.repository.ts`, `job-timeline.reader.ts`,
  // `job-ledger.ts` / `delivery-ledger.ts`.
  '[.-](store|repository|reader|ledger)\\.ts$',
  // Infrastructure: the stream transport and its readers, the script registry, the blob store.
  '^src/(streams|redis|blobs)/',
  // The one health check of the connection itself (PING).
  '^src/modules/health/redis\\.health\\.ts$',
  // Wiring: modules and start-up hand the client to the stores they build (factory providers).
  '\\.module\\.ts$',
  '^src/bootstrap\\.ts$',
];

module.exports = {
  forbidden: [
    {
      name: 'raw-redis-client-only-in-stores',
      comment:
        'Only stores, repositories, readers, ledgers, infrastructure and wiring import the REDIS token; everything ' +
        'else reaches Redis through them.',
      severity: 'error',
      from: { path: '^src/', pathNot: STORE_ROLES },
      to: { path: '^src/streams/redis\\.provider\\.ts$' },
    },
    {
      name: 'infrastructure-imports-no-feature-module',
      comment: 'streams, redis, blobs, common, config, http and workflows are used by the modules, never the reverse.',
      severity: 'error',
      from: { path: '^src/(streams|redis|blobs|common|config|http|workflows)/' },
      to: { path: '^src/modules/' },
    },
    {
      name: 'gpu-and-bot-never-import-each-other',
      comment: 'They talk through events and the generation module only.',
      severity: 'error',
      from: { path: '^src/modules/(gpu|bot)/' },
      to: { path: '^src/modules/(gpu|bot)/', pathNot: '^src/modules/$1/' },
    },
    {
      name: 'modules-meet-through-their-public-index',
      comment: "A module's internals are its own: another module (or the CLI) imports its index.ts only.",
      severity: 'error',
      from: { path: '^src/modules/([^/]+)/' },
      to: { path: '^src/modules/', pathNot: ['^src/modules/$1/', '^src/modules/[^/]+/index\\.ts$'] },
    },
    {
      name: 'cli-meets-modules-through-their-public-index',
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: '^src/modules/', pathNot: '^src/modules/[^/]+/index\\.ts$' },
    },
    {
      name: 'production-code-never-imports-tools',
      comment: 'The simulator is loaded only where the embedded default needs it, with a dynamic import.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/tools/' },
      to: { path: '^src/tools/', dependencyTypesNot: ['dynamic-import', 'type-only'] },
    },
    {
      name: 'tools-dynamic-import-only-from-the-embedded-default',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/tools/', '^src/modules/gpu/embedded/embedded-simulators\\.ts$'] },
      to: { path: '^src/tools/' },
    },
    {
      name: 'no-cycles',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '(^|/)node_modules/' },
  },
};
