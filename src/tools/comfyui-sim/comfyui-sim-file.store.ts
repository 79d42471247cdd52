import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { DirType } from './comfyui-sim.types';

interface StoredFile {
  bytes: Buffer;
  sha256: string;
}

/** A path relative to a base dir, or null when it escapes it or is absolute (ComfyUI's commonpath check). */
export function safeRelative(...parts: string[]): string | null {
  const joined = parts.filter((p) => p !== '').join('/');
  if (joined === '') return '';
  if (posix.isAbsolute(joined)) return null;
  const rel = posix.normalize(joined).replace(/\/$/, '');
  if (rel === '..' || rel.startsWith('../')) return null;
  return rel === '.' ? '' : rel;
}

/**
 * ComfyUI's input/output/temp directories, kept in memory. Files are never removed by the API (as in ComfyUI);
 * past `maxBytes` the oldest output/temp files are dropped so a long demo cannot exhaust memory.
 */
export class SimFileStore {
  private readonly dirs: Record<DirType, Map<string, StoredFile>> = {
    input: new Map(),
    output: new Map(),
    temp: new Map(),
  };
  private totalBytes = 0;

  constructor(private readonly maxBytes = 512 * 1024 * 1024) {}

  /** `rel` is a normalized path from `safeRelative`. */
  write(type: DirType, rel: string, bytes: Buffer): void {
    const dir = this.dirs[type];
    const previous = dir.get(rel);
    if (previous) {
      this.totalBytes -= previous.bytes.length;
      dir.delete(rel);
    }
    dir.set(rel, { bytes, sha256: createHash('sha256').update(bytes).digest('hex') });
    this.totalBytes += bytes.length;
    this.evict();
  }

  read(type: DirType, rel: string): Buffer | undefined {
    return this.dirs[type].get(rel)?.bytes;
  }

  exists(type: DirType, rel: string): boolean {
    return this.dirs[type].has(rel);
  }

  sha256(type: DirType, rel: string): string | undefined {
    return this.dirs[type].get(rel)?.sha256;
  }

  /** Names of the files directly inside `subfolder`. */
  namesIn(type: DirType, subfolder: string): string[] {
    const prefix = subfolder === '' ? '' : `${subfolder}/`;
    const names: string[] = [];
    for (const rel of this.dirs[type].keys()) {
      if (!rel.startsWith(prefix)) continue;
      const rest = rel.slice(prefix.length);
      if (!rest.includes('/')) names.push(rest);
    }
    return names;
  }

  /** Every file of a directory ("sub/name.png"), sorted. */
  list(type: DirType): string[] {
    return [...this.dirs[type].keys()].sort();
  }

  count(type: DirType): number {
    return this.dirs[type].size;
  }

  clear(type: DirType): void {
    for (const file of this.dirs[type].values()) this.totalBytes -= file.bytes.length;
    this.dirs[type].clear();
  }

  private evict(): void {
    for (const type of ['temp', 'output'] as const) {
      const dir = this.dirs[type];
      for (const [rel, file] of dir) {
        if (this.totalBytes <= this.maxBytes) return;
        dir.delete(rel);
        this.totalBytes -= file.bytes.length;
      }
    }
  }
}

/**
 * ComfyUI's `annotated_filepath`: "name [input]" / "[output]" / "[temp]" selects the directory. It strips one
 * character more than the tag, so only the spaced form works ("x.png[input]" loses its last letter).
 */
export function annotatedFilepath(name: string): { name: string; type: DirType | null } {
  for (const type of ['output', 'input', 'temp'] as const) {
    const tag = `[${type}]`;
    if (name.endsWith(tag)) return { name: name.slice(0, -(tag.length + 1)), type };
  }
  return { name, type: null };
}
