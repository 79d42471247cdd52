/** A bot token (`<bot id>:<secret>`) anywhere, including inside `https://api.telegram.org/bot<token>/…` URLs. */
const BOT_TOKEN = /(?<!\d)(\d{3,}):[A-Za-z0-9_-]{20,}/g;
/** `Bearer <credential>` in a logged header or message. */
const BEARER = /\b(Bearer)\s+[^\s",;]+/gi;
/** The password of a redis:// or rediss:// URL. */
const URL_PASSWORD = /\b(rediss?:\/\/[^:@/\s"]*:)[^@/\s"]+@/gi;

const CENSOR = '[redacted]';

/**
 * The last line of defence behind pino's path redaction: applied to every serialized log line (pino's
 * `hooks.streamWrite`), it removes the configured secret values wherever they appear, also JSON-escaped, and
 * anything shaped like a bot token, a Bearer credential or a Redis password. Path redaction cannot catch a token
 * inside an error message or URL; telegraf and fetch put the bot token in request URLs.
 */
export function createLogScrubber(secrets: readonly (string | undefined)[]): (line: string) => string {
  const needles = [
    ...new Set(
      secrets
        .filter((s): s is string => typeof s === 'string' && s.length >= 8)
        .flatMap((s) => [s, JSON.stringify(s).slice(1, -1)]),
    ),
  ].sort((a, b) => b.length - a.length); // longest first, so a secret containing another goes whole
  return (line) => {
    let out = line;
    for (const needle of needles) if (out.includes(needle)) out = out.split(needle).join(CENSOR);
    return out.replace(BOT_TOKEN, `$1:${CENSOR}`).replace(BEARER, `$1 ${CENSOR}`).replace(URL_PASSWORD, `$1${CENSOR}@`);
  };
}
