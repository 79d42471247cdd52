/** The metrics module's public API: the registry feeders other modules call, and the streams snapshot. */
export { MetricsService, type TelegramOutcome } from './metrics.service';
export { StreamStatsReader, type StreamsSnapshot } from './stream-stats.reader';
