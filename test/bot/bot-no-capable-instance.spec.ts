import { capabilitiesFromObjectInfo, PoolCapabilityStore } from '../../src/modules/capabilities';
import { StreamKeys } from '../../src/streams/stream-keys';
import { ComfyUiSimulator } from '../../src/tools/comfyui-sim/comfyui-simulator';
import type { TestApp } from '../support/app-harness';
import { FakeTelegram } from '../support/fake-telegram/fake-telegram.server';
import { requestedJobs, startBotApp, waitForPolling, waitForReply } from './support/bot-harness';

describe('bot: a job no GPU instance can run', () => {
  let fake: FakeTelegram;
  let app: TestApp;
  let bare: ComfyUiSimulator;

  beforeAll(async () => {
    fake = new FakeTelegram();
    await fake.start();
    app = await startBotApp(fake, { ROLE: 'bot,projector' });
    // What a gpu process publishes for an instance without checkpoints (read from a simulator's /object_info).
    bare = new ComfyUiSimulator({ models: { checkpoints: [] } });
    await bare.start();
    const caps = capabilitiesFromObjectInfo(await (await fetch(`${bare.url}/object_info`)).json(), 'h', Date.now());
    await new PoolCapabilityStore(app.redis, new StreamKeys(app.prefix)).publish([
      { instanceId: 'gpu-a_8188', state: 'up', capabilities: caps, expiresAt: Date.now() + 600_000 },
    ]);
    await waitForPolling(fake);
  });

  afterAll(async () => {
    await app.stop();
    await fake.stop();
    await bare.stop();
  });

  it('answers in plain words which model is missing, and queues nothing', async () => {
    const user = fake.user(7301);
    const sent = fake.sendText(user, 'a lighthouse at dusk');
    const reply = await waitForReply(fake, user.id, sent.messageId, 'refusal');
    expect(reply.text).toBe(
      'I cannot draw this: none of my GPU servers has what it needs (model "sd_xl_base_1.0.safetensors" ' +
        '(CheckpointLoaderSimple.ckpt_name, node 4)). Try another model, or ask the admin to install it.',
    );
    expect(reply.text).not.toContain('gpu-a_8188');
    expect(await requestedJobs(app)).toHaveLength(0);
  });
});
