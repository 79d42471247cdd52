import type { Role } from './app-config.dto';

/** The validated, typed configuration every module receives (never process.env). */
export interface AppConfig {
  /** With redisSentinel: only its credentials, TLS and database are used (the primary comes from Sentinel). */
  readonly redisUrl: string;
  /** REDIS_SENTINELS + REDIS_SENTINEL_MASTER; null: Redis is the one at REDIS_URL. */
  readonly redisSentinel: RedisSentinelConfig | null;
  /** REDIS_CLUSTER_NODES: a Redis Cluster (ioredis Cluster) found from these nodes; null: not a cluster. */
  readonly redisCluster: RedisClusterConfig | null;
  /**
   * REDIS_MIN_REPLICAS_ACK / REDIS_REPLICA_ACK_TIMEOUT_MS: writes whose loss would lose a job wait (WAIT) until this
   * many replicas hold them, for at most timeoutMs at a time. replicas 0: no WAIT.
   */
  readonly replicaAck: { readonly replicas: number; readonly timeoutMs: number };
  readonly streamPrefix: string;
  /** STREAM_SHARDS: 1, or how many hash-tagged shards the keys are split into (StreamKeys). */
  readonly streamShards: number;
  readonly roles: ReadonlySet<Role>;
  readonly port: number;
  /** Who may reach the HTTP server and how it authenticates (HOST, API_AUTH, API_KEYS). */
  readonly http: HttpAccessConfig;
  /** Empty: the gpu role starts the built-in ComfyUI simulator in-process. */
  readonly comfyuiUrls: readonly string[];
  /** The built-in simulator (used when comfyuiUrls is empty): how many instances, how long a sampler step takes. */
  readonly simulator: { readonly instances: number; readonly stepMs: number };
  readonly workflowsDir: string;
  readonly telegram: {
    readonly botToken?: string;
    readonly apiRoot?: string;
    readonly webhookUrl?: string;
    readonly webhookSecret?: string;
    readonly adminIds: readonly number[];
    /** Global send budget (messages per second) shared by every bot replica through Redis. */
    readonly maxSendsPerSecond: number;
    /** Users whose jobs the bot submits in the priority tier (TELEGRAM_PRIORITY_USER_IDS). */
    readonly priorityUserIds: readonly number[];
  };
  readonly apiKeys: readonly string[];
  /** The keys of apiKeys that may ask for the priority tier (API_PRIORITY_KEYS). */
  readonly apiPriorityKeys: readonly string[];
  /** Active jobs per API key (API_KEY_MAX_ACTIVE); null: no cap. */
  readonly apiKeyMaxActive: number | null;
  readonly userMaxActive: number;
  /** QUEUE_DISPATCH_AHEAD: dispatched jobs left waiting in the request streams for a worker (fair queue). */
  readonly queueDispatchAhead: number;
  readonly maxPromptLength: number;
  readonly maxImageBytes: number;
  readonly jobTimeoutMs: number;
  readonly noProgressTimeoutMs: number;
  readonly claimIdleMs: number;
  readonly maxDeliveries: number;
  readonly gpuConcurrency: number;
  /** Place jobs on instances that have their models loaded (GPU_MODEL_AFFINITY). */
  readonly gpuModelAffinity: boolean;
  readonly projectorConcurrency: number;
  readonly retentionMs: number;
  readonly progressMaxLen: number;
  readonly health: { readonly maxLag: number; readonly maxPending: number };
  readonly shutdownGraceMs: number;
  readonly blobs: BlobConfig;
  /** Share of Redis maxmemory above which submits are refused with 503. */
  readonly redisMemoryHighWatermark: number;
  /** Stable per machine/container; consumer names are `<role>-<instanceName>-<n>`. */
  readonly instanceName: string;
  readonly logLevel: string;
  readonly logFormat: 'json' | 'pretty';
  /** Optional error reporting and tracing (docs/operations.md); both off when their variables are unset. */
  readonly observability: ObservabilityConfig;
}

/** Nodes to discover a Redis Cluster from (REDIS_URL then gives only credentials and TLS). */
export interface RedisClusterConfig {
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
}

/** Where the sentinels are and the name they know the primary by. */
export interface RedisSentinelConfig {
  readonly sentinels: readonly { readonly host: string; readonly port: number }[];
  readonly masterName: string;
}

/**
 * The HTTP server's exposure. `auth: 'keys'` (the default): /v1 needs a Bearer key from API_KEYS when any is set;
 * without keys the server listens on loopback only. `auth: 'none'` (API_AUTH=none): no key anywhere, on purpose.
 */
export interface HttpAccessConfig {
  readonly host: string;
  readonly auth: 'keys' | 'none';
  /** True when the host was chosen for the operator because API_KEYS is unset (logged at start). */
  readonly loopbackForLackOfKeys: boolean;
}

/** Sentry (SENTRY_DSN) and OpenTelemetry (OTEL_EXPORTER_OTLP_ENDPOINT); the SDKs load only when set. */
export interface ObservabilityConfig {
  /** The process's roles as one name: `all`, or e.g. `api+projector` (service name, tags). */
  readonly role: string;
  readonly sentry?: {
    readonly dsn: string;
    readonly environment?: string;
    readonly sampleRate: number;
    readonly tracesSampleRate: number;
  };
  readonly otel?: {
    readonly endpoint: string;
    readonly protocol: 'http/protobuf' | 'http/json';
    readonly serviceName: string;
    /** Values of OTEL_EXPORTER_OTLP_HEADERS (credentials, kept out of logs and events). */
    readonly headerValues: readonly string[];
  };
}

/** Where result and input images live (README: choosing the backend). */
export interface BlobConfig {
  readonly backend: 'redis' | 'fs' | 's3';
  /** How long an API result (and a job's inputs, at most) is kept. */
  readonly ttlSeconds: number;
  /** Redis backend: cap on stored image bytes (0 = none). */
  readonly redisMaxBytes: number;
  readonly dir?: string;
  readonly s3?: {
    readonly bucket: string;
    readonly endpoint?: string;
    readonly region: string;
    readonly forcePathStyle: boolean;
    readonly presign: boolean;
    readonly keyPrefix: string;
    readonly timeoutMs: number;
    readonly credentials?: {
      readonly accessKeyId: string;
      readonly secretAccessKey: string;
      readonly sessionToken?: string;
    };
  };
}

export const APP_CONFIG = Symbol('APP_CONFIG');
