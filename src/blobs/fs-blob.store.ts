import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { BlobRef } from '../streams/job-event.types';
import { BLOB_HASH_PATTERN, blobRefFor, type BlobStore } from './blob-store';

/**
 * Blobs as files in a shared folder (BLOB_DIR), fanned out by hash prefix. Writes go to a temp name and are
 * renamed, so a reader never sees half a file. Names come only from the content hash, never from user input.
 */
export class FsBlobStore implements BlobStore {
  private readonly root: string;

  constructor(dir: string) {
    this.root = resolve(dir);
  }

  /** Fails at start-up, naming BLOB_DIR, when the folder cannot be created or written. */
  static async open(dir: string): Promise<FsBlobStore> {
    const store = new FsBlobStore(dir);
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

  async put(bytes: Buffer, type: string): Promise<BlobRef> {
    const ref = blobRefFor(bytes, type);
    const path = this.pathFor(ref.hash);
    await mkdir(join(this.root, ref.hash.slice(0, 2)), { recursive: true });
    const temp = `${path}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(temp, bytes);
    await rename(temp, path);
    return ref;
  }

  async get(hash: string): Promise<Buffer | null> {
    if (!BLOB_HASH_PATTERN.test(hash)) return null;
    try {
      return await readFile(this.pathFor(hash));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  locate(hash: string): string {
    return this.pathFor(hash);
  }

  private pathFor(hash: string): string {
    return join(this.root, hash.slice(0, 2), hash);
  }
}
