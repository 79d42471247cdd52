import * as Sentry from '@sentry/nestjs';
import { deepScrub } from './deep-scrub';
import { jobFailureOf } from './job-failure.report';
import type { ErrorReporting, JobScope, ObservedEnvelope } from './observability.hooks';
import { traceIdOf } from './traceparent';

export interface SentrySettings {
  dsn: string;
  environment?: string;
  release: string;
  sampleRate: number;
  tracesSampleRate: number;
  /** Our OpenTelemetry SDK owns the tracer provider: Sentry must not set up its own. */
  otelOwnedElsewhere: boolean;
  role: string;
  instance: string;
  scrub: (text: string) => string;
}

export interface StartedSentry {
  reporting: ErrorReporting;
  /** Sends what is queued (bounded), then stops the client. */
  shutdown(): Promise<void>;
}

const FLUSH_TIMEOUT_MS = 2_000;

/** A job that ended badly, as Sentry shows it: its type names the kind, its message the code and reason. */
class JobFailedError extends Error {
  override readonly name = 'JobFailedError';
}
class JobDeadLetteredError extends Error {
  override readonly name = 'JobDeadLetteredError';
}

/**
 * Starts @sentry/nestjs for errors: unhandled exceptions and rejections (which still end the process, as without
 * Sentry), 500s of the API, and jobs that failed for good or were dead-lettered. Every event passes beforeSend, which
 * scrubs the configured secrets and token-shaped text the way the log scrubber does. Loaded only when SENTRY_DSN is set.
 */
export function startSentry(settings: SentrySettings): StartedSentry {
  const tracesByServer = !settings.otelOwnedElsewhere && settings.tracesSampleRate > 0;
  const scrubEvent = <E>(event: E): E => deepScrub(event, settings.scrub);
  Sentry.init({
    dsn: settings.dsn,
    ...(settings.environment ? { environment: settings.environment } : {}),
    release: settings.release,
    serverName: settings.instance,
    sampleRate: settings.sampleRate,
    ...(tracesByServer ? { tracesSampleRate: settings.tracesSampleRate } : {}),
    skipOpenTelemetrySetup: settings.otelOwnedElsewhere,
    sendDefaultPii: false,
    // Only what errors need: the default set instruments libraries (Redis, Express, …) on every call.
    defaultIntegrations: false,
    integrations: [
      Sentry.eventFiltersIntegration(),
      Sentry.functionToStringIntegration(),
      Sentry.linkedErrorsIntegration(),
      Sentry.dedupeIntegration(),
      Sentry.nodeContextIntegration(),
      Sentry.contextLinesIntegration(),
      Sentry.onUncaughtExceptionIntegration(),
      // 'strict': an unhandled rejection still ends the process, as it does without Sentry.
      Sentry.onUnhandledRejectionIntegration({ mode: 'strict' }),
      ...(tracesByServer ? [Sentry.httpIntegration()] : []),
    ],
    initialScope: { tags: { role: settings.role, instance: settings.instance } },
    beforeSend: scrubEvent,
    beforeSendTransaction: scrubEvent,
    beforeBreadcrumb: scrubEvent,
  });
  return {
    reporting: new SentryErrorReporting(settings),
    shutdown: async () => {
      await Sentry.close(FLUSH_TIMEOUT_MS);
    },
  };
}

class SentryErrorReporting implements ErrorReporting {
  constructor(private readonly settings: SentrySettings) {}

  jobEvent(envelope: ObservedEnvelope, scope: JobScope | undefined): void {
    const failure = jobFailureOf(envelope);
    if (!failure) return;
    const ErrorClass = failure.kind === 'job.failed' ? JobFailedError : JobDeadLetteredError;
    const traceId = traceIdOf(envelope.traceparent);
    Sentry.captureException(new ErrorClass(`${failure.code}: ${failure.message}`), {
      level: 'error',
      // One issue per kind of failure, not one per message text.
      fingerprint: [failure.kind, failure.code],
      tags: {
        jobId: envelope.jobId,
        correlationId: envelope.correlationId,
        role: this.settings.role,
        instance: this.settings.instance,
        code: failure.code,
        ...(scope?.jobId === envelope.jobId && scope.workflow ? { workflow: scope.workflow } : {}),
        ...(traceId ? { trace_id: traceId } : {}),
      },
    });
  }

  error(err: unknown, context: Readonly<Record<string, string>>): void {
    Sentry.captureException(err, {
      level: 'error',
      tags: { role: this.settings.role, instance: this.settings.instance, ...context },
    });
  }
}
