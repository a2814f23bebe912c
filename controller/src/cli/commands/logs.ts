/**
 * `mist logs JOB [--rank R] [--tail N] [--follow]`: the ranks' output. Without --rank every line is prefixed
 * with its rank (`[r3] …`); lines the rank wrote to stderr go to stderr. --follow keeps streaming until the job
 * ends (or Ctrl-C).
 */
import type { Command } from 'commander';
import { badInput } from '../../../../protocol/src/errors.js';
import type { LogLine } from '../../api/service.js';
import { intFlag } from '../flags.js';
import { clientFrom, withClientOptions, type ClientFlags } from '../client.js';
import { printJson } from '../output.js';

interface LogsOptions extends ClientFlags {
  rank?: string;
  tail?: string;
  follow?: boolean;
}

export function registerLogs(program: Command, summary: string): void {
  withClientOptions(
    program
      .command('logs')
      .description(summary)
      .argument('<job>', 'job name')
      .option('--rank <r>', 'only this rank')
      .option('--tail <n>', 'only the last N lines')
      .option('-f, --follow', 'keep printing new lines until the job ends'),
  ).action(async (name: string, opts: LogsOptions) => {
    const rank = opts.rank === undefined ? undefined : intFlag('--rank', opts.rank, { min: 0 });
    const tail = opts.tail === undefined ? undefined : intFlag('--tail', opts.tail, { min: 0 });
    if (opts.json && opts.follow) throw badInput('--json', 'cannot be combined with --follow (a stream is not one JSON document)');
    const client = clientFrom(opts);
    const print = (l: LogLine) => {
      const text = (rank === undefined ? `[r${l.rank}] ` : '') + l.line + '\n';
      (l.stream === 'stderr' ? process.stderr : process.stdout).write(text);
    };
    const sel = { ...(rank === undefined ? {} : { rank }), ...(tail === undefined ? {} : { tail }) };
    if (opts.follow) {
      await client.followLogs(name, sel, print);
      return;
    }
    const out = await client.logs(name, sel);
    if (opts.json) printJson(out);
    else out.lines.forEach(print);
  });
}
