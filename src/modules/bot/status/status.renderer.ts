import { createHash } from 'node:crypto';
import type { InlineKeyboardButton, InlineKeyboardMarkup } from 'telegraf/types';
import { texts, type Lang } from '../i18n';
import type { LiveJobState } from './job-state.reader';

export interface RenderedStatus {
  text: string;
  /** Undefined: no buttons (edits then remove any that were there). */
  keyboard?: InlineKeyboardMarkup;
}

export type FinalOutcome = { kind: 'done' } | { kind: 'failed'; code: string } | { kind: 'cancelled' };

/** The live status message: queue place and ETA, or progress, with the Cancel button while it makes sense. */
export function renderLive(
  lang: Lang,
  state: Exclude<LiveJobState, { kind: 'final' }>,
  cancelData: string,
): RenderedStatus {
  const t = texts(lang);
  const cancel: InlineKeyboardButton = { text: t.buttonCancel, callback_data: cancelData };
  const withCancel = (text: string): RenderedStatus => ({ text, keyboard: { inline_keyboard: [[cancel]] } });
  switch (state.kind) {
    case 'queued':
      return withCancel(t.queued(state.position, state.etaSeconds === null ? null : formatEta(lang, state.etaSeconds)));
    case 'starting':
      return withCancel(t.starting(state.etaSeconds === null ? null : formatEta(lang, state.etaSeconds)));
    case 'running':
      return withCancel(t.running(state.percent, state.stage));
    case 'retrying':
      return withCancel(t.retrying);
    case 'cancelling':
      return { text: t.cancelling };
  }
}

export function renderFinal(lang: Lang, outcome: FinalOutcome): RenderedStatus {
  const t = texts(lang);
  switch (outcome.kind) {
    case 'done':
      return { text: t.done };
    case 'cancelled':
      return { text: t.cancelled };
    case 'failed':
      return { text: t.failed(failureReason(lang, outcome.code)) };
  }
}

/** Error codes from the GPU side, in plain words (the code itself is for logs and /dlq, not for users). */
export function failureReason(lang: Lang, code: string): string {
  const f = texts(lang).failure;
  if (code === 'job_timeout' || code === 'no_progress') return f.timeout;
  if (
    code === 'comfyui_validation' ||
    code === 'bad_inputs' ||
    code === 'input_expired' ||
    code === 'unknown_workflow'
  ) {
    return f.invalidInput;
  }
  if (code === 'comfyui_unavailable' || code === 'no_instance') return f.unavailable;
  return f.generic;
}

/** Coarse on purpose: an ETA that ticks every second would cost an edit every second. */
export function formatEta(lang: Lang, seconds: number): string {
  const t = texts(lang);
  if (seconds < 60) return t.etaSeconds(Math.max(5, Math.ceil(seconds / 5) * 5));
  return t.etaMinutes(Math.ceil(seconds / 60));
}

export function digestOf(status: RenderedStatus): string {
  return createHash('sha1')
    .update(status.text)
    .update('\u0000')
    .update(JSON.stringify(status.keyboard ?? null))
    .digest('hex')
    .slice(0, 16);
}
