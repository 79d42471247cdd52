import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { BlobRef } from '../streams/job-event.types';
import { blobNamespace, type BlobBytes } from './blob-bytes';
import { BlobStoreUnavailableError } from './blob-errors';

const MAX_ATTEMPTS = 3;

export interface S3BlobOptions {
  bucket: string;
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  keyPrefix: string;
  /** Only when both are set; otherwise the SDK's default chain (AWS_PROFILE, web identity, instance role …). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Per request; a hung object store costs a job a retry, not a worker. */
  requestTimeoutMs: number;
}

/**
 * Bytes in an S3-compatible bucket (AWS S3, MinIO, R2, Ceph RGW …): the backend for fleets. Objects are named by
 * content hash under BLOB_S3_KEY_PREFIX and the deployment's namespace; expiry is the service's own (the sweeper deletes due objects), and a
 * bucket lifecycle rule on the prefix is the backstop for anything the index forgot (docs/operations.md).
 */
export class S3BlobBytes implements BlobBytes {
  readonly expiresNatively = false;
  /** The SDK's attempts × the per-request timeout, and a margin. */
  readonly maxDeleteMs: number;
  private readonly client: S3Client;
  private readonly objectPrefix: string;

  constructor(
    private readonly options: S3BlobOptions,
    namespace: string,
  ) {
    this.maxDeleteMs = MAX_ATTEMPTS * options.requestTimeoutMs + 10_000;
    this.objectPrefix = `${options.keyPrefix}${blobNamespace(namespace)}/`;
    this.client = new S3Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: MAX_ATTEMPTS,
      requestHandler: {
        connectionTimeout: Math.min(3_000, options.requestTimeoutMs),
        requestTimeout: options.requestTimeoutMs,
      },
      // Checksums only where the API requires them: many S3-compatible servers reject the newer default headers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  /**
   * Start-up check: a bucket that does not exist or refuses our credentials is a configuration error (start-up
   * stops naming BLOB_S3_BUCKET); an unreachable endpoint is not (the store may come back: /health reports it).
   */
  async checkBucket(): Promise<'ok' | { unreachable: string }> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }));
      return 'ok';
    } catch (err) {
      const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
      if (status === 404 || status === 403 || status === 301 || status === 400) {
        throw new Error(
          `BLOB_S3_BUCKET=${this.options.bucket}: the bucket answered ${status} (${(err as Error).name}); ` +
            'check the name, BLOB_S3_REGION / BLOB_S3_ENDPOINT and the credentials',
        );
      }
      return { unreachable: new BlobStoreUnavailableError('start-up check', err).message };
    }
  }

  async write(hash: string, bytes: Buffer, type: string): Promise<void> {
    await this.call('upload', () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: this.key(hash),
          Body: bytes,
          ContentType: type,
          ContentLength: bytes.length,
          CacheControl: 'private, max-age=3600, immutable',
        }),
      ),
    );
  }

  async read(hash: string): Promise<Buffer | null> {
    const opened = await this.open(hash);
    if (!opened) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of opened.body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async open(hash: string): Promise<{ body: Readable; size: number } | null> {
    const reply = await this.call('download', () =>
      this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.key(hash) })),
    );
    if (!reply?.Body) return null;
    return { body: reply.Body as Readable, size: reply.ContentLength ?? 0 };
  }

  async writtenAt(hash: string): Promise<number | null> {
    const reply = await this.call('head', () =>
      this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: this.key(hash) })),
    );
    return reply ? (reply.LastModified?.getTime() ?? Date.now()) : null;
  }

  async delete(hash: string): Promise<void> {
    await this.call('delete', () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.key(hash) })),
    );
  }

  presign(ref: BlobRef, expiresInSeconds: number): Promise<string> {
    const command = new GetObjectCommand({
      Bucket: this.options.bucket,
      Key: this.key(ref.hash),
      ResponseContentType: ref.type,
    });
    return getSignedUrl(this.client, command, { expiresIn: expiresInSeconds });
  }

  async probe(): Promise<void> {
    await this.call('probe', () => this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket })));
  }

  locate(hash: string): string {
    return `s3://${this.options.bucket}/${this.key(hash)}`;
  }

  close(): void {
    this.client.destroy();
  }

  private key(hash: string): string {
    return `${this.objectPrefix}${hash.slice(0, 2)}/${hash}`;
  }

  /** A missing object is null; every other failure is BlobStoreUnavailableError (the caller retries). */
  private async call<T>(operation: string, send: () => Promise<T>): Promise<T | null> {
    try {
      return await send();
    } catch (err) {
      if (err instanceof S3ServiceException && (err.name === 'NoSuchKey' || err.name === 'NotFound')) return null;
      throw new BlobStoreUnavailableError(operation, err);
    }
  }
}
