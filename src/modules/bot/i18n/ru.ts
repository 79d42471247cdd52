import type { Messages } from './messages';

export const ru: Messages = {
  help: (isAdmin) =>
    [
      'Пришлите текстовое описание, и я нарисую картинку. Пришлите фото с подписью, и я изменю фото так, как сказано в подписи.',
      '',
      'Пока картинка готовится, одно сообщение показывает место в очереди, а затем прогресс; кнопка «Отмена» её останавливает.',
      '',
      '/status — ваши картинки в работе',
      '/cancel — отменить их все',
      '/settings — язык и размер картинки',
      '/help — эта справка',
      ...(isAdmin
        ? [
            '',
            'Администратору:',
            '/stats — очередь, отставание, GPU-инстансы, DLQ',
            '/dlq — последние мёртвые письма',
            '/redrive <id> — повторить мёртвое письмо',
            '/drain — перестать принимать задачи (/drain off — снова принимать)',
          ]
        : []),
    ].join('\n'),

  queued: (position, eta) => `⏳ В очереди: №${position}${eta ? `, примерно ${eta}` : ''}`,
  starting: (eta) => `⏳ Запускаю…${eta ? ` (примерно ${eta})` : ''}`,
  running: (percent, stage) =>
    `🎨 Рисую… ${percent === null ? '' : `${percent}%`}${stage ? ` (${stage})` : ''}`.trimEnd(),
  retrying: '🔁 На GPU-сервере что-то пошло не так; пробую ещё раз…',
  cancelling: '✋ Отменяю…',
  done: '✅ Готово',
  failed: (reason) => `❌ Не получилось: ${reason}`,
  cancelled: '🚫 Отменено',
  resultCaption: (prompt) => prompt,
  resultExpired: 'Картинка была готова, но устарела раньше, чем я успел её отправить. Пришлите запрос ещё раз.',
  etaSeconds: (seconds) => `${seconds} с`,
  etaMinutes: (minutes) => `${minutes} мин`,

  buttonCancel: 'Отмена',
  buttonRegenerate: '🔄 Ещё раз',

  failure: {
    timeout: 'GPU-сервер работал слишком долго.',
    invalidInput: 'GPU-сервер не смог использовать этот запрос или картинку.',
    unavailable: 'сейчас нет свободного GPU-сервера. Попробуйте позже.',
    generic: 'на GPU-сервере что-то пошло не так. Попробуйте ещё раз.',
  },

  promptEmpty: 'Пришлите текстовое описание картинки.',
  promptTooLong: (length, max) => `В запросе ${length} символов, а можно не больше ${max}. Сократите его, пожалуйста.`,
  captionNeeded: 'Добавьте к фото подпись — что в нём изменить — и пришлите ещё раз.',
  photoTooLarge: (maxMb) => `Файл слишком большой: я принимаю картинки до ${maxMb} МБ.`,
  notAnImage: 'Этот файл — не картинка, которую я умею читать (PNG, JPEG или WebP).',
  editUnavailable: 'Редактирование фото сейчас недоступно; пришлите текстовый запрос.',
  unsupportedMessage: 'Я понимаю текстовые запросы и фото с подписью. См. /help.',
  unknownCommand: (command) => `Я не знаю команду ${command}. См. /help.`,
  invalidInput: (details) => `Не могу это использовать: ${details}`,
  userLimit: (active, limit) =>
    `У вас уже ${pictures(active)} в работе, а можно не больше ${limit}. Дождитесь окончания или отмените (/cancel).`,
  overloaded: 'Сейчас слишком много задач в очереди. Попробуйте через минуту.',
  notAcceptedNow: 'Сейчас не получилось надёжно принять задачу. Отправьте её ещё раз через несколько секунд.',
  noCapableInstance: (missing) =>
    `Не могу это нарисовать: ни на одном GPU-сервере нет нужного (${missing}). Выберите другую модель или попросите администратора её установить.`,
  draining: 'Сейчас я не принимаю новые задачи (техработы). Попробуйте через несколько минут.',
  downloadFailed: 'Не удалось скачать фото из Telegram. Пришлите его ещё раз.',
  internalError: 'У меня что-то сломалось. Попробуйте ещё раз.',

  cancelAnswer: 'Отменено',
  cancellingAnswer: 'Отменяю…',
  cancelUnderWay: 'Отмена уже идёт.',
  alreadyFinished: 'Эта картинка уже готова.',
  notYourJob: 'Это не ваша кнопка.',
  buttonExpired: 'Эта кнопка устарела.',
  regenerating: 'Рисую ещё раз…',
  cancelCommandDone: (count) => `Отменено картинок: ${count}.`,
  nothingToCancel: 'У вас ничего нет в работе.',

  statusNone: 'У вас ничего нет в работе.',
  statusHeader: (count) => `В работе: ${count}`,
  statusLine: (index, prompt, state) => `${index}. ${prompt} — ${state}`,

  settings: (language, size) => `Язык: ${language}\nРазмер картинки: ${size}\n\nВыберите ниже.`,
  settingsDefaultSize: (size) => `по умолчанию (${size}×${size})`,
  settingsDefaultButton: 'по умолчанию',
  settingsSaved: 'Сохранено',
  settingsUsage: 'Использование: /settings, или /settings lang en|ru, или /settings size 512|768|1024',

  notAllowed: 'Нельзя: эта команда только для администраторов бота.',
  stats: (s) =>
    [
      `Очередь: ${s.queue}`,
      `GPU-воркеры: ${s.workers}; инстансов ComfyUI рисуют одновременно: ${s.instances} (слотов для задач: ${s.slots})`,
      `DLQ: ${s.dlq}`,
      `Приём новых задач: ${s.draining ? 'нет (drain)' : 'да'}`,
      '',
      'Группы потребителей:',
      s.groups || '—',
    ].join('\n'),
  statsGroup: (group, stream, lag, pending) => `${group} на ${stream}: отставание ${lag}, в обработке ${pending}`,
  dlqEmpty: 'DLQ пуста.',
  dlqHeader: (total) => `DLQ: записей ${total} (сначала новые)`,
  dlqLine: (id, type, jobId, reason) => `${id} ${type} задача ${jobId}\n  ${reason}`,
  redriveUsage: 'Использование: /redrive <id записи DLQ> (см. /dlq)',
  redriveNotFound: (id) => `Нет записи DLQ ${id}.`,
  redriveDone: (id, target) => `Запись ${id} отправлена заново: ${target}`,
  redriveAlready: (id, jobId) => `Запись ${id} уже отправлена заново: задача ${jobId}.`,
  redriveRefused: (id, why) => `Запись ${id} нельзя отправить заново: ${why}.`,
  redriveInputsExpired: (id) =>
    `${id}: входное изображение уже удалено, задача не выполнится. Чтобы всё равно отправить, используйте CLI с --force.`,
  drainOn:
    'Режим drain: новые задачи не принимаются; начатые и стоящие в очереди доделываются. /drain off — снова принимать.',
  drainOff: 'Снова принимаю новые задачи.',
};

/** 1 картинка, 2–4 картинки, 5–20 картинок, 21 картинка… */
function pictures(count: number): string {
  const tens = count % 100;
  const ones = count % 10;
  const word =
    tens >= 11 && tens <= 14 ? 'картинок' : ones === 1 ? 'картинка' : ones >= 2 && ones <= 4 ? 'картинки' : 'картинок';
  return `${count} ${word}`;
}
