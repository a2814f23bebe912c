/**
 * `mist plan`: tune a job — search a space (mist by default) for the fastest plan that fits, in the cost model of
 * `mist predict`. Prints a readable summary (or, with --json, exactly the Plan), a progress line on stderr while
 * searching, and with --explain FILE writes the decision record (Pareto frontiers, alternatives, baselines).
 * Infeasible: exit 3 with the closest plan and what is missing; bad input: exit 2.
 */
import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { badInput } from '../../../../protocol/src/errors.js';
import type { Plan } from '../../domain/plan.js';
import { hardwareFor } from '../../tuner/hardware.js';
import { resolveModel } from '../../tuner/model.js';
import { DpSolver } from '../../tuner/dp-solver.js';
import type { Solver } from '../../tuner/solver.js';
import { tune, type DecisionRecord, type TuneProgress } from '../../tuner/search.js';
import { parsePins, SPACE_NAMES, type SpaceName } from '../../tuner/space.js';
import { choiceFlag, intFlag, jsonOrName, required } from '../flags.js';
import { printJson } from '../output.js';
import { progressBar } from '../progress.js';
import { formatPrediction } from '../format.js';

type ModelInput = Parameters<typeof resolveModel>[0];

interface PlanOptions {
  model?: string;
  gpu?: string;
  nodes?: string;
  gpusPerNode?: string;
  globalBatch?: string;
  seqLen?: string;
  space: string;
  pin: string[];
  flash?: boolean;
  gradDtype?: string;
  samples?: string;
  solver: string;
  timeBudget?: string;
  json?: boolean;
  explain?: string;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function registerPlan(program: Command, summary: string): void {
  program
    .command('plan')
    .description(summary)
    .option('--model <m>', 'preset name (e.g. gpt3-22b, llama2-70b, lvm-7b, tiny-gpt), a JSON file, or inline JSON dims')
    .option('--gpu <type>', 'GPU type: a100-40gb, a100-80gb, h100-80gb, h200-141gb, l4-24gb, cpu')
    .option('--nodes <n>', 'number of nodes')
    .option('--gpus-per-node <k>', 'GPUs per node')
    .option('--global-batch <B>', 'global batch size in sequences')
    .option('--seq-len <S>', "sequence length (default: the model's)")
    .option('--space <space>', `search space: ${SPACE_NAMES.join(' | ')}`, 'mist')
    .option('--pin <k=v,...>', 'fix knobs (repeatable): tp, pp, dp, microBatch, gradAccum, zero, ckpt (none|selective|norms|pointwise|full|N), layers (e.g. 12+12), offloadOptimizer, offloadWeights, offloadGrads, offloadActivations', collect, [])
    .option('--flash', 'the workload uses flash attention', false)
    .option('--grad-dtype <d>', 'bf16 (16 B/param model state) or fp32 (Megatron-style main grads, 18 B/param)', 'bf16')
    .option('--samples <N>', 'Pareto samples per stage (intra-stage weighted sums)', '30')
    .option('--solver <s>', 'inter-stage solver: dp (exact dynamic programme) | glpk (the paper\'s MILP, in a worker thread)', 'dp')
    .option('--time-budget <sec>', 'stop searching after this many seconds once a plan is known (status feasible)')
    .option('--json', 'print only the Plan as one JSON document')
    .option('--explain <file>', 'write the decision record (Pareto frontiers, alternatives, baselines) as JSON to FILE')
    .addHelpText(
      'after',
      '\nExamples:\n  mist plan --model gpt3-22b --gpu l4-24gb --nodes 4 --gpus-per-node 8 --global-batch 512 --flash\n  mist plan --model gpt3-1.3b --gpu l4-24gb --nodes 1 --gpus-per-node 2 --global-batch 32 --pin tp=1,zero=1 --json\n  mist plan --model llama2-7b --gpu a100-40gb --nodes 1 --gpus-per-node 8 --global-batch 128 --space megatron',
    )
    .action(async (opts: PlanOptions) => {
      await runPlan(opts);
    });
}

async function loadSolver(name: string): Promise<Solver> {
  if (name === 'dp') return new DpSolver();
  // GLPK lives outside the pure tuner (a worker thread); loaded only when asked for.
  const spec = '../../tuner-worker/glpk-solver.js';
  let mod: { GlpkSolver?: new () => Solver };
  try {
    mod = (await import(spec)) as { GlpkSolver?: new () => Solver };
  } catch (e) {
    throw badInput('--solver', `glpk is not available in this build (${(e as Error).message})`, 'valid: dp');
  }
  if (!mod.GlpkSolver) throw badInput('--solver', 'glpk is not available in this build', 'valid: dp');
  return new mod.GlpkSolver();
}

/** Tuning progress on stderr: a bar of shapes searched (terminal) or a line every 2 s (otherwise). */
function progressReporter(): { onProgress: (p: TuneProgress) => void; stop(): void } {
  const bar = progressBar('tuning', { unit: 'shapes' });
  return { onProgress: (p) => bar.update(p.done, p.total, p.phase), stop: () => bar.stop() };
}

async function runPlan(opts: PlanOptions): Promise<void> {
  const model = resolveModel(jsonOrName('--model', required('--model', opts.model)) as ModelInput, '--model');
  const gpu = required('--gpu', opts.gpu);
  const hw = hardwareFor(gpu);
  const space = choiceFlag('--space', opts.space, SPACE_NAMES) as SpaceName;
  const pins = parsePins(opts.pin.join(','));
  const solverName = choiceFlag('--solver', opts.solver, ['dp', 'glpk'] as const);
  const request = {
    model,
    cluster: {
      gpu,
      nodes: intFlag('--nodes', required('--nodes', opts.nodes), { min: 1 }),
      gpusPerNode: intFlag('--gpus-per-node', required('--gpus-per-node', opts.gpusPerNode), { min: 1 }),
    },
    hw,
    globalBatch: intFlag('--global-batch', required('--global-batch', opts.globalBatch), { min: 1 }),
    seqLen: opts.seqLen === undefined ? model.seqLen : intFlag('--seq-len', opts.seqLen, { min: 1 }),
    workload: { flash: Boolean(opts.flash), dropout: 0, gradDtype: choiceFlag('--grad-dtype', opts.gradDtype ?? 'bf16', ['bf16', 'fp32'] as const) },
    space,
    pins,
    samples: intFlag('--samples', opts.samples ?? '30', { min: 1, max: 1000 }),
    timeBudgetSeconds: opts.timeBudget === undefined ? undefined : intFlag('--time-budget', opts.timeBudget, { min: 1 }),
  };
  const solver = await loadSolver(solverName);
  const reporter = progressReporter();
  let result;
  try {
    result = await tune(request, { solver, now: () => performance.now() / 1000, onProgress: reporter.onProgress });
  } finally {
    reporter.stop();
    await solver.close?.();
  }
  if (opts.explain) writeFileSync(opts.explain, JSON.stringify(result.record, null, 2) + '\n');
  if (!result.plan) {
    const reason = result.infeasible?.reason ?? 'no plan fits';
    const closest = result.infeasible?.closest;
    if (opts.json) printJson({ error: { code: 'INFEASIBLE', message: `infeasible: ${reason}`, retryable: false }, closest: closest ?? null });
    else if (closest) process.stdout.write(`closest plan (does not fit):\n\n${formatPrediction(closest)}\n`);
    process.stderr.write(`mist: infeasible: ${reason}\n`);
    process.exitCode = 3;
    return;
  }
  if (opts.json) printJson(result.plan);
  else process.stdout.write(formatPlan(result.plan, result.record) + '\n');
}

/** The human summary of a tuned plan: the stage table of `mist predict`, then the search and the baselines. */
export function formatPlan(plan: Plan, record: DecisionRecord): string {
  const p = plan.predicted!;
  const lines = [formatPrediction(plan), ''];
  const s0 = plan.stages[0]!;
  lines.push(`plan: tp ${s0.tp} × pp ${plan.stages.length} × dp ${s0.dp}, micro-batch ${s0.microBatch}, ${plan.gradAccum} micro-batches; pre/post dp ${plan.prePost.dp} tp ${plan.prePost.tp} ZeRO-${plan.prePost.zero}`);
  lines.push(
    `search: space ${record.space}${record.pins ? ` (pins ${record.pins})` : ''}, ${record.shapes.total} shapes (${record.shapes.solved} solved, ${record.shapes.pruned} pruned by bound), ` +
      `${record.candidates.toLocaleString('en-US')} candidates scored in ${record.seconds.toFixed(2)} s, solver ${record.solver}, status ${record.status}`,
  );
  for (const [name, b] of Object.entries(record.baselines)) {
    if (b.iterationSeconds === null) lines.push(`vs ${name}: no plan of that space fits`);
    else lines.push(`vs ${name}: ${(b.iterationSeconds / p.iterationSeconds).toFixed(2)}× faster (${name} best ${b.iterationSeconds.toFixed(3)} s/iter)`);
  }
  return lines.join('\n');
}
