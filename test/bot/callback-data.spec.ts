import { randomUUID } from 'node:crypto';
import { CallbackSigner } from '../../src/modules/bot/updates/callback-data';

describe('CallbackSigner (job buttons)', () => {
  const signer = new CallbackSigner('123456:TEST-token-for-signing-0000');
  const jobId = randomUUID();

  it('fits in 64 bytes and round-trips for the user it was made for', () => {
    for (const action of ['cancel', 'regenerate'] as const) {
      const data = signer.sign(action, jobId, 42);
      expect(Buffer.byteLength(data)).toBeLessThanOrEqual(64);
      expect(signer.verify(data, 42)).toEqual({ ok: true, action, jobId });
    }
  });

  it('refuses the same data pressed by someone else, tampered data, and another bot token', () => {
    const data = signer.sign('cancel', jobId, 42);
    expect(signer.verify(data, 43)).toEqual({ ok: false, reason: 'forged' });
    const otherJob = signer.sign('cancel', randomUUID(), 42);
    const spliced = `${otherJob.slice(0, 25)}${data.slice(25)}`; // another job's id with this signature
    expect(signer.verify(spliced, 42)).toEqual({ ok: false, reason: 'forged' });
    expect(signer.verify(`r${data.slice(1)}`, 42)).toEqual({ ok: false, reason: 'forged' }); // cancel → regenerate
    expect(new CallbackSigner('123456:TEST-another-token-000000').verify(data, 42)).toEqual({
      ok: false,
      reason: 'forged',
    });
  });

  it('calls anything else malformed', () => {
    for (const data of [
      '',
      'c:',
      'x:abc:def',
      `c:${jobId}:AAAAAAAAAAA`,
      's:l:en',
      'c:AAAAAAAAAAAAAAAAAAAAAA:too-short',
    ]) {
      expect(signer.verify(data, 42)).toEqual({ ok: false, reason: 'malformed' });
    }
  });
});
