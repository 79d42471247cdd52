import { randomUUID } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { access, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { blobNamespace, type BlobBytes } from './blob-bytes';

/**
 * Bytes as files in a folder (BLOB_DIR; shared between machines only through a shared volume), under a folder
 * per deployment prefix, fanned out by hash prefix. Writes go to a unique temp name and are renamed, so a reader
 * never sees half a file. Names come only from the content hash, never from user input.
 */
export class FsBlobBytes implements BlobBytes {
  readonly expiresNatively = false;
  readonly maxDeleteMs = 30_000;
  private readonly root: string;

  private constructor(dir: string, namespace: string) {
    this.root = join(resolve(dir), blobNamespace(namespace));
  }

  /** Fails at start-up, naming BLOB_DIR, when the folder cannot be created or written. */
  static async open(dir: string, namespace: string): Promise<FsBlobBytes> {
    const store = new FsBlobBytes(dir, namespace);
    const probe = join(store.root, `.write-probe-${process.pid}`);
    try {
      await mkdir(store.root, { recursive: true });
      await writeFile(probe, '');
      await unlink(probe);
    } catch (err) {
      throw new Error(`BLOB_DIR=${dir} is not a writable directory: ${(err as Error).message}`);
    }
    return store;
  }

  async write(hash: string, bytes: Buffer): Promise<void> {
    const path = this.locate(hash);
    await mkdir(join(this.root, hash.slice(0, 2)), { recursive: true });
    const temp = `${path}.${randomUUID()}.tmp`;
    await writeFile(temp, bytes);
    await rename(temp, path);
  }

  async writtenAt(hash: string): Promise<number | null> {
    return (await stat(this.locate(hash)).catch(absentAsNull))?.mtimeMs ?? null;
  }

  async read(hash: string): Promise<Buffer | null> {
    return readFile(this.locate(hash)).catch(absentAsNull);
  }

  async open(hash: string): Promise<{ body: Readable; size: number } | null> {
    const path = this.locate(hash);
    const info = await stat(path).catch(absentAsNull);
    return info ? { body: createReadStream(path), size: info.size } : null;
  }

  async delete(hash: string): Promise<void> {
    await unlink(this.locate(hash)).catch(absentAsNull);
  }

  async probe(): Promise<void> {
    await access(this.root, constants.W_OK);
  }

  locate(hash: string): string {
    return join(this.root, hash.slice(0, 2), hash);
  }
}

function absentAsNull(err: unknown): null {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
  throw err;
}
