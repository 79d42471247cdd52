import { CommandRunner } from 'nest-commander';
import { JOB_EVENT_TYPES } from '../../streams/job-event.types';
import { CliUsageError } from '../cli.errors';

const JOB_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** A CLI verb: argument checks that fail print the verb's usage and exit 2. */
export abstract class CliCommand extends CommandRunner {
  protected usageError(message: string): CliUsageError {
    return new CliUsageError(message, this.command.helpInformation());
  }

  protected integer(flag: string, value: string, min: number): number {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw this.usageError(`${flag} must be an integer ≥ ${min}, got "${value}"`);
    return n;
  }

  /** `--type a,b --type c` → a set of known event types. */
  protected eventTypes(value: string, previous: Set<string> | undefined): Set<string> {
    const types = new Set(previous);
    for (const type of value.split(',').map((t) => t.trim())) {
      if (!type) continue;
      if (!(JOB_EVENT_TYPES as readonly string[]).includes(type)) {
        throw this.usageError(`unknown event type "${type}"; known: ${JOB_EVENT_TYPES.join(', ')}`);
      }
      types.add(type);
    }
    return types;
  }

  protected jobId(value: string): string {
    if (!JOB_ID.test(value)) throw this.usageError(`"${value}" is not a job id`);
    return value;
  }
}
