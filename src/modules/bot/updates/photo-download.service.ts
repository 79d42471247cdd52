import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from '../../../common/logger';
import { ROOT_LOGGER } from '../../../common/root-logger';
import { APP_CONFIG, type AppConfig } from '../../../config/app-config';
import { sniffImageMime } from '../../../workflows';
import { FileTooLargeError, TelegramCallError } from '../telegram/telegram-errors';
import { TelegramGateway } from '../telegram/telegram-gateway';

/** The Bot API serves files up to 20 MB to bots (a local Bot API server allows more; we don't need it). */
export const BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024;

export type DownloadResult =
  | { ok: true; bytes: Buffer; mime: string }
  | { ok: false; reason: 'too-large'; limit: number }
  | { ok: false; reason: 'not-an-image' | 'failed' };

/**
 * Fetches a user's photo or image file: the declared size is checked before anything is downloaded, the download
 * stops at the limit, and the type is decided by the bytes (magic numbers), never by the declared mime type.
 */
@Injectable()
export class PhotoDownloadService {
  readonly limit: number;

  constructor(
    @Inject(ROOT_LOGGER) private readonly log: Logger,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly gateway: TelegramGateway,
  ) {
    this.limit = Math.min(BOT_API_DOWNLOAD_LIMIT, config.maxImageBytes);
  }

  async fetch(fileId: string, declaredSize: number | undefined): Promise<DownloadResult> {
    if (declaredSize !== undefined && declaredSize > this.limit)
      return { ok: false, reason: 'too-large', limit: this.limit };
    try {
      const file = await this.gateway.getFile(fileId);
      if (file.file_size !== undefined && file.file_size > this.limit) {
        return { ok: false, reason: 'too-large', limit: this.limit };
      }
      if (!file.file_path) return { ok: false, reason: 'failed' };
      const bytes = await this.gateway.download(file.file_path, this.limit);
      const mime = sniffImageMime(bytes);
      return mime ? { ok: true, bytes, mime } : { ok: false, reason: 'not-an-image' };
    } catch (err) {
      if (err instanceof FileTooLargeError) return { ok: false, reason: 'too-large', limit: this.limit };
      if (err instanceof TelegramCallError && /file is too big/i.test(err.message)) {
        return { ok: false, reason: 'too-large', limit: this.limit };
      }
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'photo download failed');
      return { ok: false, reason: 'failed' };
    }
  }
}
