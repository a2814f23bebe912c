/** `mist predict`: placeholder until the tuner's cost model lands (issue "Tuner I"). */
import type { Command } from 'commander';
import { MistError } from '../../../../protocol/src/errors.js';

export function registerPredict(program: Command, summary: string): void {
  program
    .command('predict')
    .description(`${summary} (not built yet)`)
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .option('--json', 'print one JSON document on stdout')
    .action(() => {
      throw new MistError('NOT_IMPLEMENTED', '`mist predict` is not built yet');
    });
}
