import { randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../../common/logger';
import { SimExecutor, type SimCounters } from './comfyui-sim-executor';
import { SimFaultBook } from './comfyui-sim-faults';
import { safeRelative, SimFileStore } from './comfyui-sim-file.store';
import { SimHttpApi, type SimHttpState } from './comfyui-sim-http';
import { patternImage, encodePng } from './comfyui-sim-image';
import { SimPromptQueue } from './comfyui-sim-queue';
import { SimSocketHub } from './comfyui-sim-socket-hub';
import type {
  ComfyUiSimulatorOptions,
  DirType,
  SimFault,
  SimFileRef,
  SimModelLists,
  SimRuntimeConfig,
  SimStartOptions,
  SimStats,
} from './comfyui-sim.types';
import type { NodeEnv } from './nodes/sim-node.types';

export const DEFAULT_SIM_MODELS: SimModelLists = {
  checkpoints: ['sd_xl_base_1.0.safetensors', 'v1-5-pruned-emaonly.safetensors'],
  diffusionModels: ['qwen_image_edit_2509_fp8_e4m3fn.safetensors', 'qwen_image_edit_fp8_e4m3fn.safetensors'],
  textEncoders: ['qwen_2.5_vl_7b_fp8_scaled.safetensors'],
  vaes: ['qwen_image_vae.safetensors'],
  loras: ['Qwen-Image-Lightning-4steps-V1.0.safetensors', 'Qwen-Image-Lightning-8steps-V1.0.safetensors'],
};

const DEFAULT_CONFIG: SimRuntimeConfig = {
  stepMs: 0,
  samplerSteps: null,
  previews: true,
  previewMaxSize: 64,
  jobsCancelRoute: false,
  viewDelayMs: 0,
  acceptWebSockets: true,
  manualSteps: false,
  modelSwitchMs: 0,
  resendCachedOutputs: true,
};

/**
 * A ComfyUI 0.3.64 stand-in (HTTP + WebSocket on node:http and ws) faithful to the captures in
 * shared/reference/comfyui: same routes, bodies, status codes, message order and client-id routing, one sequential
 * executor, real PNG outputs. Used by tests, the demo, benchmarks and `npm start` without COMFYUI_URLS.
 *
 *   const sim = new ComfyUiSimulator({ stepMs: 20 });
 *   const { url } = await sim.start({ port: 0, host: '127.0.0.1' });
 *   sim.inject({ kind: 'hang' });   // failure injection
 *   await sim.stop();
 */
export class ComfyUiSimulator {
  private readonly config: SimRuntimeConfig;
  private readonly files: SimFileStore;
  private readonly faults = new SimFaultBook();
  private readonly counters: SimCounters & SimHttpState['counters'] = {
    executions: 0,
    byPromptId: new Map(),
    succeeded: 0,
    failed: 0,
    interrupted: 0,
    modelLoads: 0,
    modelSwitches: 0,
    submitted: 0,
    rejected: 0,
    uploads: 0,
    requests: new Map(),
  };
  private readonly hub: SimSocketHub;
  private readonly env: NodeEnv;
  private readonly state: SimHttpState;
  private readonly api: SimHttpApi;
  private readonly logger: Logger;
  private readonly tempSuffix: string;
  private readonly maxHistory: number | undefined;
  private server: Server | null = null;
  private address: { host: string; port: number } | null = null;
  private crashed = false;

  constructor(opts: ComfyUiSimulatorOptions = {}) {
    const { models, logger, maxHistory, maxStoredBytes, ...config } = opts;
    this.config = { ...DEFAULT_CONFIG, ...config };
    this.logger = logger ?? silentLogger;
    this.maxHistory = maxHistory;
    this.files = new SimFileStore(maxStoredBytes);
    this.files.write('input', 'example.png', encodePng(patternImage(64, 64, Buffer.from('comfyui-example'))));
    this.env = { files: this.files, models: { ...DEFAULT_SIM_MODELS, ...models } };
    const alphabet = 'abcdefghijklmnopqrstupvxyz';
    this.tempSuffix = Array.from({ length: 5 }, () => alphabet[randomInt(alphabet.length)]).join('');
    this.hub = new SimSocketHub({
      queueInfo: () => this.api.queueInfo(),
      executing: () => ({ clientId: this.state.executor.clientId, lastNodeId: this.state.executor.lastNodeId }),
    });
    const queue = new SimPromptQueue(() => this.broadcastStatus(), maxHistory);
    this.state = {
      queue,
      executor: this.newExecutor(queue),
      number: 0,
      files: this.files,
      env: this.env,
      config: this.config,
      faults: this.faults,
      counters: this.counters,
      logger: this.logger,
      argv: ['main.py'],
    };
    this.api = new SimHttpApi(this.state);
  }

  /** Listens (port 0: any free port) and starts the executor. */
  async start({ port = 0, host = '127.0.0.1' }: SimStartOptions = {}): Promise<{
    url: string;
    port: number;
    host: string;
  }> {
    if (this.server) throw new Error('ComfyUiSimulator already started');
    await this.listen(port, host);
    this.state.executor.start();
    return { url: this.url, port: this.address!.port, host };
  }

  get url(): string {
    if (!this.address) throw new Error('ComfyUiSimulator not started');
    const host = this.address.host.includes(':') ? `[${this.address.host}]` : this.address.host;
    return `http://${host}:${this.address.port}`;
  }

  async stop(): Promise<void> {
    await this.state.executor.stop();
    await this.hub.close();
    await this.closeServer();
  }

  /** Changes runtime settings (step time, previews, cancel route, ...) of the running server. */
  configure(patch: Partial<SimRuntimeConfig>): void {
    Object.assign(this.config, patch);
  }

  currentConfig(): Readonly<SimRuntimeConfig> {
    return { ...this.config };
  }

  /** Arms a failure; `{ kind: 'crash' }` (at 'now') crashes immediately. */
  inject(fault: SimFault): void {
    if (fault.kind === 'crash' && (fault.at ?? 'now') === 'now') {
      void this.crash();
      return;
    }
    this.faults.add(fault);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /**
   * The process dies: sockets are cut, the port stops listening, the running prompt never finishes. Files on
   * "disk" survive; queue, history and cache are gone after recover(), as after a real restart.
   */
  async crash(): Promise<void> {
    if (this.crashed || !this.server) return;
    this.crashed = true;
    await this.state.executor.stop();
    this.hub.terminateAll();
    await this.closeServer();
  }

  /** Restarts after crash() on the same host/port with empty queue/history/cache (temp files are cleared too). */
  async recover(): Promise<void> {
    if (!this.crashed || !this.address) return;
    const { host, port } = this.address;
    const queue = new SimPromptQueue(() => this.broadcastStatus(), this.maxHistory);
    this.state.queue = queue;
    this.state.executor = this.newExecutor(queue);
    this.state.number = 0;
    this.files.clear('temp');
    await this.listen(port, host);
    this.crashed = false;
    this.state.executor.start();
  }

  /** Cuts every WebSocket connection; HTTP keeps working and clients may reconnect. */
  dropSockets(): void {
    this.hub.terminateAll();
  }

  /** With `manualSteps`, lets `count` sampler steps through. */
  releaseSteps(count = 1): void {
    this.state.executor.releaseSteps(count);
  }

  /** How many times the executor started this prompt_id (cached re-runs count). */
  executionCount(promptId: string): number {
    return this.counters.byPromptId.get(promptId) ?? 0;
  }

  /** A stored file's bytes, e.g. to check an output or an upload. */
  readFile(ref: SimFileRef): Buffer | undefined {
    const rel = safeRelative(ref.subfolder, ref.filename);
    return rel === null ? undefined : this.files.read(ref.type, rel);
  }

  /** What a client left in one of ComfyUI's folders ("sub/name.png", sorted): only temp/ is emptied by a restart. */
  storedFiles(type: DirType): string[] {
    return this.files.list(type);
  }

  stats(): SimStats {
    const { queue, executor } = this.state;
    return {
      submitted: this.counters.submitted,
      rejected: this.counters.rejected,
      executions: this.counters.executions,
      executionsByPromptId: Object.fromEntries(this.counters.byPromptId),
      succeeded: this.counters.succeeded,
      failed: this.counters.failed,
      interrupted: this.counters.interrupted,
      pending: queue.pendingItems().length,
      running: executor.running,
      historySize: queue.historySize(),
      registeredSockets: this.hub.registeredCount(),
      openSockets: this.hub.openCount(),
      uploads: this.counters.uploads,
      crashed: this.crashed,
      modelLoads: this.counters.modelLoads,
      modelSwitches: this.counters.modelSwitches,
      requests: Object.fromEntries(this.counters.requests),
    };
  }

  private newExecutor(queue: SimPromptQueue): SimExecutor {
    return new SimExecutor({
      queue,
      hub: this.hub,
      env: this.env,
      config: this.config,
      faults: this.faults,
      counters: this.counters,
      tempSuffix: this.tempSuffix,
      crash: () => void this.crash(),
      logger: this.logger,
    });
  }

  private broadcastStatus(): void {
    if (!this.crashed) this.hub.send('status', { status: this.api.queueInfo() }, null);
  }

  private listen(port: number, host: string): Promise<void> {
    const server = createServer((req, res) => void this.api.handle(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    server.on('clientError', (_err, socket) => socket.destroy());
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const address = server.address();
        const actual = typeof address === 'object' && address ? address.port : port;
        this.server = server;
        this.address = { host, port: actual };
        this.state.argv.splice(0, this.state.argv.length, 'main.py', '--listen', host, '--port', String(actual));
        resolve();
      });
    });
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node gives an upgraded socket no error listener: a client that resets it (ECONNRESET) while being refused
    // would otherwise throw in this process (ws adds its own listener to the sockets it takes).
    socket.on('error', () => undefined);
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    if ((url.pathname !== '/ws' && url.pathname !== '/api/ws') || !this.config.acceptWebSockets) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    this.hub.handleUpgrade(req, socket, head, url.searchParams.get('clientId') ?? '');
  }

  private closeServer(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
