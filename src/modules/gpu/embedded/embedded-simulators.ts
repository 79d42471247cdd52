import type { Logger } from '../../../common/logger';
import type { AppConfig } from '../../../config/app-config';
import type { ComfyUiSimulator } from '../../../tools/comfyui-sim/comfyui-simulator';

/** The ComfyUI servers the gpu role talks to: COMFYUI_URLS, or simulators started in this process. */
export interface ComfyUiEndpoints {
  urls: readonly string[];
  simulators: readonly ComfyUiSimulator[];
  stop(): Promise<void>;
}

export const COMFYUI_ENDPOINTS = Symbol('COMFYUI_ENDPOINTS');

/**
 * COMFYUI_URLS unset with the gpu role: the embedded default starts the built-in simulator (a protocol-faithful
 * ComfyUI stand-in, real PNGs, no GPU) on 127.0.0.1, with one clear warning line.
 */
export async function resolveComfyUiEndpoints(config: AppConfig, log: Logger): Promise<ComfyUiEndpoints> {
  if (config.comfyuiUrls.length > 0) return { urls: config.comfyuiUrls, simulators: [], stop: () => Promise.resolve() };
  // Loaded only here: a gpu process in front of real ComfyUI servers never pays for the simulator's code.
  const { ComfyUiSimulator } = await import('../../../tools/comfyui-sim/comfyui-simulator');
  const simulators: ComfyUiSimulator[] = [];
  const urls: string[] = [];
  for (let i = 0; i < config.simulator.instances; i++) {
    const simulator = new ComfyUiSimulator({ stepMs: config.simulator.stepMs });
    const { url } = await simulator.start({ port: 0, host: '127.0.0.1' });
    simulators.push(simulator);
    urls.push(url);
  }
  log.warn(
    { urls, stepMs: config.simulator.stepMs },
    `COMFYUI_URLS is not set: using ${simulators.length} built-in ComfyUI simulator(s), not a GPU`,
  );
  return {
    urls,
    simulators,
    stop: async () => {
      await Promise.allSettled(simulators.map((s) => s.stop()));
    },
  };
}
