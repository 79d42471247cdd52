import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsNumber, IsOptional, IsString, IsUrl, Matches, Max, Min, ValidateIf } from 'class-validator';

export const ROLES = ['api', 'gpu', 'bot', 'projector'] as const;
export type Role = (typeof ROLES)[number];

/** Every variable the service reads; .env.example and the compose check list the same names. */
export const ENV_VARIABLES = [
  'REDIS_URL',
  'REDIS_SENTINELS',
  'REDIS_SENTINEL_MASTER',
  'REDIS_CLUSTER_NODES',
  'REDIS_MIN_REPLICAS_ACK',
  'REDIS_REPLICA_ACK_TIMEOUT_MS',
  'STREAM_PREFIX',
  'STREAM_SHARDS',
  'ROLE',
  'PORT',
  'COMFYUI_URLS',
  'COMFYUI_SIM_INSTANCES',
  'COMFYUI_SIM_STEP_MS',
  'WORKFLOWS_DIR',
  'TELEGRAM_BOT_TOKEN',
  'TELEGRAM_API_ROOT',
  'TELEGRAM_WEBHOOK_URL',
  'TELEGRAM_WEBHOOK_SECRET',
  'TELEGRAM_ADMIN_IDS',
  'TELEGRAM_MAX_SENDS_PER_SECOND',
  'TELEGRAM_PRIORITY_USER_IDS',
  'HOST',
  'API_AUTH',
  'API_KEYS',
  'API_PRIORITY_KEYS',
  'API_KEY_MAX_ACTIVE',
  'USER_MAX_ACTIVE',
  'QUEUE_DISPATCH_AHEAD',
  'MAX_PROMPT_LENGTH',
  'MAX_IMAGE_BYTES',
  'JOB_TIMEOUT_MS',
  'NO_PROGRESS_TIMEOUT_MS',
  'CLAIM_IDLE_MS',
  'MAX_DELIVERIES',
  'GPU_CONCURRENCY',
  'GPU_MODEL_AFFINITY',
  'PROJECTOR_CONCURRENCY',
  'STREAM_RETENTION_MS',
  'PROGRESS_MAXLEN',
  'HEALTH_MAX_LAG',
  'HEALTH_MAX_PENDING',
  'SHUTDOWN_GRACE_MS',
  'BLOB_DIR',
  'BLOB_TTL_SECONDS',
  'BLOB_REDIS_MAX_BYTES',
  'BLOB_S3_BUCKET',
  'BLOB_S3_ENDPOINT',
  'BLOB_S3_REGION',
  'BLOB_S3_FORCE_PATH_STYLE',
  'BLOB_S3_PRESIGN',
  'BLOB_S3_KEY_PREFIX',
  'BLOB_S3_TIMEOUT_MS',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'REDIS_MEMORY_HIGH_WATERMARK',
  'INSTANCE_NAME',
  'LOG_LEVEL',
  'LOG_FORMAT',
  'SENTRY_DSN',
  'SENTRY_ENVIRONMENT',
  'SENTRY_SAMPLE_RATE',
  'SENTRY_TRACES_SAMPLE_RATE',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_SERVICE_NAME',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
  'OTEL_RESOURCE_ATTRIBUTES',
] as const;

const toInt = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;
const trimmed = ({ value }: { value: unknown }): unknown => (typeof value === 'string' ? value.trim() : value);
const toRatio = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^\d*\.?\d+$/.test(value.trim()) ? Number(value.trim()) : value;
/** OTEL_EXPORTER_OTLP_HEADERS / OTEL_RESOURCE_ATTRIBUTES: `key=value` pairs, comma separated (values URL-encoded). */
const KEY_VALUE_LIST = /^\s*[^\s=,]+\s*=[^,]*(,\s*[^\s=,]+\s*=[^,]*)*$/;
/** REDIS_SENTINELS, REDIS_CLUSTER_NODES: `host:port` pairs, comma separated (an IPv6 host in brackets); port ranges are checked by the loader. */
const HOST_PORT = '(\\[[0-9A-Fa-f:.]{2,45}\\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252}):\\d{1,5}';
const HOST_PORT_LIST = new RegExp(`^\\s*${HOST_PORT}(\\s*,\\s*${HOST_PORT})*\\s*$`);

/**
 * The environment, as the process reads it. Every variable the service honours is declared here and
 * nowhere else reads process.env (see config.loader.ts). Empty strings count as unset.
 */
export class EnvDto {
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^rediss?:\/\/\S+$/, { message: 'must be a redis:// or rediss:// URL' })
  REDIS_URL = 'redis://127.0.0.1:6379';

  /**
   * Sentinels to ask for the primary (and to follow through failovers), with REDIS_SENTINEL_MASTER. REDIS_URL then
   * gives only the credentials, TLS (rediss://) and database, for the data nodes and the sentinels alike; its host
   * is not used (docs/operations.md#running-with-sentinel).
   */
  @IsOptional()
  @Transform(trimmed)
  @Matches(HOST_PORT_LIST, { message: 'must be a comma list of host:port (e.g. sentinel-1:26379,10.0.0.7:26379)' })
  REDIS_SENTINELS?: string;

  /** The name the sentinels monitor the primary under (`sentinel monitor <name> …`). */
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^[A-Za-z0-9._-]{1,64}$/, { message: 'must be 1-64 characters of letters, digits and ._-' })
  REDIS_SENTINEL_MASTER?: string;

  /**
   * Nodes of a Redis Cluster to start from (any of its nodes; ioredis learns the rest from CLUSTER SLOTS). Instead of
   * REDIS_URL's host, which then gives only credentials and TLS; not with REDIS_SENTINELS. STREAM_PREFIX must then
   * carry a hash tag, so that every key a script touches sits in one slot (docs/job-state.md#redis-cluster).
   */
  @IsOptional()
  @Transform(trimmed)
  @Matches(HOST_PORT_LIST, { message: 'must be a comma list of host:port (e.g. redis-1:6379,10.0.0.8:6379)' })
  REDIS_CLUSTER_NODES?: string;

  /**
   * > 0: a write whose loss would lose a job (a submit before its 202, a worker's placement before the prompt goes
   * to ComfyUI) waits until this many replicas hold it (WAIT); 0: no WAIT at all.
   */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(16)
  REDIS_MIN_REPLICAS_ACK = 0;

  /** How long one WAIT for REDIS_MIN_REPLICAS_ACK replicas may take; a submit not confirmed by then gets 503. */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(10)
  @Max(60_000)
  REDIS_REPLICA_ACK_TIMEOUT_MS = 500;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^[A-Za-z0-9:_{}.-]{1,64}$/, { message: 'must be 1-64 characters of letters, digits and :_{}.-' })
  // A Redis Cluster hashes only what is inside the first {…}: one non-empty tag puts every key in one slot.
  @Matches(/^[^{}]*(\{[^{}]+\}[^{}]*)?$/, { message: 'may hold one hash tag, a non-empty {…} (for example {cr}:)' })
  STREAM_PREFIX = 'cr:';

  /**
   * How many shards the streams and job keys are split into, each under its own hash tag (`<STREAM_PREFIX>{i}:`), so
   * a Redis Cluster spreads them over its primaries. 1 (the default): today's key names, no tag added.
   */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(64)
  STREAM_SHARDS = 1;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^(all|(api|gpu|bot|projector)(,(api|gpu|bot|projector))*)$/, {
    message: 'must be "all" or a comma list of api, gpu, bot, projector',
  })
  ROLE = 'all';

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 3000;

  /**
   * Address the HTTP server listens on. Default: 0.0.0.0 with API_KEYS or API_AUTH=none, else 127.0.0.1 (the
   * embedded default: without keys only this machine can reach the API). A non-loopback address without API_KEYS
   * needs API_AUTH=none (checked in config.loader.ts).
   */
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^([A-Za-z0-9][A-Za-z0-9.-]{0,252}|[0-9A-Fa-f:.]{2,45})$/, {
    message: 'must be an IP address or a host name (e.g. 127.0.0.1, 0.0.0.0, ::)',
  })
  HOST?: string;

  /** keys (default): Bearer keys from API_KEYS, or loopback only without them. none: no auth at all (explicit). */
  @IsOptional()
  @Transform(trimmed)
  @IsIn(['keys', 'none'], { message: 'must be keys or none' })
  API_AUTH = 'keys';

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^https?:\/\/[^\s,]+(\s*,\s*https?:\/\/[^\s,]+)*$/, { message: 'must be a comma list of http(s) URLs' })
  COMFYUI_URLS?: string;

  @IsOptional()
  @IsString()
  WORKFLOWS_DIR = './workflows';

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^\d+:[A-Za-z0-9_-]{20,}$/, { message: 'must look like <bot id>:<secret> as issued by BotFather' })
  TELEGRAM_BOT_TOKEN?: string;

  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  TELEGRAM_API_ROOT?: string;

  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['https', 'http'], require_protocol: true })
  TELEGRAM_WEBHOOK_URL?: string;

  @ValidateIf((env: EnvDto) => env.TELEGRAM_WEBHOOK_URL !== undefined || env.TELEGRAM_WEBHOOK_SECRET !== undefined)
  @Matches(/^[A-Za-z0-9_-]{16,256}$/, {
    message: 'must be 16-256 characters of A-Z, a-z, 0-9, _ and - (required when TELEGRAM_WEBHOOK_URL is set)',
  })
  TELEGRAM_WEBHOOK_SECRET?: string;

  @IsOptional()
  @Matches(/^\s*-?\d+(\s*,\s*-?\d+)*\s*$/, { message: 'must be a comma list of numeric Telegram user ids' })
  TELEGRAM_ADMIN_IDS?: string;

  /** Messages (sends + edits) per second across all bot replicas; Telegram's broadcast limit is about 30. */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(30)
  TELEGRAM_MAX_SENDS_PER_SECOND = 25;

  /** Telegram users whose jobs go in the priority tier. */
  @IsOptional()
  @Matches(/^\s*-?\d+(\s*,\s*-?\d+)*\s*$/, { message: 'must be a comma list of numeric Telegram user ids' })
  TELEGRAM_PRIORITY_USER_IDS?: string;

  @IsOptional()
  @Matches(/^\s*[\x21-\x2b\x2d-\x7e]{16,}(\s*,\s*[\x21-\x2b\x2d-\x7e]{16,})*\s*$/, {
    message: 'must be a comma list of keys, each at least 16 printable characters',
  })
  API_KEYS?: string;

  /** The keys (a subset of API_KEYS) that may ask for `priority: true`. */
  @IsOptional()
  @Matches(/^\s*[\x21-\x2b\x2d-\x7e]{16,}(\s*,\s*[\x21-\x2b\x2d-\x7e]{16,})*\s*$/, {
    message: 'must be a comma list of keys, each at least 16 printable characters',
  })
  API_PRIORITY_KEYS?: string;

  /** Active (queued + running) jobs per API key, over all its X-User-Ids. Unset: no cap. */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  API_KEY_MAX_ACTIVE?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1000)
  USER_MAX_ACTIVE = 2;

  /** Jobs dispatched from the fair queue into the request streams ahead of the workers (docs/fair-queue.md). */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1000)
  QUEUE_DISPATCH_AHEAD = 2;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100_000)
  MAX_PROMPT_LENGTH = 2000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  @Max(50 * 1024 * 1024)
  MAX_IMAGE_BYTES = 10 * 1024 * 1024;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  JOB_TIMEOUT_MS = 600_000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(500)
  NO_PROGRESS_TIMEOUT_MS = 120_000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(100)
  CLAIM_IDLE_MS = 30_000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100)
  MAX_DELIVERIES = 5;

  /** Default: pipeline depth (2) × number of ComfyUI instances. */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(256)
  GPU_CONCURRENCY?: number;

  /**
   * on: a job goes preferably to an instance last given the same model files (a checkpoint switch costs the GPU
   * seconds), never leaving an idle instance unused while jobs wait. off: the least-loaded instance, in turn.
   */
  @IsOptional()
  @IsIn(['on', 'off'])
  GPU_MODEL_AFFINITY = 'on';

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(16)
  COMFYUI_SIM_INSTANCES = 2;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(60_000)
  COMFYUI_SIM_STEP_MS = 20;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1024)
  PROJECTOR_CONCURRENCY = 16;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(60_000)
  STREAM_RETENTION_MS = 7 * 24 * 3600 * 1000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(100)
  PROGRESS_MAXLEN = 10_000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  HEALTH_MAX_LAG = 1000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  HEALTH_MAX_PENDING = 1000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  SHUTDOWN_GRACE_MS = 25_000;

  @IsOptional()
  @IsString()
  BLOB_DIR?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(60)
  BLOB_TTL_SECONDS = 24 * 3600;

  /** Cap of image bytes the Redis backend may hold (Redis memory); 0 = no cap. Default 512 MiB. */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  BLOB_REDIS_MAX_BYTES = 512 * 1024 * 1024;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: 'must be an S3 bucket name (3-63 of a-z 0-9 . -)' })
  BLOB_S3_BUCKET?: string;

  @IsOptional()
  @Transform(trimmed)
  @IsUrl(
    { require_tld: false, require_protocol: true, protocols: ['http', 'https'] },
    { message: 'must be an http(s) URL' },
  )
  BLOB_S3_ENDPOINT?: string;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^[a-z0-9-]{2,32}$/, { message: 'must be a region name such as us-east-1' })
  BLOB_S3_REGION = 'us-east-1';

  @IsOptional()
  @Transform(trimmed)
  @IsIn(['true', 'false', '1', '0'], { message: 'must be true or false' })
  BLOB_S3_FORCE_PATH_STYLE = 'false';

  @IsOptional()
  @Transform(trimmed)
  @IsIn(['true', 'false', '1', '0'], { message: 'must be true or false' })
  BLOB_S3_PRESIGN = 'false';

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^([A-Za-z0-9_.-]+\/)*$/, { message: 'must be empty or path segments ending in / (e.g. comfy-relay/)' })
  BLOB_S3_KEY_PREFIX = 'comfy-relay/blobs/';

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(300_000)
  BLOB_S3_TIMEOUT_MS = 10_000;

  @IsOptional()
  @IsString()
  AWS_ACCESS_KEY_ID?: string;

  @IsOptional()
  @IsString()
  AWS_SECRET_ACCESS_KEY?: string;

  @IsOptional()
  @IsString()
  AWS_SESSION_TOKEN?: string;

  /** Above this share of Redis maxmemory, submits are refused with 503 (nothing fails later in the pipeline). */
  @IsOptional()
  @Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && /^\d*\.?\d+$/.test(value.trim()) ? Number(value.trim()) : value,
  )
  @IsNumber({}, { message: 'must be a number between 0.1 and 1' })
  @Min(0.1)
  @Max(1)
  REDIS_MEMORY_HIGH_WATERMARK = 0.9;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^[A-Za-z0-9_.-]{1,64}$/, { message: 'must be 1-64 characters of letters, digits and _.-' })
  INSTANCE_NAME?: string;

  @IsOptional()
  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL = 'info';

  @IsOptional()
  @IsIn(['json', 'pretty'])
  LOG_FORMAT = 'json';

  /** Sentry is off unless set (docs/operations.md). Its key is a secret: never logged, never in an event. */
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^https?:\/\/[^:@/\s]+(:[^@/\s]+)?@[^/\s]+(\/[^\s]*)?\/\d+$/, {
    message: 'must be a Sentry DSN: http(s)://<key>@<host>/<project id>',
  })
  SENTRY_DSN?: string;

  @IsOptional()
  @Transform(trimmed)
  @Matches(/^[A-Za-z0-9_.-]{1,64}$/, { message: 'must be 1-64 characters of letters, digits and _.-' })
  SENTRY_ENVIRONMENT?: string;

  /** Share of error events sent (Sentry's sampleRate). */
  @IsOptional()
  @Transform(toRatio)
  @IsNumber({}, { message: 'must be a number between 0 and 1' })
  @Min(0)
  @Max(1)
  SENTRY_SAMPLE_RATE = 1;

  /** Share of HTTP requests Sentry traces itself (when OTEL_EXPORTER_OTLP_ENDPOINT is unset); 0 = errors only. */
  @IsOptional()
  @Transform(toRatio)
  @IsNumber({}, { message: 'must be a number between 0 and 1' })
  @Min(0)
  @Max(1)
  SENTRY_TRACES_SAMPLE_RATE = 0;

  /** OpenTelemetry tracing is off unless set: the OTLP/HTTP base URL (…:4318); /v1/traces is appended. */
  @IsOptional()
  @Transform(trimmed)
  @IsUrl(
    { require_tld: false, require_protocol: true, protocols: ['http', 'https'] },
    { message: 'must be an http(s) URL' },
  )
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;

  @IsOptional()
  @Transform(trimmed)
  @IsIn(['http/protobuf', 'http/json'], { message: 'must be http/protobuf or http/json (OTLP over HTTP)' })
  OTEL_EXPORTER_OTLP_PROTOCOL = 'http/protobuf';

  /** Sent with every export (e.g. a vendor's API key): a secret. */
  @IsOptional()
  @Matches(KEY_VALUE_LIST, { message: 'must be a comma list of key=value' })
  OTEL_EXPORTER_OTLP_HEADERS?: string;

  /** Default: comfy-relay-<role> (roles joined with +, or "all"). */
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^[\x21-\x7e]{1,128}$/, { message: 'must be 1-128 printable characters without spaces' })
  OTEL_SERVICE_NAME?: string;

  @IsOptional()
  @Transform(trimmed)
  @IsIn(
    [
      'always_on',
      'always_off',
      'traceidratio',
      'parentbased_always_on',
      'parentbased_always_off',
      'parentbased_traceidratio',
    ],
    { message: 'must be one of the OpenTelemetry samplers (always_on, parentbased_traceidratio, …)' },
  )
  OTEL_TRACES_SAMPLER?: string;

  /** The ratio of the *traceidratio samplers. */
  @IsOptional()
  @Transform(trimmed)
  @Matches(/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/, { message: 'must be a number between 0 and 1' })
  OTEL_TRACES_SAMPLER_ARG?: string;

  @IsOptional()
  @Matches(KEY_VALUE_LIST, { message: 'must be a comma list of key=value' })
  OTEL_RESOURCE_ATTRIBUTES?: string;
}
