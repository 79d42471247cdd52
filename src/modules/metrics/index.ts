/** The metrics module's public API: the registry feeders other modules call. */
export { MetricsService, type TelegramOutcome } from './metrics.service';
