/** The bot token (`<id>:<secret>`) wherever it appears, including inside `/bot<token>/` URL paths. */
const TOKEN_SHAPE = /\d{3,}:[A-Za-z0-9_-]{20,}/g;

/**
 * Removes the bot token and other configured secrets from text before it is logged or shown: telegraf and
 * fetch put the token in request URLs, so any error message about a call may carry it.
 */
export class SecretScrubber {
  private readonly secrets: readonly string[];

  constructor(secrets: readonly (string | undefined)[]) {
    // Longest first, so a secret that contains another is removed whole.
    this.secrets = secrets.filter((s): s is string => !!s && s.length >= 8).sort((a, b) => b.length - a.length);
  }

  scrub(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('[redacted]');
    return out.replace(TOKEN_SHAPE, '[redacted]');
  }
}
