import type { IncomingMessage } from 'node:http';
import { posix } from 'node:path';
import { annotatedFilepath, safeRelative } from '../comfyui-sim-file.store';
import { parseForm } from '../comfyui-sim-multipart';
import { PyException } from '../comfyui-sim-python.util';
import type { DirType } from '../comfyui-sim.types';
import { empty, HttpReply, json, sleep } from './http-reply';
import type { SimHttpState } from './http-state';

const MIME_BY_EXT: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
};

/**
 * POST /upload/image: type input|temp|output (default input), subfolder created on demand, a same-named file
 * with the same bytes is reused, with other bytes renamed "name (1).ext" unless overwrite is "true"/"1".
 */
export function uploadImage(state: SimHttpState, body: Buffer, contentType: string | undefined): HttpReply {
  const form = parseForm(body, contentType);
  if (form === null) return empty(400);
  const image = form.get('image');
  const typeField = form.get('type');
  const type = typeof typeField === 'string' ? typeField : 'input';
  // ComfyUI leaves its directory variable unbound for other types.
  if (type !== 'input' && type !== 'temp' && type !== 'output') throw new PyException('UnboundLocalError', 'type_dir');
  if (image === undefined || typeof image === 'string' || image.filename === '') return empty(400);
  const subfolderField = form.get('subfolder');
  const subfolder = typeof subfolderField === 'string' ? subfolderField : '';
  const dir = safeRelative(subfolder);
  let filename = image.filename;
  if (dir === null || filename.includes('/') || safeRelative(dir, filename) === null) return empty(400);
  const relOf = (name: string): string => (dir === '' ? name : `${dir}/${name}`);
  const overwrite = form.get('overwrite');
  let duplicate = false;
  if (overwrite !== 'true' && overwrite !== '1') {
    const ext = posix.extname(filename);
    const stem = filename.slice(0, filename.length - ext.length);
    for (let i = 1; state.files.exists(type, relOf(filename)); i++) {
      if (state.files.read(type, relOf(filename))!.equals(image.bytes)) {
        duplicate = true;
        break;
      }
      filename = `${stem} (${i})${ext}`;
    }
  }
  if (!duplicate) state.files.write(type, relOf(filename), image.bytes);
  state.counters.uploads++;
  return json({ name: filename, subfolder, type });
}

/**
 * GET /view: `..` or a leading `/` in filename → 400, unknown type → 400, subfolder escaping → 403, missing → 404.
 * `preview=` and `channel=` are not implemented: the stored PNG is returned as is.
 */
export async function viewFile(state: SimHttpState, query: URLSearchParams, req: IncomingMessage): Promise<HttpReply> {
  if (state.config.viewDelayMs > 0) await sleep(state.config.viewDelayMs, req);
  const requested = query.get('filename');
  if (requested === null) return empty(404);
  const annotated = annotatedFilepath(requested);
  const filename = annotated.name;
  if (filename === '' || filename.startsWith('/') || filename.includes('..')) return empty(400);
  let type: DirType | null = annotated.type;
  if (type === null) {
    const t = query.get('type') ?? 'output';
    type = t === 'output' || t === 'input' || t === 'temp' ? t : null;
  }
  if (type === null) return empty(400);
  let dir = '';
  if (query.has('subfolder')) {
    const sub = safeRelative(query.get('subfolder') ?? '');
    if (sub === null) return empty(403);
    dir = sub;
  }
  const base = posix.basename(filename);
  const bytes = state.files.read(type, dir === '' ? base : `${dir}/${base}`);
  if (!bytes) return empty(404);
  const contentType = MIME_BY_EXT[posix.extname(base).toLowerCase()] ?? 'application/octet-stream';
  return new HttpReply(200, bytes, { 'Content-Type': contentType, 'Content-Disposition': `filename="${base}"` });
}
