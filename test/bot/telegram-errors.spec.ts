import { TelegramError } from 'telegraf';
import { fitsAsPhoto, imageDimensions } from '../../src/modules/bot/delivery/image-dimensions.util';
import { SecretScrubber } from '../../src/modules/bot/telegram/secret-scrubber';
import { classifyTelegramError } from '../../src/modules/bot/telegram/telegram-errors';
import { testPng } from './support/bot-harness';

const TOKEN = '123456:TEST-secret-part-of-the-token';
const scrubber = new SecretScrubber([TOKEN, 'webhook-secret-value']);
const scrub = (t: string) => scrubber.scrub(t);
const tgError = (error_code: number, description: string, retry_after?: number) =>
  new TelegramError({ error_code, description, ...(retry_after ? { parameters: { retry_after } } : {}) });

describe('Bot API errors, secrets and photo limits', () => {
  it('classifies what Telegram answers', () => {
    const limited = classifyTelegramError(tgError(429, 'Too Many Requests: retry after 7', 7), 'sendMessage', scrub);
    expect(limited).toMatchObject({ kind: 'rate-limited', retryAfterMs: 7_000, definite: true });
    const cases: [TelegramError, string][] = [
      [tgError(400, 'Bad Request: message is not modified: specified new message content ...'), 'not-modified'],
      [tgError(403, 'Forbidden: bot was blocked by the user'), 'unreachable'],
      [tgError(400, 'Bad Request: chat not found'), 'unreachable'],
      [tgError(400, 'Bad Request: message to edit not found'), 'gone'],
      [tgError(400, 'Bad Request: PHOTO_INVALID_DIMENSIONS'), 'bad-request'],
      [tgError(401, 'Unauthorized'), 'unauthorized'],
    ];
    for (const [err, kind] of cases) expect(classifyTelegramError(err, 'm', scrub).kind).toBe(kind);
    // A 5xx is an answer: Telegram refused the call, and it may be sent again at once.
    for (const code of [500, 502, 503]) {
      expect(classifyTelegramError(tgError(code, 'Internal Server Error'), 'm', scrub)).toMatchObject({
        kind: 'transient',
        definite: true,
      });
    }
    // 504: nobody answered in time; Telegram may have carried the call out.
    expect(classifyTelegramError(tgError(504, 'Gateway Timeout'), 'm', scrub)).toMatchObject({
      kind: 'transient',
      definite: false,
    });
  });

  it('never lets the token through, wherever it appears', () => {
    const fetchError = Object.assign(
      new Error(`request to http://127.0.0.1:1/bot${TOKEN}/sendPhoto failed, reason: connect ECONNREFUSED`),
      { name: 'FetchError' },
    );
    const err = classifyTelegramError(fetchError, 'sendPhoto', scrub);
    expect(err).toMatchObject({ kind: 'transient', definite: true });
    expect(err.message).not.toContain('secret-part');
    expect(err.message).toContain('[redacted]');
    expect(scrub('/file/bot999999:AAAAAAAAAAAAAAAAAAAAAAAAAA/photos/x.jpg')).toBe('/file/bot[redacted]/photos/x.jpg');
    expect(scrub('header webhook-secret-value')).toBe('header [redacted]');
    const timeout = classifyTelegramError(
      Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }),
      'sendPhoto',
      scrub,
    );
    expect(timeout).toMatchObject({ kind: 'transient', definite: false }); // it may have reached Telegram
  });

  it('reads image sizes and applies sendPhoto limits', () => {
    expect(imageDimensions(testPng(30, 20))).toEqual({ width: 30, height: 20 });
    const jpegHeader = Buffer.from([
      0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x01, 0x2c, 0x02, 0x58,
    ]);
    expect(imageDimensions(jpegHeader)).toEqual({ width: 600, height: 300 });
    expect(imageDimensions(Buffer.from('not an image at all'))).toBeUndefined();
    expect(fitsAsPhoto(testPng(64, 64))).toBe(true);
    expect(fitsAsPhoto(testPng(2100, 100))).toBe(false); // ratio 21 > 20
  });
});
