/** Every text the bot shows, per language. A missing or extra key in a language is a compile error. */
export interface Messages {
  help(isAdmin: boolean): string;

  queued(position: number, eta: string | null): string;
  /** Taken by a worker, waiting on an instance: the ETA when known. */
  starting(eta: string | null): string;
  running(percent: number | null, stage: string | null): string;
  retrying: string;
  cancelling: string;
  done: string;
  failed(reason: string): string;
  cancelled: string;
  resultCaption(prompt: string): string;
  resultExpired: string;
  etaSeconds(seconds: number): string;
  etaMinutes(minutes: number): string;

  buttonCancel: string;
  buttonRegenerate: string;

  failure: {
    timeout: string;
    invalidInput: string;
    unavailable: string;
    generic: string;
  };

  promptEmpty: string;
  promptTooLong(length: number, max: number): string;
  captionNeeded: string;
  photoTooLarge(maxMb: number): string;
  notAnImage: string;
  editUnavailable: string;
  unsupportedMessage: string;
  unknownCommand(command: string): string;
  invalidInput(details: string): string;
  userLimit(active: number, limit: number): string;
  draining: string;
  /** Redis or the image store is near capacity: the job was refused, nothing was queued. */
  overloaded: string;
  /** The job could not be confirmed by the Redis replicas (REDIS_MIN_REPLICAS_ACK): not accepted now. */
  notAcceptedNow: string;
  /** No GPU instance has what the job needs (a model file, a node): `missing` names it, for the admin to fix. */
  noCapableInstance(missing: string): string;
  downloadFailed: string;
  internalError: string;

  cancelAnswer: string;
  cancellingAnswer: string;
  /** A second Cancel press while the first one is still being carried out (the chat does not show it yet). */
  cancelUnderWay: string;
  alreadyFinished: string;
  notYourJob: string;
  buttonExpired: string;
  regenerating: string;
  cancelCommandDone(count: number): string;
  nothingToCancel: string;

  statusNone: string;
  statusHeader(count: number): string;
  statusLine(index: number, prompt: string, state: string): string;

  settings(language: string, size: string): string;
  settingsDefaultSize(size: number): string;
  /** The size button for the default: the same word as settingsDefaultSize. */
  settingsDefaultButton: string;
  settingsSaved: string;
  settingsUsage: string;

  notAllowed: string;
  stats(s: {
    queue: number;
    groups: string;
    workers: number;
    instances: number;
    slots: number;
    dlq: number;
    draining: boolean;
  }): string;
  statsGroup(group: string, stream: string, lag: string, pending: number): string;
  dlqEmpty: string;
  dlqHeader(total: number): string;
  dlqLine(id: string, type: string, jobId: string, reason: string): string;
  redriveUsage: string;
  redriveNotFound(id: string): string;
  redriveDone(id: string, target: string): string;
  /** Entry re-driven before (by anyone, CLI included): the job it became. */
  redriveAlready(id: string, jobId: string): string;
  /** Why an entry cannot be re-driven (not a request, or from a group that does not run jobs). */
  redriveRefused(id: string, why: string): string;
  redriveInputsExpired(id: string): string;
  drainOn: string;
  drainOff: string;
}
