/**
 * What REDIS_MIN_REPLICAS_ACK=1 adds to a submit (docs/operations.md#redis_min_replicas_ack): a private primary and one
 * replica on free ports of 127.0.0.1, the api role in this process, and the same submits timed with 0 and with 1,
 * alternating rounds, one client and then eight at once. Run: npx ts-node --transpile-only scripts/measure-replica-ack.ts
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp } from '../src/bootstrap';
import { loadConfig } from '../src/config/config.loader';
import { freePort } from '../test/support/free-port';
import { askRedis } from '../test/support/redis-probe';

const ROUNDS = 4;
const PER_ROUND = 200;
const JOB = JSON.stringify({ workflow: 'txt2img', inputs: { prompt: 'timing', width: 64, height: 64, steps: 2 } });

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cr-ack-'));
  const children: ChildProcess[] = [];
  try {
    const primary = await freePort();
    const replica = await freePort();
    children.push(server(primary, dir, 'p'), server(replica, dir, 'r', ['--replicaof', '127.0.0.1', String(primary)]));
    await until(async () =>
      /slave0:.*state=online/.test(String(await askRedis(primary, ['INFO', 'replication']).catch(() => ''))),
    );
    const samples: Record<string, number[]> = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const acks of ['0', '1']) {
        for (const clients of [1, 8]) {
          const key = `REDIS_MIN_REPLICAS_ACK=${acks}, ${clients} client(s)`;
          (samples[key] ??= []).push(...(await timeSubmits(primary, acks, clients)));
        }
      }
    }
    for (const [key, ms] of Object.entries(samples)) {
      ms.sort((a, b) => a - b);
      const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!.toFixed(2);
      console.log(`${key}: n=${ms.length} p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, p99 ${at(0.99)} ms`);
    }
  } finally {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One app (api role) with this setting; PER_ROUND submits from `clients` concurrent clients; ms per submit. */
async function timeSubmits(port: number, acks: string, clients: number): Promise<number[]> {
  const config = loadConfig({
    ROLE: 'api',
    REDIS_URL: `redis://127.0.0.1:${port}`,
    REDIS_MIN_REPLICAS_ACK: acks,
    STREAM_PREFIX: `measure:${acks}:${clients}:${Date.now()}:`,
    PORT: '0',
    LOG_LEVEL: 'silent',
    USER_MAX_ACTIVE: '1000',
  });
  const app = await startApp(config, { host: '127.0.0.1' });
  const times: number[] = [];
  try {
    const submit = async () => {
      const started = performance.now();
      const res = await fetch(`${app.url}/v1/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JOB,
      });
      await res.text();
      if (res.status !== 202) throw new Error(`submit answered ${res.status}`);
      return performance.now() - started;
    };
    for (let i = 0; i < 20; i++) await submit(); // warm-up
    await Promise.all(
      Array.from({ length: clients }, async () => {
        for (let i = 0; i < PER_ROUND / clients; i++) times.push(await submit());
      }),
    );
  } finally {
    await app.close();
  }
  return times;
}

function server(port: number, dir: string, name: string, extra: string[] = []): ChildProcess {
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--dir',
    dir,
    '--dbfilename',
    `${name}.rdb`,
  ];
  return spawn('redis-server', args.concat(extra), { stdio: 'ignore' });
}

async function until(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('the replica did not come online');
    await new Promise((r) => setTimeout(r, 50));
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
