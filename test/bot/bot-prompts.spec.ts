import type { TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { expectEventually, pollUntil } from '../support/poll-until';
import {
  botGroupPending,
  button,
  isPng,
  repliesTo,
  requestedJobs,
  sha256,
  startBotApp,
  streamEvents,
  testPng,
  waitForPolling,
  waitForReply,
  waitForResults,
} from './support/bot-harness';

describe('bot: prompts to pictures (fake Bot API + whole app)', () => {
  let fake: FakeTelegram;
  let app: TestApp;

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
    app = await startBotApp(fake, { USER_MAX_ACTIVE: '4' });
    await waitForPolling(fake);
  });

  afterAll(async () => {
    await app.stop();
    await fake.stop();
  });

  it('text → one status message edited in place (queue → progress → done) → the picture, once', async () => {
    const alice = fake.user(1001);
    const sent = fake.sendText(alice, 'a lighthouse at dusk, oil painting');
    const status = await waitForReply(fake, alice.id, sent.messageId, 'status message');
    expect(status.text).toMatch(/In the queue|Starting|Drawing/);
    expect(button(status)).toMatch(/^c:/);

    const [photo] = await waitForResults(fake, alice.id);
    expect(photo).toMatchObject({
      kind: 'photo',
      caption: 'a lighthouse at dusk, oil painting',
      replyTo: sent.messageId,
    });
    expect(isPng(photo!.file?.bytes)).toBe(true);
    const again = button(photo);
    expect(again).toMatch(/^r:/);
    expect(Buffer.byteLength(again)).toBeLessThanOrEqual(64);

    // One status message, edited in place to its final state, buttons gone; it came before the picture.
    expect(repliesTo(fake, alice.id, sent.messageId)).toHaveLength(1);
    expect(status.text).toBe('✅ Done');
    expect(status.replyMarkup).toBeUndefined();
    expect(status.edits.length).toBeGreaterThanOrEqual(1);
    expect(status.edits.at(-1)!.at).toBeLessThanOrEqual(photo!.sentAt);

    await expectEventually(async () => {
      const delivered = (await streamEvents(app, 'jobs:events')).filter((e) => e.type === 'job.delivered');
      expect(delivered).toHaveLength(1);
      expect(delivered[0]!.payload).toEqual({ chatId: alice.id, messageId: photo!.messageId });
    });
    await expectEventually(async () => expect(await botGroupPending(app)).toBe(0));
    const [job] = await requestedJobs(app);
    expect(job).toMatchObject({
      type: 'job.requested',
      payload: {
        workflow: 'txt2img',
        source: 'telegram',
        userId: `tg:${alice.id}`,
        telegram: { chatId: alice.id, userId: alice.id, messageId: sent.messageId, updateId: sent.updateId },
      },
    });
    expect(fake.photos(alice.id)).toHaveLength(1);
  });

  it('photo with a caption, and an image sent as a file with a caption → edit jobs → results', async () => {
    const bob = fake.user(1002);
    const picture = testPng(96, 64);
    const asPhoto = fake.sendPhoto(bob, { bytes: picture, caption: 'make the sky purple', width: 96, height: 64 });
    const asFile = fake.sendDocument(bob, {
      bytes: picture,
      fileName: 'original.png',
      mimeType: 'image/png',
      caption: 'add a moon',
    });
    const results = await waitForResults(fake, bob.id, 2);
    expect(results.map((r) => r.caption).sort()).toEqual(['add a moon', 'make the sky purple']);
    expect(results.map((r) => r.replyTo).sort()).toEqual([asPhoto.messageId, asFile.messageId].sort());
    const edits = (await requestedJobs(app)).filter((e) => e.type === 'job.requested' && e.payload.workflow === 'edit');
    expect(edits).toHaveLength(2);
    for (const e of edits) {
      // The largest photo size was downloaded and stored as a blob: same bytes, same hash.
      expect((e.payload as any).inputs.image.blob).toMatchObject({ hash: sha256(picture), type: 'image/png' });
    }
  });

  it('Regenerate under a picture makes the same request with a new seed', async () => {
    const carol = fake.user(1003);
    fake.sendText(carol, 'a red fox in the snow');
    const [first] = await waitForResults(fake, carol.id);
    const press = fake.pressButton(carol, carol.id, first!.messageId, button(first));
    await pollUntil(
      () => fake.callbackAnswers.find((a) => a.callbackQueryId === press.callbackQueryId),
      (a) => a !== undefined,
    );
    expect(fake.callbackAnswers.find((a) => a.callbackQueryId === press.callbackQueryId)?.text).toBe(
      'Drawing it again…',
    );
    const results = await waitForResults(fake, carol.id, 2);
    expect(results[1]!.caption).toBe('a red fox in the snow');
    const jobs = (await requestedJobs(app)).filter(
      (e) => e.type === 'job.requested' && e.payload.userId === `tg:${carol.id}`,
    );
    expect(jobs).toHaveLength(2);
    const seeds = jobs.map((j) => (j.payload as any).inputs.seed);
    expect(seeds[0]).not.toEqual(seeds[1]);
    expect((jobs[1]!.payload as any).inputs.prompt).toBe('a red fox in the snow');
  });
});
