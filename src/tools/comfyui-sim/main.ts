import { ComfyUiSimulator } from './comfyui-simulator';

/**
 * Starts one or more simulated ComfyUI servers for demos and compose:
 *   ts-node src/tools/comfyui-sim/main.ts --port 8188 --count 2 --step-ms 50 [--host 127.0.0.1] [--steps 8]
 *   [--jobs-cancel-route] [--checkpoints a.safetensors,b.safetensors] [--model-switch-ms 2000]
 * `--checkpoints` replaces the checkpoint list ("" for none: /object_info then lists no files, as a server without
 * models does); run several with different lists for a mixed pool.
 * Instance i listens on port + i (port 0: any free port each). Prints one URL per line, stops on SIGINT/SIGTERM.
 */

interface CliArgs {
  port: number;
  count: number;
  stepMs: number;
  host: string;
  steps: number | null;
  jobsCancelRoute: boolean;
  checkpoints?: string[];
  modelSwitchMs: number;
}

function parseArgs(argv: string[]): CliArgs {
  const args: CliArgs = {
    port: 8188,
    count: 1,
    stepMs: 50,
    host: '127.0.0.1',
    steps: null,
    jobsCancelRoute: false,
    modelSwitchMs: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): number => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a non-negative integer`);
      return n;
    };
    if (flag === '--port') args.port = value();
    else if (flag === '--count') args.count = Math.max(1, value());
    else if (flag === '--step-ms') args.stepMs = value();
    else if (flag === '--steps') args.steps = Math.max(1, value());
    else if (flag === '--host') args.host = argv[++i] ?? args.host;
    else if (flag === '--jobs-cancel-route') args.jobsCancelRoute = true;
    else if (flag === '--model-switch-ms') args.modelSwitchMs = value();
    else if (flag === '--checkpoints') args.checkpoints = (argv[++i] ?? '').split(',').filter(Boolean);
    else throw new Error(`unknown argument ${flag}`);
  }
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const sims: ComfyUiSimulator[] = [];
  for (let i = 0; i < args.count; i++) {
    const sim = new ComfyUiSimulator({
      stepMs: args.stepMs,
      samplerSteps: args.steps,
      jobsCancelRoute: args.jobsCancelRoute,
      modelSwitchMs: args.modelSwitchMs,
      ...(args.checkpoints ? { models: { checkpoints: args.checkpoints } } : {}),
    });
    const { url } = await sim.start({ port: args.port === 0 ? 0 : args.port + i, host: args.host });
    sims.push(sim);
    process.stdout.write(`${url}\n`);
  }
  const shutdown = (): void => {
    void Promise.all(sims.map((s) => s.stop())).then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`comfyui-sim: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
