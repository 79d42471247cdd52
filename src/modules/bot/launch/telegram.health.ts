import type { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import type { LauncherState } from './bot-launcher.service';

/** /health's `telegram` entry: up once updates flow (polling running, or the webhook set). */
export class TelegramHealthIndicator {
  constructor(
    private readonly state: LauncherState,
    private readonly health: HealthIndicatorService,
  ) {}

  check(): Promise<HealthIndicatorResult> {
    const session = this.health.check('telegram');
    const details = {
      mode: this.state.mode,
      state: this.state.status, // 'status' is terminus' own key
      ...(this.state.username ? { bot: this.state.username } : {}),
      ...(this.state.error ? { error: this.state.error } : {}),
    };
    return Promise.resolve(this.state.status === 'running' ? session.up(details) : session.down(details));
  }
}
