import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { Logger as NestPinoLogger } from 'nestjs-pino';
import type { Logger as PinoLogger } from 'pino';
import { AppModule } from './app.module';
import { createRootLogger } from './common/root-logger';
import { httpTracingMiddleware } from './common/observability/observability.hooks';
import type { AppConfig } from './config/app-config';
import { ConfigError } from './config/config.loader';
import { listenRefusal } from './config/listen-address';
import { asBodyParserError } from './http/http-error.filter';
import { createValidationPipe } from './http/validation.pipe';
import { rejectDeepJson } from './http/json-depth.guard';
import { MetricsService } from './modules/metrics/metrics.service';
import { ConsumerDirectory } from './streams/consumer-directory';
import { REDIS } from './streams/redis.provider';
import { RedisStreamsServer } from './streams/redis-streams.server';
import { StreamKeys } from './streams/stream-keys';

export interface RunningApp {
  app: NestExpressApplication;
  config: AppConfig;
  logger: PinoLogger;
  streams: RedisStreamsServer;
  /** Base URL of the HTTP server (the real port when PORT=0). */
  url: string;
  close(): Promise<void>;
}

/**
 * Builds the app for the configured roles, starts the stream consumers and the HTTP server, on `host` (default
 * HOST: see config.loader.ts). Without API keys a non-loopback host is refused unless API_AUTH=none.
 */
export async function startApp(
  config: AppConfig,
  options: { logger?: PinoLogger; host?: string } = {},
): Promise<RunningApp> {
  const host = options.host ?? config.http.host;
  const refusal = listenRefusal(host, config.apiKeys.length > 0, config.http.auth);
  if (refusal) throw new ConfigError([{ variable: 'HOST', rule: refusal }]);
  const logger = options.logger ?? createRootLogger(config, [...config.roles].join(','));
  const app = await NestFactory.create<NestExpressApplication>(await AppModule.forRoot(config, logger), {
    bodyParser: false,
    bufferLogs: true,
    // Idle keep-alive sockets must not hold up a drain.
    forceCloseConnections: true,
  });
  app.useLogger(app.get(NestPinoLogger));
  // Tracing on (OTEL_EXPORTER_OTLP_ENDPOINT): one server span per request, first, so a submit's job joins its trace.
  const tracing = httpTracingMiddleware();
  if (tracing) app.use(tracing);
  // Base64 images travel in JSON: allow the image limit plus base64's 4/3 overhead and the rest of the body.
  const jsonLimit = Math.ceil(config.maxImageBytes * 1.34) + 256 * 1024;
  app.useBodyParser('json', { limit: jsonLimit });
  app.use(rejectDeepJson);
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const body = asBodyParserError(err);
    if (!body) {
      next(err);
      return;
    }
    res.status(body.statusCode).json(body);
  });
  app.useGlobalPipes(createValidationPipe());
  // Loaded with the api role only: the other roles never pay for @nestjs/swagger and its UI.
  if (config.roles.has('api')) (await import('./modules/generation/api/openapi/api-docs')).mountApiDocs(app);
  const streams = new RedisStreamsServer(
    app.get(REDIS),
    app.get(StreamKeys),
    config,
    logger,
    {},
    app.get(ConsumerDirectory),
  );
  app.connectMicroservice({ strategy: streams }, { inheritAppConfig: true });
  app.get(MetricsService).watchConsumers(() => streams.stats());
  await app.startAllMicroservices();
  await app.listen(config.port, host);
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const bound = typeof address === 'object' && address ? address.address : host;
  const running: RunningApp = {
    app,
    config,
    logger,
    streams,
    url: `http://${reachableHost(bound)}:${port}`,
    close: () => app.close(),
  };
  logExposure(logger, config, bound, port);
  logger.info({ roles: [...config.roles], host: bound, port, prefix: config.streamPrefix }, 'comfy-relay started');
  return running;
}

/** One line on who can reach the server, when it is not the ordinary "keys on every interface". */
function logExposure(logger: PinoLogger, config: AppConfig, host: string, port: number): void {
  if (config.http.loopbackForLackOfKeys) {
    logger.info(
      { host, port },
      `HTTP on ${host}:${port} only (this machine): API_KEYS is unset. To serve other hosts set API_KEYS, ` +
        'or API_AUTH=none with HOST to serve without keys',
    );
  } else if (config.http.auth === 'none') {
    logger.warn(
      { host, port },
      `API_AUTH=none: /v1, /metrics and /health answer anyone who reaches ${host}:${port}, without a key`,
    );
  }
}

/** The address a client on this machine uses to reach a server bound to `host`. */
function reachableHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
