import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ConfigError, loadConfig, SECRET_VARIABLES } from '../../src/config/config.loader';
import { TEST_REDIS_URL, uniquePrefix } from '../support/test-redis';
import { ENV_VARIABLES } from '../../src/config/app-config.dto';

const SECRETS = SECRET_VARIABLES;

/** Every variable the service reads, with values it must refuse (free-form paths are checked at start-up). */
const INVALID: Record<(typeof ENV_VARIABLES)[number], readonly string[]> = {
  REDIS_URL: ['http://user:s3cret-pass@127.0.0.1:6379', 'redis://', '127.0.0.1:6379'],
  // With REDIS_SENTINEL_MASTER (see COMPANIONS); a port out of range is refused like a malformed list.
  REDIS_SENTINELS: ['sentinel-1', 'a:1,,b:2', 'redis://a:26379', 'a:26379;b:26379', 'a:70000', 'a:0'],
  REDIS_SENTINEL_MASTER: ['has space', 'x'.repeat(65), 'master/1'],
  // With a tagged STREAM_PREFIX (see COMPANIONS); a port out of range is refused like a malformed list.
  REDIS_CLUSTER_NODES: ['redis-1', 'a:1,,b:2', 'redis://a:6379', 'a:70000'],
  REDIS_MIN_REPLICAS_ACK: ['-1', '17', 'one', '1.5'],
  REDIS_REPLICA_ACK_TIMEOUT_MS: ['9', '60001', '1s'],
  STREAM_PREFIX: ['has space', 'x'.repeat(65), 'emoji🔥:'],
  STREAM_SHARDS: ['0', '65', 'six', '1.5'],
  ROLE: ['web', 'api,,gpu', 'all,api', 'API'],
  PORT: ['abc', '70000', '-1', '80.5'],
  COMFYUI_URLS: ['ftp://gpu:8188', 'http://a:1,,http://b:2', 'localhost:8188'],
  COMFYUI_SIM_INSTANCES: ['0', '17', 'two'],
  COMFYUI_SIM_STEP_MS: ['-5', '60001', '1e3'],
  WORKFLOWS_DIR: [],
  TELEGRAM_BOT_TOKEN: ['not-a-token', '123456:short', ':AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw'],
  TELEGRAM_API_ROOT: ['api.telegram.org', 'ftp://api.telegram.org', 'javascript:alert(1)'],
  TELEGRAM_WEBHOOK_URL: ['bot.example.org/hook', 'file:///etc/passwd'],
  TELEGRAM_WEBHOOK_SECRET: ['short', 'has spaces in it 0123456789', 's'.repeat(257)],
  TELEGRAM_ADMIN_IDS: ['alice', '1;2', '1,,2'],
  TELEGRAM_MAX_SENDS_PER_SECOND: ['0', '31', 'fast'],
  TELEGRAM_PRIORITY_USER_IDS: ['alice', '1;2', '1,,2'],
  // A non-loopback address without API_KEYS (and without API_AUTH=none) is refused too.
  HOST: ['has space', 'http://0.0.0.0', '0.0.0.0', '192.0.2.10', '::'],
  API_AUTH: ['off', 'NONE', 'bearer'],
  API_KEYS: ['short', 'a-good-long-key-0123456789,tiny', 'key with spaces inside 0123'],
  // Not a subset of API_KEYS (a-good-long-key-0123456789, see COMPANIONS) is refused like a malformed list.
  API_PRIORITY_KEYS: ['short', 'not-one-of-the-api-keys-0123', 'a-good-long-key-0123456789,other-long-key-0123456'],
  API_KEY_MAX_ACTIVE: ['0', 'many', '1.5'],
  USER_MAX_ACTIVE: ['0', '1001', 'many'],
  QUEUE_DISPATCH_AHEAD: ['0', '1001', 'two'],
  MAX_PROMPT_LENGTH: ['0', '100001', '1.5'],
  MAX_IMAGE_BYTES: ['1023', String(50 * 1024 * 1024 + 1), '10MB'],
  JOB_TIMEOUT_MS: ['999', '10m', '-1'],
  NO_PROGRESS_TIMEOUT_MS: ['499', 'soon'],
  CLAIM_IDLE_MS: ['99', '5', '30s'],
  MAX_DELIVERIES: ['0', '101', '1.5'],
  GPU_CONCURRENCY: ['0', '257', 'auto'],
  GPU_MODEL_AFFINITY: ['yes', 'ON', '1'],
  PROJECTOR_CONCURRENCY: ['0', '1025', 'x'],
  STREAM_RETENTION_MS: ['59999', '7d'],
  PROGRESS_MAXLEN: ['99', 'lots'],
  HEALTH_MAX_LAG: ['-1', 'none'],
  HEALTH_MAX_PENDING: ['-1', 'none'],
  SHUTDOWN_GRACE_MS: ['-1', 'forever'],
  BLOB_DIR: [],
  BLOB_TTL_SECONDS: ['59', '1h'],
  BLOB_REDIS_MAX_BYTES: ['-1', '1GB', '0.5'],
  BLOB_S3_BUCKET: ['UPPER', 'ab', 'has space', 'under_score'],
  BLOB_S3_ENDPOINT: ['minio:9000', 'ftp://minio:9000'],
  BLOB_S3_REGION: ['US East', 'x'],
  BLOB_S3_FORCE_PATH_STYLE: ['yes', 'TRUE'],
  BLOB_S3_PRESIGN: ['yes', 'on'],
  BLOB_S3_KEY_PREFIX: ['no-slash', '/abs/', 'a b/'],
  BLOB_S3_TIMEOUT_MS: ['99', '300001', '10s'],
  AWS_ACCESS_KEY_ID: [],
  AWS_SECRET_ACCESS_KEY: [],
  AWS_SESSION_TOKEN: [],
  REDIS_MEMORY_HIGH_WATERMARK: ['0', '1.5', '90%', 'high'],
  INSTANCE_NAME: ['has space', 'slash/name', 'x'.repeat(65)],
  LOG_LEVEL: ['loud', 'INFO', 'verbose'],
  LOG_FORMAT: ['xml', 'JSON'],
  SENTRY_DSN: ['sentry.example.org/1', 'https://sentry.example.org/1', 'https://publickey0123@sentry.example.org/'],
  SENTRY_ENVIRONMENT: ['has space', 'x'.repeat(65)],
  SENTRY_SAMPLE_RATE: ['1.5', '-0.1', 'all'],
  SENTRY_TRACES_SAMPLE_RATE: ['2', 'some'],
  OTEL_EXPORTER_OTLP_ENDPOINT: ['collector:4318', 'grpc://collector:4317'],
  OTEL_EXPORTER_OTLP_PROTOCOL: ['grpc', 'json', 'http/JSON'],
  OTEL_EXPORTER_OTLP_HEADERS: ['no-equals-sign-0123456789', 'authorization', '=value-without-key-0123'],
  OTEL_SERVICE_NAME: ['has space', 'x'.repeat(129)],
  OTEL_TRACES_SAMPLER: ['sometimes', 'ALWAYS_ON'],
  OTEL_TRACES_SAMPLER_ARG: ['1.5', 'half', '-1'],
  OTEL_RESOURCE_ATTRIBUTES: ['deployment.environment', 'a=1,b'],
};

/** Valid neighbours a variable needs so that only its own value is wrong. */
const COMPANIONS: Record<string, Record<string, string>> = {
  TELEGRAM_WEBHOOK_SECRET: { TELEGRAM_WEBHOOK_URL: 'https://bot.example.org/hook' },
  TELEGRAM_WEBHOOK_URL: { TELEGRAM_WEBHOOK_SECRET: 'a-valid-webhook-secret-0123' },
  BLOB_S3_ENDPOINT: { BLOB_S3_BUCKET: 'results' },
  API_PRIORITY_KEYS: { API_KEYS: 'a-good-long-key-0123456789' },
  API_KEY_MAX_ACTIVE: { API_KEYS: 'a-good-long-key-0123456789' },
  REDIS_SENTINELS: { REDIS_SENTINEL_MASTER: 'comfy-relay' },
  REDIS_SENTINEL_MASTER: { REDIS_SENTINELS: '127.0.0.1:26379' },
  REDIS_CLUSTER_NODES: { STREAM_PREFIX: '{cr}:' },
};

/**
 * Every configuration variable, each given values it must refuse: start-up stops with a ConfigError that names
 * the variable (and never shows a secret's value), whatever else is set. The table must cover ENV_VARIABLES, so a
 * new variable cannot arrive without its bad values.
 */
describe('configuration: every variable, invalid', () => {
  it('treats every credential-shaped variable as a secret (never echoed)', () => {
    const shaped = ENV_VARIABLES.filter((v) => /TOKEN|SECRET|API_KEYS|ACCESS_KEY|REDIS_URL/.test(v));
    expect(shaped.filter((v) => !SECRETS.has(v))).toEqual([]);
    expect(shaped).toEqual(
      expect.arrayContaining(['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'TELEGRAM_BOT_TOKEN']),
    );
  });

  it('covers every variable the service reads', () => {
    expect(Object.keys(INVALID).sort()).toEqual([...ENV_VARIABLES].sort());
  });

  const cases = Object.entries(INVALID).flatMap(([variable, values]) => values.map((value) => [variable, value]));

  it.each(cases)('%s=%j → ConfigError naming it', (variable, value) => {
    let error: unknown;
    try {
      loadConfig({ ...COMPANIONS[variable], [variable]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const config = error as ConfigError;
    expect(config.problems.map((p) => p.variable)).toEqual([variable]);
    expect(config.message).toContain(`${variable}: `);
    if (SECRETS.has(variable)) {
      expect(config.message).not.toMatch(/\(got /);
      if (value.length >= 12) expect(config.message).not.toContain(value);
      for (const part of value.split(/[:@/,]/).filter((p) => p.length >= 6)) expect(config.message).not.toContain(part);
    }
  });

  it('a webhook URL without a secret names TELEGRAM_WEBHOOK_SECRET', () => {
    expect(() => loadConfig({ TELEGRAM_WEBHOOK_URL: 'https://bot.example.org/hook' })).toThrow(
      /TELEGRAM_WEBHOOK_SECRET/,
    );
  });

  it.each([
    [{ BLOB_DIR: '/tmp/blobs', BLOB_S3_BUCKET: 'results' }, 'BLOB_S3_BUCKET', /not both/],
    [{ BLOB_S3_PRESIGN: 'true' }, 'BLOB_S3_PRESIGN', /needs BLOB_S3_BUCKET/],
    [{ BLOB_S3_ENDPOINT: 'http://127.0.0.1:9000' }, 'BLOB_S3_ENDPOINT', /needs BLOB_S3_BUCKET/],
    [{ BLOB_S3_BUCKET: 'results', AWS_ACCESS_KEY_ID: 'AKIAEXAMPLEKEY0001' }, 'AWS_SECRET_ACCESS_KEY', /go together/],
  ])('object-store rules between variables: %j names %s', (env, variable, rule) => {
    try {
      loadConfig(env);
      throw new Error('expected ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems;
      expect(problems.map((p) => p.variable)).toEqual([variable]);
      expect(problems[0]!.rule).toMatch(rule);
      expect((err as ConfigError).message).not.toContain('AKIAEXAMPLEKEY0001');
    }
  });

  it('every bad variable is named at once, secrets still hidden', () => {
    const env = Object.fromEntries(Object.entries(INVALID).flatMap(([k, v]) => (v.length > 0 ? [[k, v[0]!]] : [])));
    try {
      loadConfig(env);
      throw new Error('expected ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const named = (err as ConfigError).problems.map((p) => p.variable);
      expect(new Set(named)).toEqual(new Set(Object.keys(env)));
      expect((err as ConfigError).message).not.toContain('s3cret-pass');
    }
  });
});

/** Starts `src/main.ts` and reports how it ended: exited (code, output) or started serving (then killed). */
function startProcess(env: Record<string, string>): Promise<{ started: boolean; code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', join(__dirname, '../../src/main.ts')],
      {
        env: {
          ...process.env,
          REDIS_URL: TEST_REDIS_URL,
          STREAM_PREFIX: uniquePrefix('cfg'),
          PORT: '0',
          ROLE: 'api',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.includes('comfy-relay started')) child.kill('SIGKILL');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ started: output.includes('comfy-relay started'), code, output });
    });
  });
}

describe('configuration: paths that are only wrong on disk', () => {
  it('WORKFLOWS_DIR that does not exist stops start-up naming the directory', async () => {
    const result = await startProcess({ WORKFLOWS_DIR: '/nonexistent/comfy-relay-workflows' });
    expect(result.started).toBe(false);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('/nonexistent/comfy-relay-workflows');
  });

  // Was a bug (fixed): the blob store only touches BLOB_DIR on first use, so a BLOB_DIR that is a file (or not
  // writable) starts fine and the first image submit answers 500. STYLE: fail at start-up, not at first use.
  it('BLOB_DIR that is a file stops start-up naming it', async () => {
    const result = await startProcess({ BLOB_DIR: '/etc/passwd' });
    expect(result.started).toBe(false);
    expect(result.output).toMatch(/BLOB_DIR/);
  });
});
