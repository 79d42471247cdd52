import { reduceJobView } from '../../src/modules/generation/projection/job-view.reducer';
import type { JobView } from '../../src/modules/generation/projection/job-view';
import { makeEnvelope } from '../../src/streams/envelope.codec';
import type { AnyJobEnvelope } from '../../src/streams/job-event.types';

const JOB = '5d0f3a52-0c43-4d4e-9a36-0d9f0b6f1c11';
const PROMPT = '9762fde0-1277-55f8-85f6-64cf9ce3861f';

function started(attempt: number, at: string, worker: string): AnyJobEnvelope {
  return makeEnvelope(
    'job.started',
    { jobId: JOB, actor: worker, occurredAt: new Date(at) },
    { worker, instance: 'comfy-0', promptId: PROMPT, attempt },
  ) as AnyJobEnvelope;
}

describe('job view reducer: startedAt', () => {
  const running: JobView = { id: JOB, status: 'queued', attempt: 1 };

  it('keeps the first start when a worker that took the job over announces the re-attached prompt again', () => {
    const first = reduceJobView(running, started(1, '2026-12-07T05:19:29.162Z', 'gpu-a-0'));
    const reattached = reduceJobView(first, started(2, '2026-12-07T05:19:38.655Z', 'gpu-b-0'));
    expect(reattached).toMatchObject({ status: 'running', attempt: 2, startedAt: '2026-12-07T05:19:29.162Z' });
  });

  it('sets it on the first start, whichever attempt that is', () => {
    const view = reduceJobView({ ...running, attempt: 2 }, started(2, '2026-12-07T05:19:38.655Z', 'gpu-b-0'));
    expect(view.startedAt).toBe('2026-12-07T05:19:38.655Z');
  });
});
