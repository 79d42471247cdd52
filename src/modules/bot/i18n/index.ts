import { en } from './en';
import type { Messages } from './messages';
import { ru } from './ru';

export type Lang = 'en' | 'ru';
export const LANGS: readonly Lang[] = ['en', 'ru'];
export const LANG_NAMES: Readonly<Record<Lang, string>> = { en: 'English', ru: 'Русский' };
export type { Messages };

const CATALOG: Readonly<Record<Lang, Messages>> = { en, ru };

export function texts(lang: Lang): Messages {
  return CATALOG[lang];
}

export function isLang(value: unknown): value is Lang {
  return value === 'en' || value === 'ru';
}

/** A user's chosen language (/settings), else Telegram's language_code when it is Russian, else English. */
export function pickLang(chosen: string | undefined, languageCode: string | undefined): Lang {
  if (isLang(chosen)) return chosen;
  return (languageCode ?? '').toLowerCase().startsWith('ru') ? 'ru' : 'en';
}
