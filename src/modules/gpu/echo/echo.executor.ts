import { createHash } from 'node:crypto';
import { encodePng } from '../../../common/png-encoder';
import { sleep } from '../../../common/sleep.util';
import {
  ExecutionError,
  type ExecutionHooks,
  type ExecutionJob,
  type ExecutionResult,
  type GenerationExecutor,
} from '../runner/generation-executor';

const STEPS = 4;

/**
 * TEMPORARY stand-in for ComfyUI until the GPU module's ComfyUI executor lands: renders a real PNG (a gradient
 * derived from the prompt) in a few "steps" with progress, so the pipeline runs end to end. Not a simulator of
 * ComfyUI.
 */
export class EchoExecutor implements GenerationExecutor {
  readonly name = 'echo';

  constructor(
    private readonly stepMs = 50,
    private readonly slots = 2,
  ) {}

  capacity(): number {
    return this.slots;
  }

  async execute(job: ExecutionJob, hooks: ExecutionHooks): Promise<ExecutionResult> {
    const promptId = job.jobId;
    await hooks.onAccepted({ instance: 'echo', promptId });
    await hooks.onStarted();
    for (let step = 1; step <= STEPS; step++) {
      await sleep(this.stepMs, hooks.signal);
      if (hooks.signal.aborted) throw new ExecutionError('aborted', 'execution aborted', true);
      hooks.onProgress({ value: step, max: STEPS, stage: 'echo' });
    }
    const width = integerInput(job.inputs.width, 64);
    const height = integerInput(job.inputs.height, 64);
    const text = typeof job.inputs.prompt === 'string' ? job.inputs.prompt : job.jobId;
    return { instance: 'echo', promptId, outputs: [{ bytes: renderGradient(text, width, height), type: 'image/png' }] };
  }
}

function integerInput(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) ? Math.min(512, Math.max(8, value)) : fallback;
}

function renderGradient(text: string, width: number, height: number): Buffer {
  const seed = createHash('sha256').update(text).digest();
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      rgba[i] = (seed[0] + (x * 255) / width) & 0xff;
      rgba[i + 1] = (seed[1] + (y * 255) / height) & 0xff;
      rgba[i + 2] = seed[2]!;
      rgba[i + 3] = 255;
    }
  }
  return encodePng(width, height, rgba);
}
