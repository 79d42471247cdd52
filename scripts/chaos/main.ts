/**
 * npm run chaos [-- --quick] [--seed N] [--jobs N] [--window-s N] [--deadline-s N] [--keep] [--no-docs]
 *
 * Runs the service as separate processes under a seeded fault schedule and checks that nothing was lost,
 * nothing delivered twice, no finished prompt ran again and the DLQ holds only the injected poison.
 * Exit code 0: all checks passed; 1: a violation (or the run could not complete); 2: bad arguments.
 * See docs/reliability.md (which this tool rewrites with its figures).
 */
import { join } from 'node:path';
import { ChaosRun, type ChaosOptions } from './chaos-run';
import { ROOT } from '../lib/compiled-tree';
import { formatReport, writeReadmeSection, writeReliabilityDoc } from './report';

interface Args {
  quick: boolean;
  seed?: number;
  jobs?: number;
  windowS?: number;
  deadlineS?: number;
  keep: boolean;
  docs: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { quick: false, keep: false, docs: true };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const int = (): number => {
      const value = Number(argv[++i]);
      if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${flag} needs a non-negative integer`);
      return value;
    };
    if (flag === '--quick') args.quick = true;
    else if (flag === '--seed') args.seed = int();
    else if (flag === '--jobs') args.jobs = Math.max(1, int());
    else if (flag === '--window-s') args.windowS = Math.max(5, int());
    else if (flag === '--deadline-s') args.deadlineS = Math.max(30, int());
    else if (flag === '--keep') args.keep = true;
    else if (flag === '--no-docs') args.docs = false;
    else throw new Error(`unknown argument ${flag}`);
  }
  return args;
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`chaos: ${(err as Error).message}\n`);
    return 2;
  }
  const mode = args.quick ? 'quick' : 'full';
  const options: ChaosOptions = {
    mode,
    seed: args.seed ?? Math.floor(Math.random() * 2 ** 31),
    jobs: args.jobs ?? (args.quick ? 200 : 1_000),
    windowMs: (args.windowS ?? (args.quick ? 60 : 240)) * 1000,
    deadlineMs: (args.deadlineS ?? (args.quick ? 285 : 900)) * 1000,
    keep: args.keep,
    log: (line) => process.stdout.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}\n`),
  };
  const extra = [args.quick ? '--quick' : '', `--seed ${options.seed}`, args.jobs ? `--jobs ${args.jobs}` : '']
    .filter((a) => a !== '')
    .join(' ');
  const command = `npm run chaos -- ${extra}`;
  options.log(`mode ${mode}, seed ${options.seed} (repeat with: ${command}), deadline ${options.deadlineMs / 1000} s`);

  const run = new ChaosRun(options);
  options.log(`temporary directory ${run.tempDir}${options.keep ? ' (kept)' : ''}`);
  // Whatever happens — a signal, an exception, a hang past the deadline — no child outlives the tool.
  const onSignal = (signal: NodeJS.Signals): void => {
    options.log(`${signal}: killing every child`);
    run.killAllNow();
    process.exit(1);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const hardStop = setTimeout(() => {
    options.log(`hard deadline (${options.deadlineMs / 1000} s + 60 s) passed: killing every child`);
    run.killAllNow();
    process.exit(1);
  }, options.deadlineMs + 60_000);
  hardStop.unref();

  try {
    const report = await run.run();
    process.stdout.write(`${formatReport(report)}\n`);
    if (args.docs) {
      const path = join(ROOT, 'docs', 'reliability.md');
      writeReliabilityDoc(path, report, command);
      writeReadmeSection(join(ROOT, 'README.md'), report, command);
      options.log(`figures written to ${path}`);
    }
    return report.violations.length === 0 ? 0 : 1;
  } catch (err) {
    process.stderr.write(
      `chaos: the run could not complete: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  } finally {
    await run.cleanup().catch(() => undefined);
    clearTimeout(hardStop);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${String(err)}\n`);
    process.exit(1);
  },
);
