import { cli } from '../cli/cli-harness';
import { DeadLetterWriter } from '../../src/streams/dead-letter.writer';
import { encodeEnvelope, ENVELOPE_FIELD, makeEnvelope } from '../../src/streams/envelope.codec';
import { StreamKeys } from '../../src/streams/stream-keys';
import type { TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import type { FakeUser } from '../support/fake-telegram/fake-telegram.types';
import { expectEventually, pollUntil } from '../support/poll-until';
import { requestedJobs, startBotApp, testPng, waitForPolling, waitForReply, waitForText } from './support/bot-harness';

const ADMIN = 6001;

describe('bot: commands, admin commands, bad updates', () => {
  let fake: FakeTelegram;
  let app: TestApp;
  let keys: StreamKeys;

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
    // No gpu role: jobs stay queued, which is all these tests need.
    app = await startBotApp(fake, {
      ROLE: 'bot,projector',
      TELEGRAM_ADMIN_IDS: `${ADMIN}, 6999`,
      USER_MAX_ACTIVE: '6',
    });
    keys = new StreamKeys(app.prefix);
    await waitForPolling(fake);
  });

  afterAll(async () => {
    await app.stop();
    await fake.stop();
  });

  /** Sends `text` as `user` and returns the bot's answer to it. */
  async function ask(user: FakeUser, text: string): Promise<string> {
    const sent = fake.sendText(user, text);
    return (await waitForReply(fake, user.id, sent.messageId, `answer to ${text.slice(0, 30)}`)).text ?? '';
  }

  it('refuses every admin command to a non-admin with "not allowed", and changes nothing', async () => {
    const user = fake.user(6101);
    for (const command of ['/stats', '/dlq', '/redrive 1-0', '/drain']) {
      expect(await ask(user, command)).toBe('Not allowed: this command is for the bot administrators.');
    }
    expect(await app.redis.exists(keys.drainFlag)).toBe(0);
  });

  it('admin: /drain stops new jobs (users hear why), /drain off resumes, /stats and /dlq report', async () => {
    const admin = fake.user(ADMIN);
    const user = fake.user(6102);
    expect(await ask(admin, '/drain')).toMatch(/^Draining/);
    expect(await app.redis.exists(keys.drainFlag)).toBe(1);
    expect(await ask(user, 'a prompt while draining')).toBe(
      'I am not taking new pictures right now (maintenance). Please try again in a few minutes.',
    );
    expect(await ask(admin, '/drain off')).toBe('Taking new jobs again.');
    expect(await app.redis.exists(keys.drainFlag)).toBe(0);

    // A gpu process's advert (this app runs no gpu role), so the fleet figures are not all zero.
    const advert = { slots: 3, instances: ['i-1', 'i-2'], expiresAt: Date.now() + 60_000 };
    await app.redis.hset(keys.gpuWorkers, 'gpu-host:1', JSON.stringify(advert));
    const stats = await ask(admin, '/stats');
    expect(stats).toMatch(/^Queue: \d+/);
    expect(stats).toMatch(/DLQ: \d+/);
    expect(stats).toMatch(/bot on jobs:events: lag \d+, pending \d+/);
    // One source of figures: the bot's /stats says what `cli stats` (and /metrics, /health) read.
    const snapshot = JSON.parse((await cli(app.prefix, ['stats', '--json'])).out);
    await app.redis.hdel(keys.gpuWorkers, 'gpu-host:1');
    expect(stats).toContain(`Queue: ${snapshot.queueLength}\n`);
    expect(stats).toContain(`DLQ: ${snapshot.dlqSize}\n`);
    expect(stats).toContain(
      `GPU workers: ${snapshot.capacity.workers}; ComfyUI instances drawing at once: ${snapshot.capacity.instances} ` +
        `(${snapshot.capacity.slots} job slots)`,
    );
    expect(stats).toContain('GPU workers: 1; ComfyUI instances drawing at once: 2 (3 job slots)');
    expect(await ask(admin, '/dlq')).toBe('The DLQ is empty.');
    expect(await ask(admin, '/redrive')).toBe('Usage: /redrive <dlq entry id> (see /dlq)');
    expect(await ask(admin, '/redrive 1-1')).toBe('No DLQ entry 1-1.');
  });

  it('admin: /dlq lists a dead job and /redrive turns it into a new job with its own status message', async () => {
    const admin = fake.user(ADMIN);
    const victim = fake.user(6103);
    // A Telegram job whose request the gpu group gave up on.
    const dead = makeEnvelope(
      'job.requested',
      { jobId: '11111111-2222-4333-8444-555555555555', correlationId: 'c-dead', actor: 'tg:6103' },
      {
        workflow: 'txt2img',
        inputs: { prompt: 'a dead prompt', seed: 5 },
        userId: `tg:${victim.id}`,
        source: 'telegram',
        telegram: { chatId: victim.id, userId: victim.id },
      },
    );
    await new DeadLetterWriter(app.redis, keys).write({
      stream: keys.requests,
      group: 'gpu',
      consumer: 'gpu-test-1',
      id: '1-1',
      fields: [ENVELOPE_FIELD, encodeEnvelope(dead)],
      deliveries: 5,
      reason: 'exceeded MAX_DELIVERIES (5)',
      envelope: dead,
      endsJob: true,
    });
    const [[dlqId]] = (await app.redis.xrange(keys.dlq, '-', '+')) as [string, string[]][];
    const listing = await ask(admin, '/dlq');
    expect(listing).toContain(`${dlqId!} job.requested job 11111111-2222-4333-8444-555555555555`);
    expect(listing).toContain('exceeded MAX_DELIVERIES (5)');

    expect(await ask(admin, `/redrive ${dlqId!} fleet fixed`)).toMatch(
      new RegExp(`^Re-drove ${dlqId!}: job [0-9a-f-]{36}$`),
    );
    // The CLI's semantics (one operator service): the entry stays as the record, the new job carries an audit.
    expect(await app.redis.xlen(keys.dlq)).toBe(1);
    const redriven = (await requestedJobs(app)).find((e) => (e.payload as any).redriveOf === dlqId);
    expect(redriven).toMatchObject({
      payload: {
        source: 'redrive',
        inputs: { prompt: 'a dead prompt' },
        redrive: { by: `tg-admin:${ADMIN}`, reason: 'fleet fixed', dlqEntryId: dlqId, originalJobId: dead.jobId },
      },
    });
    // Once: the bot says what it became; so does the CLI, for the same entry.
    expect(await ask(admin, `/redrive ${dlqId!}`)).toBe(`${dlqId!} was already re-driven as job ${redriven!.jobId}.`);
    const fromCli = await cli(app.prefix, ['dlq', 'redrive', dlqId!]);
    expect(fromCli.code).not.toBe(0);
    expect(fromCli.err).toContain(`already re-driven as job ${redriven!.jobId}`);
    expect((await requestedJobs(app)).filter((e) => (e.payload as any).redriveOf === dlqId)).toHaveLength(1);
    expect(await ask(admin, '/dlq')).toContain(`→ ${redriven!.jobId}`);
    // The victim's chat gets a live status message for the new job.
    const status = await pollUntil(
      () => fake.botMessages(victim.id),
      (m) => m.length > 0,
    );
    expect(status[0]!.text).toMatch(/In the queue|Starting/);
  });

  it('answers bad updates politely, makes no job, and keeps working', async () => {
    const user = fake.user(6104);
    const before = (await requestedJobs(app)).length;
    const expectations: [() => { messageId?: number }, string | RegExp][] = [
      [() => fake.sendSticker(user), 'I understand text prompts and photos with a caption. See /help.'],
      [
        () => fake.sendPhoto(user, { bytes: testPng(8, 8), caption: 'too big', declaredSize: 25 * 1024 * 1024 }),
        'That file is too large; I can take pictures up to 10 MB.',
      ],
      [
        () => fake.sendPhoto(user, { bytes: testPng(8, 8) }),
        'Add a caption to the photo saying how to change it, and send it again.',
      ],
      [() => fake.sendPhoto(user, { bytes: testPng(8, 8), caption: '   ' }), /^Add a caption/],
      [
        () =>
          fake.sendDocument(user, {
            bytes: Buffer.from('%PDF-1.7'),
            fileName: 'a.pdf',
            mimeType: 'application/pdf',
            caption: 'x',
          }),
        'That file is not a picture I can read (PNG, JPEG or WebP).',
      ],
      [
        () =>
          fake.sendDocument(user, {
            bytes: Buffer.from('not really a png'),
            fileName: 'b.png',
            mimeType: 'image/png',
            caption: 'x',
          }),
        'That file is not a picture I can read (PNG, JPEG or WebP).',
      ],
      [() => fake.sendText(user, '/frobnicate now'), "I don't know the command /frobnicate. See /help."],
      [
        () => fake.sendText(user, 'x'.repeat(5_000)),
        'That prompt is 5000 characters long; the limit is 2000. Please shorten it.',
      ],
    ];
    for (const [send, expected] of expectations) {
      const sent = send();
      const reply = await waitForReply(fake, user.id, sent.messageId, String(expected));
      if (typeof expected === 'string') expect(reply.text).toBe(expected);
      else expect(reply.text).toMatch(expected);
    }
    expect((await requestedJobs(app)).length).toBe(before);
    // Still up: a good prompt is taken.
    const good = fake.sendText(user, 'a good prompt after all that');
    await waitForText(await waitForReply(fake, user.id, good.messageId), /In the queue/);
    expect((await requestedJobs(app)).length).toBe(before + 1);
  });

  it('/help, /settings (language and size buttons), /status and /cancel', async () => {
    const user = fake.user(6105, { languageCode: 'en' });
    expect(await ask(user, '/start')).toMatch(/^Send me a text prompt/);
    expect(await ask(user, '/help')).not.toMatch(/Admin:/);
    expect(await ask(fake.user(ADMIN), '/help')).toMatch(/Admin:/);

    const settingsSent = fake.sendText(user, '/settings');
    const settings = await waitForReply(fake, user.id, settingsSent.messageId);
    expect(settings.text).toMatch(/^Language: English\nPicture size: default \(1024×1024\)/);
    const size = settings.replyMarkup!.inline_keyboard.flat().find((b) => b.callback_data === 's:z:512')!;
    fake.pressButton(user, user.id, settings.messageId, size.callback_data!);
    await waitForText(settings, /Picture size: 512×512/);
    const ru = settings.replyMarkup!.inline_keyboard.flat().find((b) => b.callback_data === 's:l:ru')!;
    fake.pressButton(user, user.id, settings.messageId, ru.callback_data!);
    await waitForText(settings, /^Язык: Русский/);
    expect(fake.callbackAnswers.slice(-2).map((a) => a.text)).toEqual(['Saved', 'Сохранено']);

    expect(await ask(user, '/status')).toBe('У вас ничего нет в работе.');
    const prompt = fake.sendText(user, 'маяк на закате');
    const status = await waitForReply(fake, user.id, prompt.messageId);
    await waitForText(status, /В очереди: №\d+/);
    const job = (await requestedJobs(app)).find((e) => (e.payload as any).userId === `tg:${user.id}`)!;
    expect((job.payload as any).inputs).toMatchObject({ width: 512, height: 512 });
    expect(await ask(user, '/status')).toMatch(/^В работе: 1\n1\. маяк на закате — ⏳ В очереди: №\d+/);
    expect(await ask(user, '/cancel')).toBe('Отменено картинок: 1.');
    await waitForText(status, /^🚫 Отменено$/);
    await expectEventually(async () => expect(await ask(user, '/status')).toBe('У вас ничего нет в работе.'));
  });

  it('/status numbers the pictures in queue order', async () => {
    const user = fake.user(6106);
    const prompts = ['first', 'second', 'third', 'fourth', 'fifth', 'sixth'].map((n) => `${n} picture of six`);
    for (const prompt of prompts) {
      const sent = fake.sendText(user, prompt);
      await waitForText(await waitForReply(fake, user.id, sent.messageId, prompt), /In the queue/);
    }
    const lines = (await ask(user, '/status')).split('\n');
    expect(lines[0]).toBe('In progress: 6');
    const listed = lines.slice(1).map((line) => /^(\d+)\. (.+) — ⏳ In the queue: #(\d+)/.exec(line));
    expect(listed.map((m) => m?.[1])).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(listed.map((m) => m?.[2])).toEqual(prompts);
    const positions = listed.map((m) => Number(m?.[3]));
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });
});
