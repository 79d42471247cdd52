import { randomUUID } from 'node:crypto';
import { StreamPublisher } from '../../src/streams/stream.publisher';
import type { TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import type { BotMessage } from '../support/fake-telegram/fake-telegram.types';
import { pollUntil } from '../support/poll-until';
import { requestedJobs, startBotApp, waitForPolling, waitForReply, waitForText } from './support/bot-harness';

const PROGRESS = /Drawing… \d+%/;
/** Progress edits of the chat to wait for: four turns each if they are shared fairly. */
const EDITS = 8;

describe("bot: a chat's status messages share its edit budget", () => {
  let fake: FakeTelegram;
  let app: TestApp;

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
    // No gpu role: the test plays the worker, so it decides how often each job reports progress.
    app = await startBotApp(fake, { ROLE: 'bot,projector' });
    await waitForPolling(fake);
  });

  afterAll(async () => {
    await app.stop();
    await fake.stop();
  });

  const progressEdits = (message: BotMessage) => message.edits.filter((e) => PROGRESS.test(e.text ?? '')).length;

  it('two pictures drawn at once take turns: the one with fewer ticks still shows its progress as often', async () => {
    const user = fake.user(9201);
    const sent = [fake.sendText(user, 'a windmill at dawn'), fake.sendText(user, 'a windmill at dusk')];
    const statuses: BotMessage[] = [];
    for (const s of sent) statuses.push(await waitForReply(fake, user.id, s.messageId, 'status message'));
    const jobs = await pollUntil(
      () => requestedJobs(app),
      (j) => j.length === 2,
    );
    const publisher = app.app.get(StreamPublisher);
    const metas = sent.map((s) => {
      const job = jobs.find((j) => (j.payload as any).telegram.messageId === s.messageId)!;
      return { jobId: job.jobId, correlationId: job.correlationId, actor: 'test-worker' };
    });
    for (const meta of metas) {
      await publisher.publish('job.started', meta, { worker: 'test', instance: 'test', promptId: randomUUID() });
    }
    for (const status of statuses) await waitForText(status, /Drawing/);

    // The first job reports a new 5% step every 50 ms, the second one every second: both always have news.
    const [busy, calm] = metas as [(typeof metas)[number], (typeof metas)[number]];
    const chatEdits = () => statuses.reduce((n, s) => n + progressEdits(s), 0);
    const deadline = Date.now() + 40_000;
    for (let tick = 1; chatEdits() < EDITS && Date.now() < deadline; tick++) {
      await publisher.publish('job.progress', busy, { value: (tick * 50) % 1000, max: 1000 });
      if (tick % 20 === 0) await publisher.publish('job.progress', calm, { value: (tick / 20) % 20, max: 20 });
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(chatEdits()).toBeGreaterThanOrEqual(EDITS);

    const [busyEdits, calmEdits] = statuses.map(progressEdits) as [number, number];
    expect(calmEdits).toBeGreaterThanOrEqual(busyEdits - 1);
    expect(busyEdits).toBeGreaterThanOrEqual(calmEdits - 1);
    // Still one edit per chat per interval, whichever message it went to.
    const edits = fake.calls.filter((c) => c.chatId === user.id && c.method === 'editMessageText' && c.status === 200);
    for (let k = 1; k < edits.length; k++) expect(edits[k]!.at - edits[k - 1]!.at).toBeGreaterThanOrEqual(1_000);
  });
});
