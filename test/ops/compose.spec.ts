import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ENV_VARIABLES } from '../../src/config/app-config.dto';

const ROOT = join(__dirname, '..', '..');
const APP_SERVICES = ['api', 'gpu', 'bot', 'projector'] as const;

interface Service {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string> | string[];
  profiles?: string[];
  ports?: string[];
  volumes?: string[];
  container_name?: string;
  healthcheck?: { test?: string[] };
  depends_on?: Record<string, { condition?: string }> | string[];
  deploy?: { resources?: { reservations?: { devices?: { capabilities?: string[]; driver?: string }[] } } };
  networks?: Record<string, { aliases?: string[] }>;
}

const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;

/**
 * Compose's variable interpolation (the forms this file uses): `${VAR}`, `${VAR:-default}`, `${VAR:?error}` (an
 * unset or empty VAR stops `docker compose` with the error), `$$` for a literal `$`.
 */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(
    /\$\$|\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}/g,
    (whole, name?: string, op?: string, arg = '') => {
      if (whole === '$$') return '$';
      const set = env[name!] !== undefined && (env[name!] !== '' || !op?.startsWith(':'));
      if (set) return env[name!]!;
      if (op?.endsWith('?')) throw new Error(`required variable ${name} is missing a value: ${arg}`);
      return op ? arg : '';
    },
  );
}
const envNames = (s: Service) =>
  Array.isArray(s.environment) ? s.environment.map((e) => e.split('=')[0]!) : Object.keys(s.environment ?? {});

describe('docker-compose.yml', () => {
  it('has every role as a service of the one image, none behind a profile', () => {
    for (const name of APP_SERVICES) {
      const s = services[name]!;
      expect(s).toBeDefined();
      expect(s.image).toMatch(/comfy-relay/);
      expect(s.build).toBe('.');
      expect(s.profiles).toBeUndefined();
      expect(s.environment).toMatchObject({ ROLE: name, REDIS_URL: 'redis://redis:6379' });
      expect(s.depends_on).toEqual({ redis: { condition: 'service_healthy' } });
      expect(s.healthcheck?.test?.join(' ')).toContain('/health/live');
    }
  });

  it('passes only environment variables the config schema knows', () => {
    const known = new Set<string>(ENV_VARIABLES);
    for (const name of [...APP_SERVICES, 'comfyui-sim']) {
      const unknown = envNames(services[name]!).filter((v) => !known.has(v));
      expect({ service: name, unknown }).toEqual({ service: name, unknown: [] });
    }
  });

  it('lets the gpu workers scale: no fixed container name or host port', () => {
    const gpu = services.gpu!;
    expect(gpu.container_name).toBeUndefined();
    expect(gpu.ports).toBeUndefined();
    expect((gpu.environment as Record<string, string>).COMFYUI_URLS).toContain('http://comfyui:8188');
  });

  it('runs Redis with AOF, noeviction, a volume and a healthcheck', () => {
    const redis = services.redis!;
    const command = (redis.command as string[]).join(' ');
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--appendfsync (everysec|always)/);
    expect(command).toMatch(/--maxmemory-policy noeviction/);
    expect(redis.volumes).toContain('redis-data:/data');
    expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(compose.volumes).toHaveProperty('redis-data');
  });

  it('bounds Redis memory (maxmemory) so the API can refuse jobs before Redis refuses writes', () => {
    const command = (services.redis!.command as string[]).join(' ');
    expect(command).toMatch(/--maxmemory \$\{REDIS_MAXMEMORY:-\d+[kmg]b\}/);
  });

  it('offers MinIO (profile s3) with a bucket and a lifecycle rule, and passes the BLOB_S3_* settings to every role', () => {
    const minio = services.minio!;
    expect(minio.profiles).toEqual(['s3']);
    expect(minio.volumes).toContain('minio-data:/data');
    expect(minio.healthcheck?.test).toBeDefined();
    expect(compose.volumes).toHaveProperty('minio-data');
    const init = services['minio-init']! as Service & { entrypoint?: string[] };
    expect(init.profiles).toEqual(['s3']);
    expect(init.depends_on).toEqual({ minio: { condition: 'service_healthy' } });
    const script = (init.entrypoint ?? []).join(' ');
    expect(script).toMatch(/mc mb --ignore-existing local\/\$\{BLOB_S3_BUCKET/);
    expect(script).toMatch(/mc ilm rule add --expire-days/);
    for (const name of APP_SERVICES) {
      expect(envNames(services[name]!)).toEqual(
        expect.arrayContaining(['BLOB_S3_BUCKET', 'BLOB_S3_ENDPOINT', 'AWS_ACCESS_KEY_ID', 'BLOB_REDIS_MAX_BYTES']),
      );
    }
  });

  it('reserves a GPU for ComfyUI (profile comfyui) and documents image and models volume', () => {
    const comfyui = services.comfyui!;
    expect(comfyui.profiles).toEqual(['comfyui']);
    expect(comfyui.image).toContain('COMFYUI_IMAGE');
    expect(comfyui.deploy?.resources?.reservations?.devices?.[0]).toMatchObject({
      driver: 'nvidia',
      capabilities: ['gpu'],
    });
    expect(comfyui.volumes?.some((v) => v.includes('COMFYUI_MODELS_DIR') && v.endsWith(':ro'))).toBe(true);
  });

  it('runs the ComfyUI simulator instead (profile sim), answering as comfyui', () => {
    const sim = services['comfyui-sim']!;
    expect(sim.profiles).toEqual(['sim']);
    const command = sim.command as string[];
    expect(command.slice(0, 2)).toEqual(['node', 'dist/tools/comfyui-sim/main.js']);
    for (const flag of ['--port', '--count', '--step-ms']) expect(command).toContain(flag);
    expect(sim.networks?.default?.aliases).toEqual(['comfyui']);
    expect(existsSync(join(ROOT, 'src/tools/comfyui-sim/main.ts'))).toBe(true);
  });

  it('provisions Prometheus and Grafana (profile monitoring) from files that exist', () => {
    for (const name of ['prometheus', 'grafana']) {
      const s = services[name]!;
      expect(s.profiles).toEqual(['monitoring']);
      for (const volume of s.volumes ?? []) {
        const host = volume.split(':')[0]!;
        if (host.startsWith('./'))
          expect({ volume, exists: existsSync(join(ROOT, host)) }).toEqual({ volume, exists: true });
      }
    }
    const prometheus = parse(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8'));
    expect(prometheus.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    expect(prometheus.scrape_configs[0].dns_sd_configs[0].names).toEqual([...APP_SERVICES]);
  });

  it('offers an OTel collector and Jaeger (profile tracing), and passes the SENTRY_*/OTEL_* settings to every role', () => {
    const collector = services['otel-collector']! as Service;
    const jaeger = services.jaeger!;
    expect(collector.profiles).toEqual(['tracing']);
    expect(jaeger.profiles).toEqual(['tracing']);
    expect(jaeger.ports).toEqual(['127.0.0.1:16686:16686']);
    const mount = (collector.volumes ?? []).find((v) => v.includes('otel-collector'))!;
    const config = parse(readFileSync(join(ROOT, mount.split(':')[0]!), 'utf8'));
    // OTLP/HTTP on 4318 is what the service's exporter speaks; the pipeline ends in Jaeger.
    expect(config.receivers.otlp.protocols.http.endpoint).toBe('0.0.0.0:4318');
    expect(config.service.pipelines.traces.receivers).toEqual(['otlp']);
    expect(config.exporters[config.service.pipelines.traces.exporters[0]].endpoint).toBe('jaeger:4317');
    for (const name of APP_SERVICES) {
      const env = services[name]!.environment as Record<string, string>;
      expect(env).toMatchObject({
        SENTRY_DSN: '${SENTRY_DSN:-}',
        OTEL_EXPORTER_OTLP_ENDPOINT: '${OTEL_EXPORTER_OTLP_ENDPOINT:-}',
      });
      expect(envNames(services[name]!)).not.toContain('OTEL_SERVICE_NAME');
    }
  });
});

describe('docker-compose.yml: Redis Sentinel (profile sentinel, issue 15)', () => {
  const replicas = ['redis-replica-1', 'redis-replica-2'];
  const sentinels = ['redis-sentinel-1', 'redis-sentinel-2', 'redis-sentinel-3'];

  it('adds two replicas of redis with its durability settings, each announcing its service name', () => {
    for (const name of replicas) {
      const s = services[name]!;
      expect(s.profiles).toEqual(['sentinel']);
      const command = (s.command as string[]).join(' ');
      expect(command).toContain('--replicaof redis 6379');
      expect(command).toContain(`--replica-announce-ip ${name}`);
      expect(command).toMatch(/--appendonly yes/);
      expect(command).toMatch(/--maxmemory-policy noeviction/);
      expect(s.volumes).toEqual([`${name}-data:/data`]);
      expect(compose.volumes).toHaveProperty(`${name}-data`);
    }
    expect((services.redis!.command as string[]).join(' ')).toContain('--replica-announce-ip redis');
  });

  it('adds three sentinels (quorum 2) monitoring redis under the master name the app is given', () => {
    for (const name of sentinels) {
      const s = services[name]! as Service & { entrypoint?: string[] };
      expect(s.profiles).toEqual(['sentinel']);
      expect(s.environment).toEqual({ SENTINEL_NAME: name });
      const script = interpolate((s.entrypoint ?? []).join(' '), {});
      expect(script).toContain("'sentinel monitor comfy-relay redis 6379 2'");
      expect(script).toContain("'sentinel resolve-hostnames yes'");
      expect(script).toContain('sentinel announce-ip $SENTINEL_NAME');
      expect(script).toMatch(/exec redis-server \/data\/sentinel\.conf --sentinel$/);
      expect(s.healthcheck?.test).toEqual(['CMD', 'redis-cli', '-p', '26379', 'ping']);
    }
  });

  it('passes the Sentinel and acknowledged-write settings to every role, off unless set', () => {
    for (const name of APP_SERVICES) {
      expect(services[name]!.environment).toMatchObject({
        REDIS_SENTINELS: '${REDIS_SENTINELS:-}',
        REDIS_SENTINEL_MASTER: '${REDIS_SENTINEL_MASTER:-}',
        REDIS_MIN_REPLICAS_ACK: '${REDIS_MIN_REPLICAS_ACK:-0}',
        REDIS_REPLICA_ACK_TIMEOUT_MS: '${REDIS_REPLICA_ACK_TIMEOUT_MS:-500}',
      });
    }
    const names = sentinels.map((s) => `${s}:26379`).join(',');
    const header = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')
      .split('\nname:')[0]!
      .replace(/\n#\s+/g, '');
    expect(header).toContain(names);
    expect(header).toContain('REDIS_SENTINEL_MASTER=comfy-relay');
  });
});

describe('docker-compose.yml: Redis Cluster (profile cluster, issue 15)', () => {
  const nodes = ['redis-cluster-1', 'redis-cluster-2', 'redis-cluster-3'];

  it('adds three cluster-enabled primaries with the durability settings, each announcing its service name', () => {
    for (const name of nodes) {
      const s = services[name]!;
      expect(s.profiles).toEqual(['cluster']);
      const command = (s.command as string[]).join(' ');
      expect(command).toContain('--cluster-enabled yes');
      expect(command).toContain(`--cluster-announce-hostname ${name}`);
      expect(command).toContain('--cluster-preferred-endpoint-type hostname');
      expect(command).toMatch(/--appendonly yes/);
      expect(command).toMatch(/--maxmemory-policy noeviction/);
      expect(s.volumes).toEqual([`${name}-data:/data`]);
      expect(compose.volumes).toHaveProperty(`${name}-data`);
      expect(s.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    }
  });

  it('creates the cluster once, over the three primaries, after they are healthy', () => {
    const init = services['redis-cluster-init']! as Service & { entrypoint?: string[] };
    expect(init.profiles).toEqual(['cluster']);
    expect(init.depends_on).toEqual(Object.fromEntries(nodes.map((n) => [n, { condition: 'service_healthy' }])));
    const script = (init.entrypoint ?? []).join(' ');
    expect(script).toContain('cluster_state:ok ||');
    expect(script).toContain(`--cluster create ${nodes.map((n) => `${n}:6379`).join(' ')}`);
    expect(script).toContain('--cluster-replicas 0 --cluster-yes');
  });

  it('passes REDIS_CLUSTER_NODES and STREAM_SHARDS to every role, off unless set, and names them in the header', () => {
    for (const name of APP_SERVICES) {
      expect(services[name]!.environment).toMatchObject({
        REDIS_CLUSTER_NODES: '${REDIS_CLUSTER_NODES:-}',
        STREAM_SHARDS: '${STREAM_SHARDS:-1}',
      });
    }
    const header = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')
      .split('\nname:')[0]!
      .replace(/\n#\s+/g, '');
    expect(header).toContain(`REDIS_CLUSTER_NODES=${nodes.map((n) => `${n}:6379`).join(',')}`);
    expect(header).toContain('STREAM_SHARDS=6');
  });
});

describe('docker-compose.yml: closed by default (issue 14)', () => {
  it('refuses to start any app service without API_KEYS (compose interpolation error naming it)', () => {
    for (const name of APP_SERVICES) {
      const value = (services[name]!.environment as Record<string, string>).API_KEYS;
      expect({ name, value }).toEqual({ name, value: expect.stringMatching(/^\$\{API_KEYS:\?[^}]+\}$/) });
      expect(() => interpolate(value!, {})).toThrow(/required variable API_KEYS is missing a value: set API_KEYS/);
      expect(() => interpolate(value!, { API_KEYS: '' })).toThrow(/API_KEYS/);
      expect(interpolate(value!, { API_KEYS: 'k-0123456789abcdef' })).toBe('k-0123456789abcdef');
    }
  });

  it('publishes nothing on every host interface by default: the API on 127.0.0.1 unless API_BIND says so', () => {
    expect(services.api!.ports).toEqual(['${API_BIND:-127.0.0.1}:${API_PORT:-3000}:3000']);
    expect(interpolate(services.api!.ports![0]!, { API_BIND: '0.0.0.0' })).toBe('0.0.0.0:3000:3000');
    for (const [name, service] of Object.entries(services)) {
      for (const port of service.ports ?? []) {
        const published = interpolate(port, {});
        expect({ name, published }).toEqual({ name, published: expect.stringMatching(/^127\.0\.0\.1:\d+:\d+$/) });
      }
    }
  });

  it('passes the tier settings: priority keys and the per-key cap to the api, priority users to the bot', () => {
    expect(services.api!.environment).toMatchObject({
      API_PRIORITY_KEYS: '${API_PRIORITY_KEYS:-}',
      API_KEY_MAX_ACTIVE: '${API_KEY_MAX_ACTIVE:-}',
    });
    expect(services.bot!.environment).toMatchObject({ TELEGRAM_PRIORITY_USER_IDS: '${TELEGRAM_PRIORITY_USER_IDS:-}' });
    // Open on purpose is not a compose setting: no role runs with API_AUTH=none or a HOST of its own.
    for (const name of APP_SERVICES)
      expect(envNames(services[name]!)).not.toEqual(expect.arrayContaining(['API_AUTH']));
  });

  it('Prometheus scrapes /metrics with a key, read from a git-ignored secret file', () => {
    const prometheus = services.prometheus! as Service & { secrets?: { source: string; target: string }[] };
    const secrets = (compose as unknown as { secrets: Record<string, { file: string }> }).secrets;
    const [mounted] = prometheus.secrets ?? [];
    expect(mounted).toBeDefined();
    const file = interpolate(secrets[mounted!.source]!.file, {});
    expect(file).toBe('./deploy/prometheus/api-key');
    expect(readFileSync(join(ROOT, '.gitignore'), 'utf8').split('\n')).toContain(file.replace(/^\.\//, ''));
    const config = parse(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8'));
    expect(config.scrape_configs[0].authorization).toEqual({
      type: 'Bearer',
      credentials_file: `/run/secrets/${mounted!.target}`,
    });
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages = instructions.filter((l) => /^FROM\s/i.test(l));
  const last = instructions.slice(instructions.lastIndexOf(stages[stages.length - 1]!));

  it('is multi-stage: builds with npm run build, ships only the build output', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(instructions.some((l) => /^RUN .*npm ci/.test(l))).toBe(true);
    expect(instructions.some((l) => /^RUN .*npm run build/.test(l))).toBe(true);
    expect(last.filter((l) => /^COPY --from=/.test(l)).length).toBeGreaterThan(0);
    expect(last.some((l) => /^COPY .*\bsrc\b/.test(l) && !l.includes('--from'))).toBe(false);
  });

  it('runs as a non-root user: node dist/main', () => {
    const user = last.filter((l) => /^USER\s/.test(l)).pop();
    expect(user).toBeDefined();
    expect(user!.split(/\s+/)[1]).not.toMatch(/^(root|0)(:|$)/);
    expect(last[last.length - 1]).toMatch(/^CMD \["node", ("--[a-z-]+=\d+", )*"dist\/main"\]$/);
  });

  it('keeps secrets and local state out of the build context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['node_modules', 'dist', '.env', '.git']) expect(ignored).toContain(entry);
  });

  it('builds what compose and the CLI start (tsconfig.build.json covers src/)', () => {
    const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8'));
    expect(build.include).toEqual(['src/**/*.ts']);
    expect(existsSync(join(ROOT, 'src/main.ts'))).toBe(true);
    expect(existsSync(join(ROOT, 'src/cli/main.ts'))).toBe(true);
  });
});
