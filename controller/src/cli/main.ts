#!/usr/bin/env node
/**
 * The `mist` command. Each subcommand lives in commands/<name>.ts and registers itself on the program; this file
 * only wires them and maps errors to exit codes (0 ok, 2 bad input, 3 infeasible, 1 other).
 */
import { Command, CommanderError } from 'commander';
import { buildProgram } from './program.js';
import { reportError } from './output.js';

// A reader that goes away (`mist ... | head`) is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

async function main(argv: string[]): Promise<number> {
  const program: Command = buildProgram();
  program.exitOverride();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version arrive here with exit code 0; usage errors are bad input.
      if (e.exitCode === 0) return 0;
      return 2;
    }
    return reportError(e, argv.includes('--json'));
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
