import { GenerationService } from '../../src/modules/generation/commands/generation.service';
import type { StreamKeys } from '../../src/streams/stream-keys';
import type { TestApp } from '../support/app-harness';
import { pollUntil } from '../support/poll-until';

/** What the cross-shard fairness specs share: users of a chosen shard, submits in a given order, the start order. */
export function fairShardsHarness(app: () => TestApp, layout: StreamKeys) {
  const shardOfUser = (user: string) => layout.forAccount(`user:api:anonymous:${user}`).shard;
  const view = async (id: string) => (await app().http(`/v1/generations/${id}`)).body as Record<string, string>;
  return {
    shardOfUser,
    view,
    /** `count` users whose fair-queue account lives in `shard`, from a pool of names. */
    usersOfShard(shard: number, count: number, tag: string): string[] {
      const found: string[] = [];
      for (let i = 0; found.length < count && i < 1_000; i++) {
        if (shardOfUser(`${tag}${i}`) === shard) found.push(`${tag}${i}`);
      }
      return found;
    },
    /** Submits through the service (the priority tier needs no API key there), in the given order. */
    async submitAll(jobs: readonly { user: string; priority?: boolean }[]): Promise<string[]> {
      const generation = app().app.get(GenerationService);
      const ids: string[] = [];
      for (const { user, priority } of jobs) {
        const result = await generation.submit({
          workflow: 'txt2img',
          inputs: { prompt: 'fair', width: 64, height: 64, steps: 10 },
          userId: `api:anonymous:${user}`, // as the API names a caller without keys (X-User-Id): shardOfUser's account
          source: 'api',
          ...(priority ? { priority: true } : {}),
        });
        ids.push(result.id);
      }
      return ids;
    },
    /** The jobs in the order they started (on any gpu process), once all succeeded. */
    async startOrder(ids: readonly string[]): Promise<string[]> {
      const views = await pollUntil(
        () => Promise.all(ids.map(view)),
        (vs) => vs.every((v) => v.status === 'succeeded'),
        { timeoutMs: 90_000, intervalMs: 100, description: 'every job succeeded' },
      );
      return ids
        .map((id, i) => ({ id, at: Date.parse(views[i]!.startedAt!) }))
        .sort((x, y) => x.at - y.at)
        .map((j) => j.id);
    },
  };
}
