/**
 * `mist predict`: iteration time, throughput, MFU and per-stage peak memory of one plan, from a Plan file
 * (`--plan FILE|-`) or from flags describing a uniform plan. A plan that does not fit is still a prediction
 * (exit 0, fits: false, a reason naming the stage and the shortfall); invalid plans are bad input (exit 2).
 */
import type { Command } from 'commander';
import { badInput } from '../../../../protocol/src/errors.js';
import type { Plan } from '../../domain/plan.js';
import { hardwareFor } from '../../tuner/hardware.js';
import { resolveModel } from '../../tuner/model.js';
import { predictPlan, uniformPlan, validatePlan } from '../../tuner/predict.js';
import { choiceFlag, intFlag, jsonOrName, ratioFlag, readJsonArg, required } from '../flags.js';
import { printJson } from '../output.js';
import { formatPrediction } from '../format.js';

/** resolveModel validates whatever it is given; the CLI hands it parsed JSON or a name. */
type ModelInput = Parameters<typeof resolveModel>[0];

interface PredictOptions {
  plan?: string;
  model?: string;
  gpu?: string;
  nodes?: string;
  gpusPerNode?: string;
  globalBatch?: string;
  seqLen?: string;
  tp?: string;
  pp?: string;
  dp?: string;
  microBatch?: string;
  gradAccum?: string;
  zero?: string;
  ckpt?: string;
  offloadOptimizer?: string;
  offloadWeights?: string;
  offloadGrads?: string;
  offloadActivations?: string;
  flash?: boolean;
  gradDtype?: string;
  sequenceParallel?: boolean;
  tpCommOverlap?: boolean;
  json?: boolean;
}

const FLAG_FORM = ['model', 'gpu', 'nodes', 'gpusPerNode', 'globalBatch', 'tp', 'pp', 'dp', 'microBatch', 'gradAccum'] as const;

export function registerPredict(program: Command, summary: string): void {
  program
    .command('predict')
    .description(summary)
    .option('--plan <file>', 'a Plan JSON file (DESIGN.md §4), or - to read it from stdin')
    .option('--model <m>', 'preset name (e.g. gpt3-1.3b, llama2-7b, lvm-1b, tiny-gpt), a JSON file, or inline JSON dims')
    .option('--gpu <type>', 'GPU type: a100-40gb, a100-80gb, h100-80gb, h200-141gb, l4-24gb, cpu')
    .option('--nodes <n>', 'number of nodes')
    .option('--gpus-per-node <k>', 'GPUs per node')
    .option('--global-batch <B>', 'global batch size in sequences')
    .option('--seq-len <S>', 'sequence length (default: the model\'s)')
    .option('--tp <T>', 'tensor-parallel degree')
    .option('--pp <P>', 'pipeline stages (uniform layer split)')
    .option('--dp <D>', 'data-parallel degree')
    .option('--micro-batch <b>', 'micro-batch size per GPU')
    .option('--grad-accum <G>', 'micro-batches per iteration (≥ pp under 1F1B)')
    .option('--zero <z>', 'ZeRO level 0..3', '1')
    .option('--ckpt <c>', 'activation checkpointing: none | selective | norms | pointwise | full | N (the last N layers of each stage)', 'none')
    .option('--offload-optimizer <r>', 'fraction of optimizer states kept in host memory', '0')
    .option('--offload-weights <r>', 'fraction of weights kept in host memory', '0')
    .option('--offload-grads <r>', 'fraction of gradients kept in host memory', '0')
    .option('--offload-activations <r>', 'fraction of saved activations offloaded to host memory', '0')
    .option('--flash', 'the workload uses flash attention', false)
    .option('--grad-dtype <d>', 'bf16 (16 B/param model state) or fp32 (Megatron-style main grads, 18 B/param)', 'bf16')
    .option('--sequence-parallel', 'Megatron sequence parallelism: norms, dropouts and their activations split by tp; TP all-reduces become all-gather + reduce-scatter', false)
    .option('--tp-comm-overlap', 'Megatron-Core TP communication/GEMM overlap (needs --sequence-parallel)', false)
    .option('--json', 'print the Plan with `predicted` filled as one JSON document')
    .addHelpText('after', '\nExample:\n  mist predict --model gpt3-1.3b --gpu l4-24gb --nodes 1 --gpus-per-node 2 --global-batch 32 \\\n    --tp 1 --pp 2 --dp 1 --micro-batch 2 --grad-accum 16 --zero 1 --ckpt 5 --json')
    .action((opts: PredictOptions) => {
      const plan = opts.plan !== undefined ? planFromFile(opts) : planFromFlags(opts);
      validatePlan(plan);
      const hw = hardwareFor(plan.cluster.gpu);
      const predicted = predictPlan(plan, hw);
      const out: Plan = { ...plan, predicted };
      if (opts.json) printJson(out);
      else process.stdout.write(formatPrediction(out) + '\n');
    });
}

function planFromFile(opts: PredictOptions): Plan {
  const given = FLAG_FORM.filter((k) => opts[k] !== undefined);
  if (given.length) throw badInput('--plan', `cannot be combined with plan flags (${given.map(kebab).join(', ')})`, 'give either --plan FILE or the flag form');
  const doc = readJsonArg('--plan', opts.plan as string);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw badInput('--plan', 'must hold a JSON object (a Plan, DESIGN.md §4)');
  const plan = doc as Plan;
  // A plan file may name its model by preset, or give dims.
  return { ...plan, model: resolveModel((plan as { model?: unknown }).model as ModelInput, 'model') };
}

function planFromFlags(opts: PredictOptions): Plan {
  const model = resolveModel(jsonOrName('--model', required('--model', opts.model)) as ModelInput, '--model');
  const ckptRaw = String(opts.ckpt ?? 'none').trim();
  if (opts.tpCommOverlap && !opts.sequenceParallel) {
    // Megatron-LM rejects --tp-comm-overlap without --sequence-parallel
    throw badInput('--tp-comm-overlap', 'requires --sequence-parallel', 'add --sequence-parallel, or drop --tp-comm-overlap');
  }
  const ckpt = /^\d+$/.test(ckptRaw) ? intFlag('--ckpt', ckptRaw, { min: 0 }) : choiceFlag('--ckpt', ckptRaw, ['none', 'selective', 'norms', 'pointwise', 'full'] as const);
  return uniformPlan({
    model,
    gpu: required('--gpu', opts.gpu),
    nodes: intFlag('--nodes', required('--nodes', opts.nodes), { min: 1 }),
    gpusPerNode: intFlag('--gpus-per-node', required('--gpus-per-node', opts.gpusPerNode), { min: 1 }),
    globalBatch: intFlag('--global-batch', required('--global-batch', opts.globalBatch), { min: 1 }),
    seqLen: opts.seqLen === undefined ? undefined : intFlag('--seq-len', opts.seqLen, { min: 1 }),
    tp: intFlag('--tp', required('--tp', opts.tp), { min: 1 }),
    pp: intFlag('--pp', required('--pp', opts.pp), { min: 1 }),
    dp: intFlag('--dp', required('--dp', opts.dp), { min: 1 }),
    microBatch: intFlag('--micro-batch', required('--micro-batch', opts.microBatch), { min: 1 }),
    gradAccum: intFlag('--grad-accum', required('--grad-accum', opts.gradAccum), { min: 1 }),
    zero: intFlag('--zero', opts.zero ?? '1', { min: 0, max: 3 }) as 0 | 1 | 2 | 3,
    ckpt,
    offload: {
      optimizer: ratioFlag('--offload-optimizer', opts.offloadOptimizer ?? '0'),
      weights: ratioFlag('--offload-weights', opts.offloadWeights ?? '0'),
      grads: ratioFlag('--offload-grads', opts.offloadGrads ?? '0'),
      activations: ratioFlag('--offload-activations', opts.offloadActivations ?? '0'),
    },
    flash: Boolean(opts.flash),
    gradDtype: choiceFlag('--grad-dtype', opts.gradDtype ?? 'bf16', ['bf16', 'fp32'] as const),
    sequenceParallel: Boolean(opts.sequenceParallel),
    tpCommOverlap: Boolean(opts.tpCommOverlap),
  });
}

function kebab(k: string): string {
  return '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}
