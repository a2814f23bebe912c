/**
 * Builds the commander program: every subcommand of DESIGN.md §2. Subcommands that are built register their own
 * options from commands/; the rest are listed with a "(not built yet)" note and exit 2 when called.
 */
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { MistError } from '../../../protocol/src/errors.js';
import { registerPredict } from './commands/predict.js';
import { registerPlan } from './commands/plan.js';
import { registerAgent } from './commands/agent.js';
import { registerRunLocal } from './commands/run-local.js';
import { registerPlans } from './commands/plans.js';
import { registerSubmit } from './commands/submit.js';
import { registerJobs } from './commands/jobs.js';
import { registerDescribe } from './commands/describe.js';
import { registerLogs } from './commands/logs.js';
import { registerCancel } from './commands/cancel.js';
import { registerNodes } from './commands/nodes.js';
import { registerController } from './commands/controller.js';
import { registerUp } from './commands/up.js';

const require = createRequire(import.meta.url);

/** Version from package.json (dist/controller/src/cli → four levels up to the package root). */
export function mistVersion(): string {
  for (const rel of ['../../../../package.json', '../../../package.json']) {
    try {
      return (require(rel) as { version: string }).version;
    } catch {
      /* try the next layout (compiled vs source) */
    }
  }
  return '0.0.0';
}

/** Subcommands of DESIGN.md §2, in the order `--help` lists them, with a one-line summary. */
export const SUBCOMMANDS: ReadonlyArray<{ name: string; summary: string; notYet?: string }> = [
  { name: 'up', summary: 'start a local cluster (nats-server, controller, agents); --demo submits two tiny jobs' },
  { name: 'plan', summary: 'tune a job: search the parallelism/memory space and print the best plan' },
  { name: 'predict', summary: 'predict iteration time and peak memory of one plan' },
  { name: 'run-local', summary: 'train a plan on this machine: its ranks as local processes with the reference runtime (no NATS)' },
  { name: 'controller', summary: 'run the controller (API, reconcile, scheduler, NATS bus)' },
  { name: 'agent', summary: 'run a node agent that launches training ranks' },
  { name: 'submit', summary: 'submit a job spec to the controller' },
  { name: 'jobs', summary: 'list jobs' },
  { name: 'describe', summary: 'show a job: phase, conditions, plan, events' },
  { name: 'plans', summary: 'query plan history' },
  { name: 'nodes', summary: 'list agents and their devices' },
  { name: 'logs', summary: 'print or follow the logs of a job' },
  { name: 'cancel', summary: 'cancel a job' },
];

/** Registrars for the subcommands that are built. */
const BUILT: Record<string, (program: Command, summary: string) => void> = {
  up: registerUp,
  controller: registerController,
  plan: registerPlan,
  predict: registerPredict,
  agent: registerAgent,
  'run-local': registerRunLocal,
  plans: registerPlans,
  submit: registerSubmit,
  jobs: registerJobs,
  describe: registerDescribe,
  logs: registerLogs,
  cancel: registerCancel,
  nodes: registerNodes,
};

export function buildProgram(): Command {
  const program = new Command('mist')
    .description('Mist: tune, launch and watch large-model training (LLMs and Large Vision Models)')
    .version(mistVersion(), '-V, --version', 'print the version')
    .showHelpAfterError('(run `mist --help` for the subcommands)')
    .addHelpText('after', '\nExit codes: 0 ok, 2 bad input, 3 infeasible, 1 other failure.\nWith --json, stdout is exactly one JSON document; progress goes to stderr.')
    // Before any subcommand exists, so that every subcommand inherits it: commander's usage errors (unknown
    // option, missing argument) surface as CommanderError and main maps them to exit 2 instead of exiting 1.
    .exitOverride();
  for (const { name, summary, notYet } of SUBCOMMANDS) {
    const register = BUILT[name];
    if (register) {
      register(program, summary);
      continue;
    }
    program
      .command(name)
      .description(`${summary} (not built yet)`)
      .allowUnknownOption(true)
      .allowExcessArguments(true)
      .option('--json', 'print one JSON document on stdout')
      .action(() => {
        throw new MistError('NOT_IMPLEMENTED', `\`mist ${name}\`: ${notYet ?? 'not built yet'} (version ${mistVersion()}; see README.md for what is available)`);
      });
  }
  return program;
}
