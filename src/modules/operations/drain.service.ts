import { Injectable } from '@nestjs/common';
import { DrainFlagStore } from '../generation';

export interface DrainStatus {
  draining: boolean;
  /** Who turned it on (e.g. `cli:alice`, `tg-admin:42`) and when, as recorded in the flag. */
  by?: string;
  since?: string;
}

/**
 * Drain mode: new jobs are refused (503 `draining`; the bot says so) while queued and running ones finish — before
 * a deploy or maintenance. One flag, set and read here by the CLI (`cli drain on|off|status`) and the bot's /drain;
 * the API's submit checks it.
 */
@Injectable()
export class DrainService {
  constructor(private readonly flag: DrainFlagStore) {}

  async on(by: string): Promise<DrainStatus> {
    const since = new Date().toISOString();
    await this.flag.set(`${by} ${since}`);
    return { draining: true, by, since };
  }

  async off(): Promise<DrainStatus> {
    await this.flag.clear();
    return { draining: false };
  }

  async status(): Promise<DrainStatus> {
    const flag = await this.flag.read();
    if (flag === null) return { draining: false };
    const space = flag.lastIndexOf(' ');
    const since = space > 0 ? flag.slice(space + 1) : undefined;
    return {
      draining: true,
      by: space > 0 ? flag.slice(0, space) : flag,
      ...(since && !Number.isNaN(Date.parse(since)) ? { since } : {}),
    };
  }
}
