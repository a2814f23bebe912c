/**
 * `mist submit FILE [--wait]`: sends a MistJob (YAML or JSON; `-` reads stdin) to the controller. With --wait it
 * polls the job until it reaches a terminal phase, printing a progress line on stderr whenever something
 * changes; exit 0 when it Succeeded, 1 when it Failed or was Cancelled.
 */
import { existsSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import { MistError, badInput } from '../../../../protocol/src/errors.js';
import { isTerminalPhase, type JobDetail, type JobView } from '../../api/service.js';
import { clientFrom, dash, formatRate, withClientOptions, type ApiClient, type ClientFlags } from '../client.js';
import { printJson, progress } from '../output.js';
import { progressBar, stderrIsTty } from '../progress.js';

interface SubmitOptions extends ClientFlags {
  wait?: boolean;
  pollInterval: string;
}

/** Reads a job file and decides its format: by extension, else by its first character. */
export function readJobFile(file: string): { text: string; format: 'yaml' | 'json' } {
  let text: string;
  if (file === '-') {
    text = readFileSync(0, 'utf8');
  } else {
    if (!existsSync(file)) throw badInput('FILE', `no such file "${file}"`, 'give a MistJob in YAML or JSON, or - for stdin');
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw badInput('FILE', `cannot read "${file}" (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  if (text.trim() === '') throw badInput('FILE', `"${file}" is empty`);
  const ext = extname(file).toLowerCase();
  const format = ext === '.json' ? 'json' : ext === '.yaml' || ext === '.yml' ? 'yaml' : text.trimStart().startsWith('{') ? 'json' : 'yaml';
  return { text, format };
}

function progressLine(j: JobView): string {
  const parts = [`job/${j.name}: ${j.phase}`];
  if (typeof j.step === 'number') parts.push(`step ${j.step}`);
  if (typeof j.tokensPerSecond === 'number') parts.push(`${formatRate(j.tokensPerSecond)} tokens/s`);
  if (j.restarts > 0) parts.push(`restarts ${j.restarts}`);
  if (j.planSummary) parts.push(`plan ${j.planSummary}`);
  if (j.message) parts.push(String(j.message));
  return parts.join(' · ');
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until the job is terminal; transient UNAVAILABLE answers (a controller restart) are retried. */
export async function waitForJob(client: ApiClient, name: string, intervalMs: number): Promise<JobDetail> {
  let last = '';
  let failures = 0;
  // a terminal gets a bar of steps; logs and pipes get one line per change
  const bar = stderrIsTty() ? progressBar(`job/${name}`, { unit: 'steps' }) : undefined;
  for (;;) {
    let job: JobDetail;
    try {
      job = await client.getJob(name);
      failures = 0;
    } catch (e) {
      if (e instanceof MistError && (e.code === 'UNAVAILABLE' || e.code === 'TIMEOUT') && failures < 30) {
        failures++;
        if (failures === 1) progress(`mist: ${e.message} (retrying)`);
        await sleep(intervalMs);
        continue;
      }
      throw e;
    }
    const line = progressLine(job);
    if (bar) {
      const total = typeof job.totalSteps === 'number' ? job.totalSteps : Math.max(1, job.step ?? 0);
      bar.update(job.step ?? 0, total, `${job.phase}${typeof job.tokensPerSecond === 'number' ? ` · ${formatRate(job.tokensPerSecond)} tokens/s` : ''}${job.restarts > 0 ? ` · restarts ${job.restarts}` : ''}`);
    } else if (line !== last) progress(line);
    last = line;
    if (isTerminalPhase(job.phase)) {
      bar?.stop(line);
      return job;
    }
    await sleep(intervalMs);
  }
}

export function registerSubmit(program: Command, summary: string): void {
  withClientOptions(
    program
      .command('submit')
      .description(summary)
      .argument('<file>', 'a MistJob in YAML or JSON, or - for stdin')
      .option('--wait', 'wait until the job finishes; exit 0 if it Succeeded, 1 otherwise')
      .option('--poll-interval <seconds>', 'with --wait: seconds between status polls', '2'),
  )
    .addHelpText('after', '\nExample:\n  mist submit examples/jobs/tiny-llm.yaml --wait')
    .action(async (file: string, opts: SubmitOptions) => {
      const interval = Number(opts.pollInterval);
      if (!Number.isFinite(interval) || interval < 0.01 || interval > 3600) throw badInput('--poll-interval', `expected seconds in 0.01..3600, got "${opts.pollInterval}"`);
      const job = readJobFile(file);
      const client = clientFrom(opts);
      const created = await client.submit(job.text, job.format);
      if (!opts.wait) {
        if (opts.json) printJson(created);
        else process.stdout.write(`job/${created.name} submitted (phase ${created.phase})\n`);
        return;
      }
      progress(`job/${created.name} submitted (phase ${created.phase}); waiting for it to finish`);
      const done = await waitForJob(client, created.name, Math.round(interval * 1000));
      if (opts.json) printJson(done);
      else process.stdout.write(`job/${done.name} ${done.phase}${done.message ? `: ${dash(done.message)}` : ''}\n`);
      if (done.phase !== 'Succeeded') process.exitCode = 1;
    });
}
