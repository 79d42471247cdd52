import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { ChaosReport } from './verify';

export function formatReport(r: ChaosReport): string {
  const lines: string[] = [];
  const row = (label: string, value: string | number) => lines.push(`  ${label.padEnd(44)} ${value}`);
  lines.push('', `== chaos ${r.mode} run, seed ${r.seed} ==`);
  row('jobs planned', r.jobsPlanned);
  row('jobs accepted (HTTP + Telegram)', `${r.accepted.total} (${r.accepted.api} + ${r.accepted.telegram})`);
  row('succeeded', r.succeeded);
  row('failed', r.failed.total);
  for (const [reason, n] of Object.entries(r.failed.byReason)) row(`  ${n} ×`, reason);
  row('cancelled (owner pressed Cancel)', r.cancelled);
  row('LOST (accepted, never finished)', r.lost);
  row('DUPLICATE chat deliveries', r.duplicateChatDeliveries);
  row('PROMPTS RE-RUN after they finished', r.rerunsOfFinishedPrompts);
  row('prompts re-run after their instance crashed', r.rerunsAfterInstanceCrash);
  row('prompt executions on all instances', r.promptExecutions);
  row('DLQ entries (all from injected poison?)', `${r.dlq.entries} (${r.dlq.fromInjectedPoison} from poison)`);
  row(
    'poison injected (dlq / refused jobs / harmless)',
    `${r.poison.injected} (${r.poison.expectedDeadLetters / 2} / ${r.poison.refusedRequests} / ${r.poison.harmless})`,
  );
  row('Telegram updates (+ replays of the same update)', `${r.telegram.updates} (+${r.telegram.replayedUpdates})`);
  row('Telegram results delivered / missing', `${r.telegram.resultsDelivered} / ${r.telegram.resultsMissing}`);
  row(
    'Telegram status messages missing / duplicated',
    `${r.telegram.statusMessagesMissing} / ${r.telegram.duplicateStatusMessages}`,
  );
  row('forged Cancel presses (obeyed)', `${r.telegram.forgedPresses} (${r.telegram.forgedPressesObeyed})`);
  row('HTTP submissions retried (same Idempotency-Key)', r.api.retried);
  row(
    'kill -9',
    Object.entries(r.faults.kills)
      .map(([k, v]) => `${k}×${v}`)
      .join(' ') || '0',
  );
  row('Redis restarts (kill -9, AOF)', r.redisRestarts);
  row('ComfyUI hangs armed / crashes', `${r.faults.simHangsArmed} / ${r.faults.simCrashes}`);
  row('webhook failovers (replica down or 5xx)', r.balancer.failovers);
  row(
    'entries taken over / prompts re-attached / watchdog',
    `${r.takeovers.claimedEntries} / ${r.takeovers.reattachedPrompts} / ${r.takeovers.watchdogCancels}`,
  );
  row('secrets found in logs', r.secretsInLogs.length);
  row(
    'job time p50 / p95 / max, submit → end (s)',
    `${r.jobSeconds.endToEndP50} / ${r.jobSeconds.endToEndP95} / ${r.jobSeconds.endToEndMax}`,
  );
  row(
    'time: load / drain / total (s)',
    `${r.timings.loadSeconds} / ${r.timings.drainSeconds} / ${r.timings.totalSeconds}`,
  );
  if (r.violations.length === 0) {
    lines.push(
      '',
      'PASS: nothing lost, nothing delivered twice, no finished prompt ran again, DLQ holds only the poison.',
    );
  } else {
    lines.push('', `FAIL: ${r.violations.length} violation(s):`);
    for (const v of r.violations.slice(0, 50)) lines.push(`  - ${v}`);
    for (const v of r.lostJobs) lines.push(`    lost: ${v}`);
    for (const v of r.dlq.unexpected) lines.push(`    dlq: ${v}`);
    for (const v of r.dlq.poisonNotDeadLettered) lines.push(`    poison: ${v}`);
    for (const v of r.processes.unexpectedExits) lines.push(`    exit: ${v}`);
    for (const v of r.details) lines.push(`    ${v}`);
  }
  return lines.join('\n');
}

const BEGIN = (mode: string) => `<!-- chaos:${mode}:begin (written by npm run chaos; do not edit) -->`;
const END = (mode: string) => `<!-- chaos:${mode}:end -->`;

/** Rewrites docs/reliability.md: the fixed text, this run's section, and the other mode's last section as it was. */
export function writeReliabilityDoc(path: string, r: ChaosReport, command: string): void {
  const previous = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const section = (mode: 'full' | 'quick'): string => {
    if (mode === r.mode) return runSection(r, command);
    const begin = previous.indexOf(BEGIN(mode));
    const end = previous.indexOf(END(mode));
    if (begin >= 0 && end > begin) return previous.slice(begin + BEGIN(mode).length, end).trim();
    return `_No ${mode} run recorded yet: \`npm run chaos${mode === 'quick' ? ' -- --quick' : ''}\`._`;
  };
  const doc = [
    HEADER,
    '## Latest full run',
    '',
    BEGIN('full'),
    section('full'),
    END('full'),
    '',
    '## Latest quick run',
    '',
    BEGIN('quick'),
    section('quick'),
    END('quick'),
    '',
    FOOTER,
  ].join('\n');
  writeFileSync(path, doc);
}

/** The README carries the latest full run too, between the same markers (only rewritten by full runs). */
export function writeReadmeSection(path: string, r: ChaosReport, command: string): void {
  if (r.mode !== 'full' || !existsSync(path)) return;
  const text = readFileSync(path, 'utf8');
  const begin = text.indexOf(BEGIN('full'));
  const end = text.indexOf(END('full'));
  if (begin < 0 || end <= begin) return;
  writeFileSync(path, `${text.slice(0, begin)}${BEGIN('full')}\n${runSection(r, command)}\n${text.slice(end)}`);
}

function runSection(r: ChaosReport, command: string): string {
  const verdict = r.violations.length === 0 ? '**PASS**' : `**FAIL** (${r.violations.length} violations)`;
  const failed = Object.entries(r.failed.byReason)
    .map(([reason, n]) => `${n} × \`${reason.replace(/\|/g, '/')}\``)
    .join('; ');
  const kills = Object.entries(r.faults.kills)
    .map(([k, v]) => `${k} ×${v}`)
    .join(', ');
  const rows: [string, string | number][] = [
    ['jobs accepted (HTTP + Telegram)', `${r.accepted.total} (${r.accepted.api} + ${r.accepted.telegram})`],
    ['succeeded', r.succeeded],
    ['failed (reasons)', `${r.failed.total}${failed ? `: ${failed}` : ''}`],
    ['cancelled by their owner', r.cancelled],
    ['**lost** (accepted, never finished)', r.lost],
    ['**duplicate chat deliveries**', r.duplicateChatDeliveries],
    ['**prompts executed again after they had finished** on an instance', r.rerunsOfFinishedPrompts],
    ['prompts executed again after their instance crashed (history gone)', r.rerunsAfterInstanceCrash],
    ['DLQ entries / of them injected poison', `${r.dlq.entries} / ${r.dlq.fromInjectedPoison}`],
    [
      'Telegram updates / replayed duplicates / double deliveries',
      `${r.telegram.updates} / ${r.telegram.replayedUpdates} / ${r.faults.telegramDoubleDeliveries}`,
    ],
    ['Telegram results delivered / missing', `${r.telegram.resultsDelivered} / ${r.telegram.resultsMissing}`],
    [
      'status messages missing / duplicated / not final',
      `${r.telegram.statusMessagesMissing} / ${r.telegram.duplicateStatusMessages} / ${r.telegram.statusMessagesNotFinal}`,
    ],
    ['forged Cancel presses / obeyed', `${r.telegram.forgedPresses} / ${r.telegram.forgedPressesObeyed}`],
    ['HTTP submissions retried with the same Idempotency-Key', r.api.retried],
    ['kill -9 (restarted)', kills || '0'],
    ['Redis kill -9 + restart from AOF', r.redisRestarts],
    ['ComfyUI prompts hung / instance crashes', `${r.faults.simHangsArmed} / ${r.faults.simCrashes}`],
    ['poison entries injected', r.poison.injected],
    ['webhook calls re-sent to the other replica', r.balancer.failovers],
    [
      'stream entries taken over from killed consumers / prompts re-attached / watchdog cancels',
      `${r.takeovers.claimedEntries} / ${r.takeovers.reattachedPrompts} / ${r.takeovers.watchdogCancels}`,
    ],
    ['processes that died by themselves', r.processes.unexpectedExits.length],
    ['secrets found in process logs', r.secretsInLogs.length],
    [
      'succeeded jobs, submit → end: p50 / p95 / max (s)',
      `${r.jobSeconds.endToEndP50} / ${r.jobSeconds.endToEndP95} / ${r.jobSeconds.endToEndMax}`,
    ],
    ['time to drain after the load (s)', r.timings.drainSeconds],
    ['load window / whole run (s)', `${r.timings.loadSeconds} / ${r.timings.totalSeconds}`],
  ];
  return [
    `\`${command}\` — seed **${r.seed}**, ${r.finishedAt}: ${verdict}`,
    '',
    '| | |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${v} |`),
    ...(r.violations.length > 0
      ? [
          '',
          'Violations:',
          '',
          ...r.violations.slice(0, 30).map((v) => `- ${v}`),
          ...[...r.dlq.unexpected, ...r.dlq.poisonNotDeadLettered, ...r.processes.unexpectedExits, ...r.details]
            .slice(0, 30)
            .map((v) => `  - ${v.replace(/\|/g, '/')}`),
        ]
      : []),
  ].join('\n');
}

const HEADER = `# Reliability: the chaos suite and the bad-input suite

This file is written by \`npm run chaos\` (\`scripts/chaos/\`): the text below the run sections is fixed, the
figures are the tool's, from its last run in each mode. Do not edit it by hand.

## What \`npm run chaos\` does

It starts its own \`redis-server\` (AOF, \`appendfsync always\`, on a free port), four ComfyUI simulators, the fake
Bot API (\`test/support/fake-telegram\`) behind a webhook load balancer, and the service as **separate processes**
from one transpiled tree: \`api\`, \`gpu\` ×3, \`bot\` ×2 (webhook mode), \`projector\`. Then it pushes N jobs
(1,000; \`--quick\`: 200) — half from HTTP clients (each with its own \`Idempotency-Key\`, retried on any error),
half from simulated Telegram users (text prompts and captioned photos) — while the fault schedule runs:

| fault | how |
|---|---|
| process crash | \`kill -9\` of a random \`gpu\`, \`bot\` or \`projector\` process every 3–6 s, restarted 0.3–2 s later under the same \`INSTANCE_NAME\` (one bot replica and one GPU worker are always left up) |
| Redis crash | \`kill -9\` of redis-server once, 2 s down, restarted from its AOF |
| ComfyUI hang | one instance accepts its next 3 prompts and never progresses (the no-progress watchdog must cancel them and retry elsewhere) |
| ComfyUI crash | another instance dies (sockets cut, port closed, queue and history lost) and comes back 6 s later |
| duplicate updates | ~6 % of Telegram updates are delivered again later with the same \`update_id\`; ~3 % are delivered twice at once; a bot killed mid-request makes the load balancer re-send the update to the other replica |
| forged buttons | ~3 % of jobs get their Cancel button pressed by another user (must be refused); ~3 % are cancelled by their owner |
| Telegram 429 | the Bot API answers 429 (\`retry_after\` 1) to every send for 3 s |
| poison | twice, 17 hostile entries appended to \`jobs:requests\` and \`jobs:events\`: truncated JSON, no envelope field, arrays, unknown types, wrong version, missing payload fields, a path-like job id, binary garbage, a 1 MB entry, a request for an unknown workflow, wrongly typed inputs, a completion of a job nobody asked for |

The same \`--seed\` gives the same load and the same fault schedule (times and targets; a kill whose target is
still starting is skipped and reported). After the load, every process is brought back and the fleet must finish
on its own; then the tool checks, and exits 1 on any violation:

- **lost**: every job in \`jobs:requests\` (every 202 and every Telegram update) ends succeeded, failed or
  cancelled in the projection, with a final event in \`jobs:events\`; every group's PEL is empty and its lag 0;
- **duplicates**: each Telegram update made exactly one job and one status message, whose last text is final;
  a succeeded job's picture reached its chat exactly once, a failed or cancelled one sent none;
- **double GPU work**: no prompt_id started again on an instance where it had already finished (the simulators
  log every start and finish; a re-run after that instance crashed and lost its history is counted apart);
- **DLQ**: every entry is injected poison, and every undecodable poison entry was dead-lettered exactly once by
  each group that reads its stream; the well-formed bad requests failed with their reason instead;
- forged button presses were refused; no process died by itself; no webhook call went unanswered; the bot
  token, the webhook secret and the API keys appear in no process log.

\`npm run chaos -- --quick\` (200 jobs, about 3 minutes on 2 cores), \`npm run chaos\` (1,000 jobs), \`--seed N\`,
\`--jobs N\`, \`--keep\` (keep the temporary directory with every process log).
`;

const FOOTER = `## The bad-input suite (jest)

\`test/bad-input/*.spec.ts\` feeds every entry point input it must refuse and checks for a clear error (or a DLQ
entry with its reason), no crash, and that a good job still succeeds afterwards: HTTP (malformed JSON, wrong
types, huge bodies, non-image base64, path-like names, unknown workflows, missing or wrong keys), Telegram updates
(unknown kinds, oversized and fake files, odd captions, forged callback data), stream entries appended to a
running app's real streams, every configuration variable, and ComfyUI answers (garbage JSON, truncated PNGs, 5xx,
garbage WebSocket frames). \`test/security/\` checks constant-time key comparison, that \`/view\` names come only
from ComfyUI's outputs, size limits on every input, and that secrets stay out of errors.

\`\`\`bash
npx jest test/bad-input test/security --runInBand
\`\`\`
`;
