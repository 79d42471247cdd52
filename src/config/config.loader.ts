import { hostname } from 'node:os';
import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import { ENV_VARIABLES, EnvDto, ROLES, type Role } from './app-config.dto';
import type {
  AppConfig,
  BlobConfig,
  HttpAccessConfig,
  ObservabilityConfig,
  RedisClusterConfig,
  RedisSentinelConfig,
} from './app-config';
import { ALL_INTERFACES, listenRefusal, LOOPBACK_HOST } from './listen-address';

/** Variables whose values must never be echoed back, even in a validation error. */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set([
  'TELEGRAM_BOT_TOKEN',
  'TELEGRAM_WEBHOOK_SECRET',
  'API_KEYS',
  'API_PRIORITY_KEYS',
  'REDIS_URL',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'SENTRY_DSN',
  'OTEL_EXPORTER_OTLP_HEADERS',
]);

export class ConfigError extends Error {
  constructor(readonly problems: readonly { variable: string; rule: string }[]) {
    super(
      `Invalid configuration:\n${problems.map((p) => `  - ${p.variable}: ${p.rule}`).join('\n')}\n` +
        'Fix the environment (see .env.example) and start again.',
    );
    this.name = 'ConfigError';
  }
}

/** Reads and validates the environment once; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const raw: Record<string, string> = {};
  for (const key of ENV_VARIABLES) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') raw[key] = value;
  }
  const dto = plainToInstance(EnvDto, raw);
  const errors = validateSync(dto, { whitelist: true, forbidUnknownValues: true });
  if (errors.length > 0) throw new ConfigError(errors.map(describe));
  const conflicts = crossFieldProblems(dto);
  if (conflicts.length > 0) throw new ConfigError(conflicts);
  return toAppConfig(dto);
}

/** Rules between variables, each reported on the variable an operator should change. */
function crossFieldProblems(dto: EnvDto): { variable: string; rule: string }[] {
  const problems: { variable: string; rule: string }[] = [];
  if (dto.BLOB_DIR !== undefined && dto.BLOB_S3_BUCKET !== undefined) {
    problems.push({ variable: 'BLOB_S3_BUCKET', rule: 'set either BLOB_DIR or BLOB_S3_BUCKET, not both' });
  }
  for (const name of ['BLOB_S3_ENDPOINT', 'BLOB_S3_PRESIGN'] as const) {
    const set = name === 'BLOB_S3_PRESIGN' ? isTrue(dto.BLOB_S3_PRESIGN) : dto[name] !== undefined;
    if (set && dto.BLOB_S3_BUCKET === undefined) problems.push({ variable: name, rule: 'needs BLOB_S3_BUCKET' });
  }
  if ((dto.AWS_ACCESS_KEY_ID === undefined) !== (dto.AWS_SECRET_ACCESS_KEY === undefined)) {
    const missing = dto.AWS_ACCESS_KEY_ID === undefined ? 'AWS_ACCESS_KEY_ID' : 'AWS_SECRET_ACCESS_KEY';
    problems.push({ variable: missing, rule: 'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together' });
  }
  problems.push(...accessProblems(dto), ...sentinelProblems(dto), ...clusterProblems(dto));
  // Redis hashes only the first {…} of a key: a tag in STREAM_PREFIX would put every shard in one slot.
  if (dto.STREAM_SHARDS > 1 && /[{}]/.test(dto.STREAM_PREFIX)) {
    problems.push({
      variable: 'STREAM_PREFIX',
      rule: `must have no hash tag with STREAM_SHARDS > 1: each shard gets its own ({0}, {1}, …)`,
    });
  }
  return problems;
}

/** REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together; every sentinel's port is a port. */
function sentinelProblems(dto: EnvDto): { variable: string; rule: string }[] {
  if ((dto.REDIS_SENTINELS === undefined) !== (dto.REDIS_SENTINEL_MASTER === undefined)) {
    const missing = dto.REDIS_SENTINELS === undefined ? 'REDIS_SENTINELS' : 'REDIS_SENTINEL_MASTER';
    return [{ variable: missing, rule: 'REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together' }];
  }
  const bad = hostPorts(dto.REDIS_SENTINELS).filter((a) => a.port < 1 || a.port > 65535);
  return bad.length > 0
    ? [{ variable: 'REDIS_SENTINELS', rule: `ports must be 1-65535 (got ${bad.map((a) => a.port).join(', ')})` }]
    : [];
}

/**
 * REDIS_CLUSTER_NODES is one way to find Redis, Sentinel another: both set is a mistake to name, not to guess at. On a
 * cluster every script's keys must share a slot (a hash tag in STREAM_PREFIX); a cluster has only database 0; and
 * WAIT counts the replicas of the one node that took the write, which a cluster client does not pin (refused
 * rather than half-done).
 */
function clusterProblems(dto: EnvDto): { variable: string; rule: string }[] {
  if (dto.REDIS_CLUSTER_NODES === undefined) return [];
  const problems: { variable: string; rule: string }[] = [];
  const sentinel = ['REDIS_SENTINELS', 'REDIS_SENTINEL_MASTER'].filter((v) => dto[v as keyof EnvDto] !== undefined);
  if (sentinel.length > 0) {
    problems.push({
      variable: 'REDIS_CLUSTER_NODES',
      rule: `set either REDIS_CLUSTER_NODES or ${sentinel.join(' + ')}, not both (a cluster fails over by itself)`,
    });
  }
  const bad = hostPorts(dto.REDIS_CLUSTER_NODES).filter((a) => a.port < 1 || a.port > 65535);
  if (bad.length > 0) {
    problems.push({
      variable: 'REDIS_CLUSTER_NODES',
      rule: `ports must be 1-65535 (got ${bad.map((a) => a.port).join(', ')})`,
    });
  }
  if (dto.STREAM_SHARDS === 1 && !/\{[^{}]+\}/.test(dto.STREAM_PREFIX)) {
    problems.push({
      variable: 'STREAM_PREFIX',
      rule:
        'needs a hash tag with REDIS_CLUSTER_NODES, e.g. {cr}: (or set STREAM_SHARDS > 1, which tags each shard) ' +
        `(got ${JSON.stringify(dto.STREAM_PREFIX)})`,
    });
  }
  if (databaseOf(dto.REDIS_URL) !== 0) {
    problems.push({ variable: 'REDIS_URL', rule: 'a Redis Cluster has only database 0; leave the path empty' });
  }
  return problems;
}

function databaseOf(url: string): number {
  try {
    return Number(new URL(url).pathname.replace(/^\//, '') || 0);
  } catch {
    return 0;
  }
}

function clusterConfig(dto: EnvDto): RedisClusterConfig | null {
  return dto.REDIS_CLUSTER_NODES === undefined ? null : { nodes: hostPorts(dto.REDIS_CLUSTER_NODES) };
}

function hostPorts(value: string | undefined): { host: string; port: number }[] {
  return list(value).map((pair) => {
    const colon = pair.lastIndexOf(':');
    // ioredis wants an IPv6 address without its brackets.
    return { host: pair.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(pair.slice(colon + 1)) };
  });
}

function sentinelConfig(dto: EnvDto): RedisSentinelConfig | null {
  if (dto.REDIS_SENTINELS === undefined || dto.REDIS_SENTINEL_MASTER === undefined) return null;
  return { sentinels: hostPorts(dto.REDIS_SENTINELS), masterName: dto.REDIS_SENTINEL_MASTER };
}

/** API keys, tiers and the listen address (README: security). Key values are never shown, only counts. */
function accessProblems(dto: EnvDto): { variable: string; rule: string }[] {
  const problems: { variable: string; rule: string }[] = [];
  const keys = new Set(list(dto.API_KEYS));
  const outside = list(dto.API_PRIORITY_KEYS).filter((k) => !keys.has(k)).length;
  if (outside > 0) {
    problems.push({
      variable: 'API_PRIORITY_KEYS',
      rule: `must be a subset of API_KEYS (${outside} of its keys ${outside === 1 ? 'is' : 'are'} not in API_KEYS)`,
    });
  }
  if (dto.API_KEY_MAX_ACTIVE !== undefined && keys.size === 0) {
    problems.push({ variable: 'API_KEY_MAX_ACTIVE', rule: 'needs API_KEYS (the cap is per key)' });
  }
  if (dto.API_AUTH === 'none' && keys.size > 0) {
    problems.push({ variable: 'API_AUTH', rule: 'none contradicts API_KEYS: unset one of them' });
  }
  const refusal = dto.HOST === undefined ? null : listenRefusal(dto.HOST, keys.size > 0, authOf(dto));
  if (refusal) problems.push({ variable: 'HOST', rule: refusal });
  return problems;
}

function authOf(dto: EnvDto): 'keys' | 'none' {
  return dto.API_AUTH === 'none' ? 'none' : 'keys';
}

/** Without keys (and without API_AUTH=none) only this machine may reach the server: 127.0.0.1 by default. */
function httpAccess(dto: EnvDto): HttpAccessConfig {
  const auth = authOf(dto);
  const open = list(dto.API_KEYS).length > 0 || auth === 'none';
  return {
    host: dto.HOST ?? (open ? ALL_INTERFACES : LOOPBACK_HOST),
    auth,
    loopbackForLackOfKeys: dto.HOST === undefined && !open,
  };
}

function isTrue(value: string): boolean {
  return value === 'true' || value === '1';
}

function blobConfig(dto: EnvDto): BlobConfig {
  const common = { ttlSeconds: dto.BLOB_TTL_SECONDS, redisMaxBytes: dto.BLOB_REDIS_MAX_BYTES };
  if (dto.BLOB_S3_BUCKET !== undefined) {
    const credentials =
      dto.AWS_ACCESS_KEY_ID !== undefined && dto.AWS_SECRET_ACCESS_KEY !== undefined
        ? {
            accessKeyId: dto.AWS_ACCESS_KEY_ID,
            secretAccessKey: dto.AWS_SECRET_ACCESS_KEY,
            ...(dto.AWS_SESSION_TOKEN !== undefined ? { sessionToken: dto.AWS_SESSION_TOKEN } : {}),
          }
        : undefined;
    return {
      backend: 's3',
      ...common,
      s3: {
        bucket: dto.BLOB_S3_BUCKET,
        endpoint: dto.BLOB_S3_ENDPOINT?.replace(/\/+$/, ''),
        region: dto.BLOB_S3_REGION,
        forcePathStyle: isTrue(dto.BLOB_S3_FORCE_PATH_STYLE),
        presign: isTrue(dto.BLOB_S3_PRESIGN),
        keyPrefix: dto.BLOB_S3_KEY_PREFIX,
        timeoutMs: dto.BLOB_S3_TIMEOUT_MS,
        ...(credentials ? { credentials } : {}),
      },
    };
  }
  if (dto.BLOB_DIR !== undefined) return { backend: 'fs', ...common, dir: dto.BLOB_DIR };
  return { backend: 'redis', ...common };
}

function describe(error: ValidationError): { variable: string; rule: string } {
  const rules = Object.values(error.constraints ?? {}).map((message) =>
    // class-validator puts the property name first; keep the rule, and never the (maybe secret) value.
    message.startsWith(`${error.property} `) ? message.slice(error.property.length + 1) : message,
  );
  const shown = SECRET_VARIABLES.has(error.property) ? '' : ` (got ${JSON.stringify(String(error.value))})`;
  return { variable: error.property, rule: `${rules.join('; ')}${shown}` };
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function toAppConfig(dto: EnvDto): AppConfig {
  const comfyuiUrls = list(dto.COMFYUI_URLS).map((u) => u.replace(/\/+$/, ''));
  const instances = comfyuiUrls.length > 0 ? comfyuiUrls.length : dto.COMFYUI_SIM_INSTANCES;
  const roles: ReadonlySet<Role> =
    dto.ROLE === 'all' ? new Set(ROLES) : new Set(list(dto.ROLE).filter((r): r is Role => isRole(r)));
  return Object.freeze({
    redisUrl: dto.REDIS_URL,
    redisSentinel: sentinelConfig(dto),
    redisCluster: clusterConfig(dto),
    replicaAck: { replicas: dto.REDIS_MIN_REPLICAS_ACK, timeoutMs: dto.REDIS_REPLICA_ACK_TIMEOUT_MS },
    streamPrefix: dto.STREAM_PREFIX,
    streamShards: dto.STREAM_SHARDS,
    roles,
    port: dto.PORT,
    http: httpAccess(dto),
    comfyuiUrls,
    simulator: { instances: dto.COMFYUI_SIM_INSTANCES, stepMs: dto.COMFYUI_SIM_STEP_MS },
    workflowsDir: dto.WORKFLOWS_DIR,
    telegram: {
      botToken: dto.TELEGRAM_BOT_TOKEN,
      apiRoot: dto.TELEGRAM_API_ROOT,
      webhookUrl: dto.TELEGRAM_WEBHOOK_URL,
      webhookSecret: dto.TELEGRAM_WEBHOOK_SECRET,
      adminIds: list(dto.TELEGRAM_ADMIN_IDS).map(Number),
      maxSendsPerSecond: dto.TELEGRAM_MAX_SENDS_PER_SECOND,
      priorityUserIds: list(dto.TELEGRAM_PRIORITY_USER_IDS).map(Number),
    },
    apiKeys: list(dto.API_KEYS),
    apiPriorityKeys: list(dto.API_PRIORITY_KEYS),
    apiKeyMaxActive: dto.API_KEY_MAX_ACTIVE ?? null,
    userMaxActive: dto.USER_MAX_ACTIVE,
    queueDispatchAhead: dto.QUEUE_DISPATCH_AHEAD,
    maxPromptLength: dto.MAX_PROMPT_LENGTH,
    maxImageBytes: dto.MAX_IMAGE_BYTES,
    jobTimeoutMs: dto.JOB_TIMEOUT_MS,
    noProgressTimeoutMs: dto.NO_PROGRESS_TIMEOUT_MS,
    claimIdleMs: dto.CLAIM_IDLE_MS,
    maxDeliveries: dto.MAX_DELIVERIES,
    gpuConcurrency: dto.GPU_CONCURRENCY ?? 2 * instances,
    gpuModelAffinity: dto.GPU_MODEL_AFFINITY === 'on',
    projectorConcurrency: dto.PROJECTOR_CONCURRENCY,
    retentionMs: dto.STREAM_RETENTION_MS,
    progressMaxLen: dto.PROGRESS_MAXLEN,
    health: { maxLag: dto.HEALTH_MAX_LAG, maxPending: dto.HEALTH_MAX_PENDING },
    shutdownGraceMs: dto.SHUTDOWN_GRACE_MS,
    blobs: blobConfig(dto),
    redisMemoryHighWatermark: dto.REDIS_MEMORY_HIGH_WATERMARK,
    instanceName: dto.INSTANCE_NAME ?? sanitizeHost(hostname()),
    logLevel: dto.LOG_LEVEL,
    logFormat: dto.LOG_FORMAT === 'pretty' ? 'pretty' : 'json',
    observability: observabilityConfig(dto, roles),
  });
}

function observabilityConfig(dto: EnvDto, roles: ReadonlySet<Role>): ObservabilityConfig {
  const sentry = dto.SENTRY_DSN
    ? {
        dsn: dto.SENTRY_DSN,
        ...(dto.SENTRY_ENVIRONMENT !== undefined ? { environment: dto.SENTRY_ENVIRONMENT } : {}),
        sampleRate: dto.SENTRY_SAMPLE_RATE,
        tracesSampleRate: dto.SENTRY_TRACES_SAMPLE_RATE,
      }
    : undefined;
  const roleName = roles.size === ROLES.length ? 'all' : ROLES.filter((r) => roles.has(r)).join('+');
  const otel = dto.OTEL_EXPORTER_OTLP_ENDPOINT
    ? {
        endpoint: dto.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, ''),
        protocol: dto.OTEL_EXPORTER_OTLP_PROTOCOL === 'http/json' ? ('http/json' as const) : ('http/protobuf' as const),
        serviceName: dto.OTEL_SERVICE_NAME ?? `comfy-relay-${roleName}`,
        headerValues: list(dto.OTEL_EXPORTER_OTLP_HEADERS)
          .map((pair) => pair.slice(pair.indexOf('=') + 1).trim())
          .flatMap((v) => [v, safeDecode(v)]),
      }
    : undefined;
  return { role: roleName, ...(sentry ? { sentry } : {}), ...(otel ? { otel } : {}) };
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

function sanitizeHost(host: string): string {
  return host.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 64) || 'host';
}
