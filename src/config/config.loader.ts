import { hostname } from 'node:os';
import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import { ENV_VARIABLES, EnvDto, ROLES, type Role } from './app-config.dto';
import type { AppConfig } from './app-config';

/** Variables whose values must never be echoed back, even in a validation error. */
const SECRET_VARIABLES = new Set(['TELEGRAM_BOT_TOKEN', 'TELEGRAM_WEBHOOK_SECRET', 'API_KEYS', 'REDIS_URL']);

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
  return toAppConfig(dto);
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
    streamPrefix: dto.STREAM_PREFIX,
    roles,
    port: dto.PORT,
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
      testPauseBeforeAck: dto.TELEGRAM_TEST_PAUSE_BEFORE_ACK === '1',
    },
    apiKeys: list(dto.API_KEYS),
    userMaxActive: dto.USER_MAX_ACTIVE,
    maxPromptLength: dto.MAX_PROMPT_LENGTH,
    maxImageBytes: dto.MAX_IMAGE_BYTES,
    jobTimeoutMs: dto.JOB_TIMEOUT_MS,
    noProgressTimeoutMs: dto.NO_PROGRESS_TIMEOUT_MS,
    claimIdleMs: dto.CLAIM_IDLE_MS,
    maxDeliveries: dto.MAX_DELIVERIES,
    gpuConcurrency: dto.GPU_CONCURRENCY ?? 2 * instances,
    projectorConcurrency: dto.PROJECTOR_CONCURRENCY,
    retentionMs: dto.STREAM_RETENTION_MS,
    progressMaxLen: dto.PROGRESS_MAXLEN,
    health: { maxLag: dto.HEALTH_MAX_LAG, maxPending: dto.HEALTH_MAX_PENDING },
    shutdownGraceMs: dto.SHUTDOWN_GRACE_MS,
    blobDir: dto.BLOB_DIR,
    blobTtlSeconds: dto.BLOB_TTL_SECONDS,
    instanceName: dto.INSTANCE_NAME ?? sanitizeHost(hostname()),
    logLevel: dto.LOG_LEVEL,
    logFormat: dto.LOG_FORMAT === 'pretty' ? 'pretty' : 'json',
  });
}

function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

function sanitizeHost(host: string): string {
  return host.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 64) || 'host';
}
