import type { Messages } from './messages';

export const en: Messages = {
  help: (isAdmin) =>
    [
      'Send me a text prompt and I will draw it. Send a photo with a caption and I will edit the photo as the caption says.',
      '',
      'While a picture is being made, one message shows its place in the queue and then its progress; the Cancel button stops it.',
      '',
      '/status — your pictures in progress',
      '/cancel — cancel all of them',
      '/settings — language and picture size',
      '/help — this text',
      ...(isAdmin
        ? [
            '',
            'Admin:',
            '/stats — queue, lag, GPU instances, DLQ',
            '/dlq — recent dead letters',
            '/redrive <id> — retry a dead letter',
            '/drain — stop taking new jobs (/drain off to resume)',
          ]
        : []),
    ].join('\n'),

  queued: (position, eta) => `⏳ In the queue: #${position}${eta ? `, about ${eta}` : ''}`,
  starting: (eta) => `⏳ Starting…${eta ? ` (about ${eta})` : ''}`,
  running: (percent, stage) =>
    `🎨 Drawing… ${percent === null ? '' : `${percent}%`}${stage ? ` (${stage})` : ''}`.trimEnd(),
  retrying: '🔁 Something went wrong on the GPU server; trying again…',
  cancelling: '✋ Cancelling…',
  done: '✅ Done',
  failed: (reason) => `❌ Failed: ${reason}`,
  cancelled: '🚫 Cancelled',
  resultCaption: (prompt) => prompt,
  resultExpired: 'The picture is ready but it expired before I could send it. Please send the prompt again.',
  etaSeconds: (seconds) => `${seconds} s`,
  etaMinutes: (minutes) => `${minutes} min`,

  buttonCancel: 'Cancel',
  buttonRegenerate: '🔄 Again',

  failure: {
    timeout: 'the GPU server took too long.',
    invalidInput: 'the GPU server could not use this prompt or picture.',
    unavailable: 'no GPU server is available right now. Please try again later.',
    generic: 'something went wrong on the GPU server. Please try again.',
  },

  promptEmpty: 'Please send a text prompt describing the picture.',
  promptTooLong: (length, max) => `That prompt is ${length} characters long; the limit is ${max}. Please shorten it.`,
  captionNeeded: 'Add a caption to the photo saying how to change it, and send it again.',
  photoTooLarge: (maxMb) => `That file is too large; I can take pictures up to ${maxMb} MB.`,
  notAnImage: 'That file is not a picture I can read (PNG, JPEG or WebP).',
  editUnavailable: 'Photo editing is not available on this bot right now; send a text prompt instead.',
  unsupportedMessage: 'I understand text prompts and photos with a caption. See /help.',
  unknownCommand: (command) => `I don't know the command ${command}. See /help.`,
  invalidInput: (details) => `I can't use that: ${details}`,
  userLimit: (active, limit) =>
    `You already have ${pictures(active)} in progress; the limit is ${limit}. Wait for one to finish or /cancel it.`,
  overloaded: 'Too many pictures are waiting right now. Please try again in a minute.',
  notAcceptedNow: 'I could not take this picture safely right now. Please send it again in a few seconds.',
  noCapableInstance: (missing) =>
    `I cannot draw this: none of my GPU servers has what it needs (${missing}). Try another model, or ask the admin to install it.`,
  draining: 'I am not taking new pictures right now (maintenance). Please try again in a few minutes.',
  downloadFailed: 'I could not download that photo from Telegram. Please send it again.',
  internalError: 'Something went wrong on my side. Please try again.',

  cancelAnswer: 'Cancelled',
  cancellingAnswer: 'Cancelling…',
  cancelUnderWay: 'The cancel is under way.',
  alreadyFinished: 'This picture is already finished.',
  notYourJob: 'This button is not yours.',
  buttonExpired: 'This button has expired.',
  regenerating: 'Drawing it again…',
  cancelCommandDone: (count) => `Cancelled ${pictures(count)}.`,
  nothingToCancel: 'You have nothing in progress.',

  statusNone: 'You have nothing in progress.',
  statusHeader: (count) => `In progress: ${count}`,
  statusLine: (index, prompt, state) => `${index}. ${prompt} — ${state}`,

  settings: (language, size) => `Language: ${language}\nPicture size: ${size}\n\nChoose below.`,
  settingsDefaultSize: (size) => `default (${size}×${size})`,
  settingsDefaultButton: 'default',
  settingsSaved: 'Saved',
  settingsUsage: 'Usage: /settings, or /settings lang en|ru, or /settings size 512|768|1024',

  notAllowed: 'Not allowed: this command is for the bot administrators.',
  stats: (s) =>
    [
      `Queue: ${s.queue}`,
      `GPU workers: ${s.workers}; ComfyUI instances drawing at once: ${s.instances} (${s.slots} job slots)`,
      `DLQ: ${s.dlq}`,
      `Taking new jobs: ${s.draining ? 'no (draining)' : 'yes'}`,
      '',
      'Consumer groups:',
      s.groups || '—',
    ].join('\n'),
  statsGroup: (group, stream, lag, pending) => `${group} on ${stream}: lag ${lag}, pending ${pending}`,
  dlqEmpty: 'The DLQ is empty.',
  dlqHeader: (total) => `DLQ: ${total} entries (newest first)`,
  dlqLine: (id, type, jobId, reason) => `${id} ${type} job ${jobId}\n  ${reason}`,
  redriveUsage: 'Usage: /redrive <dlq entry id> (see /dlq)',
  redriveNotFound: (id) => `No DLQ entry ${id}.`,
  redriveDone: (id, target) => `Re-drove ${id}: ${target}`,
  redriveAlready: (id, jobId) => `${id} was already re-driven as job ${jobId}.`,
  redriveRefused: (id, why) => `${id} cannot be re-driven: ${why}.`,
  redriveInputsExpired: (id) =>
    `${id}: its input image is no longer stored, so the job would fail. Use the CLI with --force to re-drive anyway.`,
  drainOn: 'Draining: new jobs are refused; running and queued jobs finish. /drain off resumes.',
  drainOff: 'Taking new jobs again.',
};

function pictures(count: number): string {
  return `${count} ${count === 1 ? 'picture' : 'pictures'}`;
}
