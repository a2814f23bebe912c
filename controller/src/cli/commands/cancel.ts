/** `mist cancel JOB`: asks the controller to stop a job (its ranks are killed; the phase becomes Cancelled). */
import type { Command } from 'commander';
import { clientFrom, withClientOptions, type ClientFlags } from '../client.js';
import { printJson } from '../output.js';

export function registerCancel(program: Command, summary: string): void {
  withClientOptions(program.command('cancel').description(summary).argument('<job>', 'job name')).action(async (name: string, opts: ClientFlags) => {
    const job = await clientFrom(opts).cancel(name);
    if (opts.json) printJson(job);
    else process.stdout.write(`job/${job.name} cancelled (phase ${job.phase})\n`);
  });
}
