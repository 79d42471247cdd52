import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { freePort } from './free-port';

export const S3_TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/**
 * A real S3-protocol server (s3rver: the S3 REST API over a folder) on 127.0.0.1:<free port>, with one bucket.
 * `stop()` + `start()` on the same port make an outage the service must ride out.
 */
export class TestS3Server {
  readonly dir = mkdtempSync(join(tmpdir(), 'cr-s3-'));
  port = 0;
  private server?: S3rver;
  private readonly client: () => S3Client;

  constructor(readonly bucket = 'comfy-relay-test') {
    let client: S3Client | undefined;
    this.client = () =>
      (client ??= new S3Client({
        endpoint: this.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: S3_TEST_CREDENTIALS,
        maxAttempts: 1,
      }));
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The service's environment for this server. */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      BLOB_S3_BUCKET: this.bucket,
      BLOB_S3_ENDPOINT: this.endpoint,
      BLOB_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: S3_TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3_TEST_CREDENTIALS.secretAccessKey,
      ...extra,
    };
  }

  async start(): Promise<this> {
    if (this.port === 0) this.port = await freePort();
    this.server = new S3rver({
      port: this.port,
      address: '127.0.0.1',
      directory: this.dir,
      silent: true,
      configureBuckets: [{ name: this.bucket, configs: [] }],
    });
    await this.server.run();
    return this;
  }

  /** Takes the server down (the folder stays): requests are refused until start(). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.close();
  }

  async destroy(): Promise<void> {
    await this.stop();
    this.client().destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async keys(prefix = ''): Promise<string[]> {
    const out = await this.client().send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix }));
    return (out.Contents ?? []).map((o) => o.Key!).sort();
  }

  async has(key: string): Promise<boolean> {
    try {
      await this.client().send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch {
      return false;
    }
  }
}
