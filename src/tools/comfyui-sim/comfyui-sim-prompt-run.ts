import type { JsonObject, SimQueueItem, StatusMessage } from './comfyui-sim.types';

export type Emit = (type: string, data: JsonObject, sid: string | null) => void;

interface NodeProgress {
  value: number;
  max: number;
  state: 'running' | 'finished';
}

/**
 * One execution of a queued prompt: who hears it (server.client_id), the status messages that end up in history,
 * and the progress registry behind `progress_state` frames.
 */
export class SimPromptRun {
  readonly promptId: string;
  /** extra_data.client_id; null: execution frames go to nobody, progress frames to everybody. */
  readonly sid: string | null;
  readonly extraData: JsonObject;
  readonly messages: StatusMessage[] = [];
  readonly executed: string[] = [];
  private readonly progress = new Map<string, NodeProgress>();

  constructor(
    readonly item: SimQueueItem,
    private readonly emit: Emit,
  ) {
    this.promptId = item.promptId;
    this.extraData = { ...item.extraData, ...item.sensitive };
    const client = this.extraData.client_id;
    this.sid =
      client === undefined || client === null ? null : typeof client === 'string' ? client : JSON.stringify(client);
  }

  /** PromptExecutor.add_message: recorded for history; sent to the client (or everybody when `broadcast`). */
  addMessage(event: string, data: JsonObject, broadcast = false): void {
    const stamped = { ...data, timestamp: Date.now() };
    this.messages.push([event, stamped]);
    if (this.sid !== null || broadcast) this.emit(event, stamped, this.sid);
  }

  /** Frames ComfyUI sends only when the prompt has a client (executing, executed). */
  toClient(type: string, data: JsonObject): void {
    if (this.sid !== null) this.emit(type, data, this.sid);
  }

  /** Frames sent to the client, or broadcast when there is none (progress, progress_state, previews). */
  toClientOrAll(type: string, data: JsonObject): void {
    this.emit(type, data, this.sid);
  }

  startNode(nodeId: string): void {
    this.setProgress(nodeId, { value: 0, max: 1, state: 'running' });
  }

  updateNode(nodeId: string, value: number, max: number): void {
    this.setProgress(nodeId, { value, max, state: 'running' });
  }

  finishNode(nodeId: string): void {
    const max = this.progress.get(nodeId)?.max ?? 1;
    this.setProgress(nodeId, { value: max, max, state: 'finished' });
  }

  private setProgress(nodeId: string, entry: NodeProgress): void {
    this.progress.set(nodeId, entry);
    const nodes: JsonObject = {};
    for (const [id, p] of this.progress) {
      nodes[id] = {
        value: p.value,
        max: p.max,
        state: p.state,
        node_id: id,
        prompt_id: this.promptId,
        display_node_id: id,
        parent_node_id: null,
        real_node_id: id,
      };
    }
    this.toClientOrAll('progress_state', { prompt_id: this.promptId, nodes });
  }
}
