/** `mist jobs [--phase P]`: one line per job (NAME PHASE GPUS PLAN STEP TOKENS/S RESTARTS AGE). */
import type { Command } from 'commander';
import { badInput } from '../../../../protocol/src/errors.js';
import type { JobView } from '../../api/service.js';
import { clientFrom, dash, formatAge, formatRate, renderTable, withClientOptions, type ClientFlags } from '../client.js';
import { printJson } from '../output.js';

interface JobsOptions extends ClientFlags {
  phase?: string;
}

export function formatJobs(jobs: JobView[], now: number = Date.now()): string {
  const rows = [['NAME', 'PHASE', 'GPUS', 'PLAN', 'STEP', 'TOKENS/S', 'RESTARTS', 'AGE']];
  for (const j of jobs) {
    rows.push([j.name, j.phase, dash(j.gpus), dash(j.planSummary ?? j.planId), dash(j.step), formatRate(j.tokensPerSecond), String(j.restarts ?? 0), formatAge(j.createdAt, now)]);
  }
  return renderTable(rows);
}

export function registerJobs(program: Command, summary: string): void {
  withClientOptions(program.command('jobs').description(summary).option('--phase <phase>', 'only jobs in this phase (e.g. Pending, Running, Succeeded, Failed)')).action(
    async (opts: JobsOptions) => {
      if (opts.phase !== undefined && !/^[A-Za-z]{1,32}$/.test(opts.phase)) throw badInput('--phase', `"${opts.phase}" is not a phase name`, 'e.g. Pending, Running, Succeeded, Failed, Cancelled');
      const jobs = await clientFrom(opts).listJobs(opts.phase);
      if (opts.json) {
        printJson({ jobs });
        return;
      }
      if (jobs.length === 0) {
        process.stderr.write(opts.phase ? `No jobs in phase ${opts.phase}.\n` : 'No jobs.\n');
        return;
      }
      process.stdout.write(formatJobs(jobs) + '\n');
    },
  );
}
