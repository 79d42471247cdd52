import { isLang, type Lang } from '../i18n';
import { PICTURE_SIZES } from './user-settings.store';

/** Settings buttons carry `s:l:<lang>` or `s:z:<size>` (0: the workflow's default size). */
export const SETTINGS_PREFIX = 's:';

export type SettingsChoice = { kind: 'lang'; lang: Lang } | { kind: 'size'; size: number };

export function langCallback(lang: Lang): string {
  return `${SETTINGS_PREFIX}l:${lang}`;
}

export function sizeCallback(size: number): string {
  return `${SETTINGS_PREFIX}z:${size}`;
}

/**
 * The choice a settings button stands for, or undefined for data no panel of ours ever carried (a button of an
 * older version, or hand-made data): such a press must change nothing.
 */
export function parseSettingsCallback(data: string): SettingsChoice | undefined {
  const match = /^s:([lz]):([a-z0-9]{1,8})$/.exec(data);
  if (!match) return undefined;
  const [, kind, value] = match as unknown as [string, string, string];
  if (kind === 'l') return isLang(value) ? { kind: 'lang', lang: value } : undefined;
  const size = Number(value);
  return String(size) === value && (size === 0 || PICTURE_SIZES.includes(size)) ? { kind: 'size', size } : undefined;
}
