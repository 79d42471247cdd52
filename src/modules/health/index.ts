/** The health module's public API: what other modules register with, or read, for /health. */
export { HealthContributors, type HealthContributor } from './health-contributors';
export { StreamsHealthIndicator, type GroupHealth } from './streams.health';
