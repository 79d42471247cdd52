import { ComfyProtocolError } from './comfyui.errors';

/** Binary WebSocket event types (comfy_execution/protocol.py); all integers big-endian u32. */
export const PREVIEW_IMAGE = 1;
export const TEXT = 3;
export const PREVIEW_IMAGE_WITH_METADATA = 4;

export interface PreviewMetadata {
  nodeId: string | null;
  promptId: string | null;
  displayNodeId: string | null;
  realNodeId: string | null;
}

export type ComfyBinaryFrame =
  /** Legacy previews carry no prompt id: they belong to whatever the socket's client is executing. */
  | { kind: 'preview'; eventType: 1; imageType: string; image: Buffer; metadata: null }
  | { kind: 'preview'; eventType: 4; imageType: string; image: Buffer; metadata: PreviewMetadata }
  | { kind: 'text'; eventType: 3; nodeId: string; text: string }
  | { kind: 'unknown'; eventType: number; payload: Buffer };

const FORMAT_TYPES: Record<number, string> = { 1: 'image/jpeg', 2: 'image/png' };

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/**
 * Decodes one binary frame:
 *   1 PREVIEW_IMAGE                `[1][format: 1 JPEG | 2 PNG][image]`
 *   3 TEXT                         `[3][node_id_len][node_id][utf-8 text]`
 *   4 PREVIEW_IMAGE_WITH_METADATA  `[4][metadata_len][metadata json][image]` (clients that sent feature flags)
 */
export function decodeBinaryFrame(frame: Buffer): ComfyBinaryFrame {
  if (frame.length < 8) throw new ComfyProtocolError(`binary frame of ${frame.length} bytes is too short`);
  const eventType = frame.readUInt32BE(0);
  const word = frame.readUInt32BE(4);
  if (eventType === PREVIEW_IMAGE) {
    return {
      kind: 'preview',
      eventType: PREVIEW_IMAGE,
      imageType: FORMAT_TYPES[word] ?? 'application/octet-stream',
      image: frame.subarray(8),
      metadata: null,
    };
  }
  if (eventType === PREVIEW_IMAGE_WITH_METADATA || eventType === TEXT) {
    if (8 + word > frame.length)
      throw new ComfyProtocolError(`binary frame type ${eventType} header overruns the frame`);
    const head = frame.subarray(8, 8 + word).toString('utf8');
    const rest = frame.subarray(8 + word);
    if (eventType === TEXT) return { kind: 'text', eventType: TEXT, nodeId: head, text: rest.toString('utf8') };
    let meta: Record<string, unknown>;
    try {
      meta = JSON.parse(head) as Record<string, unknown>;
    } catch (err) {
      throw new ComfyProtocolError('preview metadata is not JSON', { cause: err });
    }
    return {
      kind: 'preview',
      eventType: PREVIEW_IMAGE_WITH_METADATA,
      imageType: str(meta.image_type) ?? 'application/octet-stream',
      image: rest,
      metadata: {
        nodeId: str(meta.node_id),
        promptId: str(meta.prompt_id),
        displayNodeId: str(meta.display_node_id),
        realNodeId: str(meta.real_node_id),
      },
    };
  }
  return { kind: 'unknown', eventType, payload: frame.subarray(4) };
}
