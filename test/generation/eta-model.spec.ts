import { simulateFinishMs } from '../../src/modules/generation/eta/finish-time.simulator';
import { runCostKeyOf, workflowOf, workOf } from '../../src/modules/generation/eta/run-cost';
import { PRIOR_MS_PER_WORK, predictRunMs } from '../../src/modules/generation/eta/run-time.predictor';

describe('ETA model', () => {
  describe('cost classes', () => {
    it('class = workflow, quarter megapixels and steps; work = megapixels × steps', () => {
      const key = runCostKeyOf('txt2img', { width: 1024, height: 1024, steps: 30, prompt: 'x' });
      expect(key).toBe('txt2img:1mp:30s');
      expect(workOf(key)).toBe(30);
      expect(workflowOf(key)).toBe('txt2img');
      expect(runCostKeyOf('edit', { prompt: 'x' })).toBe('edit:1mp:20s');
      expect(runCostKeyOf('txt2img', { width: 64, height: 64, steps: 4 })).toBe('txt2img:0.25mp:4s');
      expect(runCostKeyOf('my:flow', { width: 1536, height: 1024, steps: 20 })).toBe('my:flow:1.5mp:20s');
      expect(workflowOf('my:flow:1.5mp:20s')).toBe('my:flow');
    });
  });

  describe('run time prediction', () => {
    it('a fresh service scales a prior by the work: a tiny job is not told 15 s', () => {
      expect(predictRunMs({}, 'txt2img:0.25mp:4s')).toBe(PRIOR_MS_PER_WORK);
      expect(predictRunMs({}, 'txt2img:1mp:20s')).toBe(15_000);
    });

    it('prefers the class measured, then its workflow, then every workflow', () => {
      const key = 'txt2img:1mp:20s';
      expect(predictRunMs({ classMs: 4_000, workflowPerWork: 1, perWork: 2 }, key)).toBe(4_000);
      expect(predictRunMs({ workflowPerWork: 100, perWork: 2 }, key)).toBe(2_000);
      expect(predictRunMs({ perWork: 50 }, key)).toBe(1_000);
    });
  });

  describe('finish time', () => {
    const base = { now: 100_000, aheadMs: 2_000, ownMs: 2_000, drawingSince: [], waitingTaken: 0, queuedAhead: 0 };

    it('a burst on two instances finishes two at a time', () => {
      const finish = (ahead: number) => simulateFinishMs({ ...base, instances: 2, queuedAhead: ahead });
      expect([0, 1, 2, 3, 4, 5].map(finish)).toEqual([2_000, 2_000, 4_000, 4_000, 6_000, 6_000]);
    });

    it('counts the jobs drawing (their time left) and the jobs taken and waiting on an instance', () => {
      const finish = simulateFinishMs({
        ...base,
        instances: 2,
        drawingSince: [base.now - 1_500, base.now - 500], // 0.5 s and 1.5 s left
        waitingTaken: 2, // start at 0.5 s and 1.5 s, end at 2.5 s and 3.5 s
        queuedAhead: 1, // starts at 2.5 s, ends at 4.5 s
      });
      expect(finish).toBe(3_500 + 2_000); // ours starts at 3.5 s
    });

    it('a job drawing now has only the rest of its own run left; an overrun one is about to end', () => {
      expect(simulateFinishMs({ ...base, instances: 1, ownDrawingSince: base.now - 500 })).toBe(1_500);
      expect(simulateFinishMs({ ...base, instances: 1, ownDrawingSince: base.now - 9_000 })).toBe(200);
    });

    it('a long queue is counted to the end without a loop per job', () => {
      const finish = simulateFinishMs({ ...base, instances: 4, queuedAhead: 1_000_000 });
      expect(finish).toBeCloseTo((1_000_000 / 4) * 2_000 + 2_000, -4);
    });
  });
});
