import type { Lang } from '../i18n';

/** Who sent an update and where to answer: everything a handler needs, taken out of telegraf's context once. */
export interface Inbound {
  updateId: number;
  chatId: number;
  userId: number;
  /** The user's message (absent for a button press on an inaccessible message). */
  messageId?: number;
  languageCode?: string;
  lang: Lang;
  isAdmin: boolean;
}
