/**
 * Public API of the cost model: validate a Plan, predict its iteration time, throughput, MFU and per-stage memory,
 * and build uniform plans from flag-style options (`mist predict`).
 *
 * predictPlan evaluates each stage with the compiled stage model (cost.ts) on length-1 columns — the same
 * generated code the search runs over millions of cells — and combines stages with mist.md §3.8.
 */
import type { ModelSpec } from '../domain/model.js';
import type { Ckpt, Offload, PartialRecompute, Plan, Prediction, Stage, Workload } from '../domain/plan.js';
import { isPartialRecompute, PARTIAL_RECOMPUTE, PLAN_VERSION } from '../domain/plan.js';
import type { HardwareParams } from './hardware-types.js';
import { badInput } from '../../../protocol/src/errors.js';
import {
  candidateRows,
  compileStageModel,
  iterationSeconds,
  outputArrays,
  partialCode,
  zeroFlags,
  type Row,
  type RowScalars,
  type StagePosition,
} from './cost.js';
import { FLOPS_CONVENTION, blockQuantities, modelFlopsPerIteration, paramCounts, resolveModel, validateModel } from './model.js';
import { interpret } from './symbolic/compile.js';

const GIB = 2 ** 30;

function isPosInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1;
}

function posInt(field: string, v: unknown, valid = 'a positive integer'): number {
  if (!isPosInt(v)) throw badInput(field, `must be a positive integer (got ${JSON.stringify(v)})`, valid);
  return v;
}

const CKPT_MODES = ['none', 'selective', 'norms', 'pointwise', 'layers', 'full'] as const;
const OFFLOAD_KEYS = ['weights', 'grads', 'optimizer', 'activations'] as const;

/** Throws BAD_INPUT (naming the field and what would be valid) for any plan the cost model cannot price. */
export function validatePlan(plan: Plan): void {
  if (plan === null || typeof plan !== 'object') throw badInput('plan', 'must be an object');
  if (plan.version !== PLAN_VERSION) throw badInput('version', `unsupported plan version ${JSON.stringify(plan.version)}`, `valid: ${PLAN_VERSION}`);
  if (!plan.model || typeof plan.model !== 'object') throw badInput('model', 'is required', 'an object of model dims');
  validateModel(plan.model, 'model');
  const m = plan.model;
  const cl = plan.cluster;
  if (!cl || typeof cl !== 'object') throw badInput('cluster', 'is required', '{gpu, nodes, gpusPerNode}');
  if (typeof cl.gpu !== 'string' || cl.gpu === '') throw badInput('cluster.gpu', 'must name a GPU type');
  if (cl.nodes === 0 || cl.gpusPerNode === 0) throw badInput(cl.nodes === 0 ? 'cluster.nodes' : 'cluster.gpusPerNode', 'zero GPUs: the cluster slice must have at least one GPU', 'a positive integer');
  posInt('cluster.nodes', cl.nodes);
  posInt('cluster.gpusPerNode', cl.gpusPerNode);
  const gpus = cl.nodes * cl.gpusPerNode;
  posInt('globalBatch', plan.globalBatch);
  posInt('seqLen', plan.seqLen);
  posInt('gradAccum', plan.gradAccum);
  if (m.arch === 'gpt' && plan.seqLen > m.seqLen) {
    throw badInput('seqLen', `${plan.seqLen} exceeds the model's ${m.seqLen} learned positions`, `valid: 1..${m.seqLen}`);
  }
  const w = plan.workload;
  if (!w || typeof w !== 'object') throw badInput('workload', 'is required', '{flash, dropout, gradDtype}');
  if (typeof w.flash !== 'boolean') throw badInput('workload.flash', `must be a boolean (got ${JSON.stringify(w.flash)})`);
  if (typeof w.dropout !== 'number' || !(w.dropout >= 0 && w.dropout < 1)) throw badInput('workload.dropout', `must be in [0, 1) (got ${JSON.stringify(w.dropout)})`);
  if (w.gradDtype !== 'bf16' && w.gradDtype !== 'fp32') throw badInput('workload.gradDtype', `unknown ${JSON.stringify(w.gradDtype)}`, 'valid: bf16, fp32');
  for (const k of ['sequenceParallel', 'tpCommOverlap'] as const) {
    if (w[k] !== undefined && typeof w[k] !== 'boolean') throw badInput(`workload.${k}`, `must be a boolean (got ${JSON.stringify(w[k])})`, 'true, false, or absent (false)');
  }
  if (w.tpCommOverlap === true && w.sequenceParallel !== true) {
    // Megatron-LM refuses --tp-comm-overlap without --sequence-parallel (arguments.py)
    throw badInput('workload.tpCommOverlap', 'requires workload.sequenceParallel', 'set sequenceParallel: true, or drop tpCommOverlap');
  }

  const stages = plan.stages;
  if (!Array.isArray(stages) || stages.length === 0) throw badInput('stages', 'must list at least one stage');
  const pp = stages.length;
  let next = 0;
  let used = 0;
  stages.forEach((s, i) => {
    const f = `stages[${i}]`;
    if (!Array.isArray(s.layers) || s.layers.length !== 2 || !Number.isInteger(s.layers[0]) || !Number.isInteger(s.layers[1])) {
      throw badInput(`${f}.layers`, 'must be an inclusive range [first, last] of integers');
    }
    const [first, last] = s.layers;
    if (first !== next || last < first) {
      throw badInput(`${f}.layers`, `[${first}, ${last}] does not continue the partition`, `valid: starts at ${next} and ends at ≥ ${next}; stages must cover layers 0..${m.layers - 1} contiguously`);
    }
    if (last > m.layers - 1) throw badInput(`${f}.layers`, `[${first}, ${last}] runs past the last layer ${m.layers - 1}`, `valid: last ≤ ${m.layers - 1}`);
    next = last + 1;
    if (s.nodes === 0 || s.gpusPerNode === 0) throw badInput(`${f}.${s.nodes === 0 ? 'nodes' : 'gpusPerNode'}`, 'zero GPUs in a stage', 'a positive integer');
    posInt(`${f}.nodes`, s.nodes);
    posInt(`${f}.gpusPerNode`, s.gpusPerNode);
    posInt(`${f}.dp`, s.dp);
    posInt(`${f}.tp`, s.tp);
    posInt(`${f}.microBatch`, s.microBatch);
    if (s.gpusPerNode > cl.gpusPerNode) throw badInput(`${f}.gpusPerNode`, `${s.gpusPerNode} exceeds the cluster's ${cl.gpusPerNode} GPUs per node`, `valid: ≤ ${cl.gpusPerNode}`);
    if (s.nodes > 1 && s.gpusPerNode !== cl.gpusPerNode) throw badInput(`${f}.gpusPerNode`, `a stage spanning ${s.nodes} nodes must use whole nodes`, `valid: ${cl.gpusPerNode}`);
    if (s.dp * s.tp !== s.nodes * s.gpusPerNode) {
      throw badInput(`${f}.dp`, `dp ${s.dp} × tp ${s.tp} = ${s.dp * s.tp} ≠ the stage's ${s.nodes} × ${s.gpusPerNode} = ${s.nodes * s.gpusPerNode} GPUs`, 'dp × tp must equal nodes × gpusPerNode');
    }
    if (m.heads % s.tp !== 0) throw badInput(`${f}.tp`, `${s.tp} does not divide heads ${m.heads}`, `valid: a divisor of ${m.heads}`);
    if (m.kvHeads % s.tp !== 0) throw badInput(`${f}.tp`, `${s.tp} does not divide kvHeads ${m.kvHeads}`, `valid: a divisor of ${m.kvHeads}`);
    if (m.ffnHidden % s.tp !== 0) throw badInput(`${f}.tp`, `${s.tp} does not divide ffnHidden ${m.ffnHidden}`, `valid: a divisor of ${m.ffnHidden}`);
    if (![0, 1, 2, 3].includes(s.zero)) throw badInput(`${f}.zero`, `unknown ZeRO level ${JSON.stringify(s.zero)}`, 'valid: 0, 1, 2, 3');
    const ck = s.ckpt;
    if (!ck || !CKPT_MODES.includes(ck.mode)) throw badInput(`${f}.ckpt.mode`, `unknown ${JSON.stringify(ck?.mode)}`, `valid: ${CKPT_MODES.join(', ')}`);
    const nl = last - first + 1;
    if (ck.mode === 'layers') {
      if (typeof ck.count !== 'number' || !Number.isInteger(ck.count) || ck.count < 0 || ck.count > nl) {
        throw badInput(`${f}.ckpt.count`, `${JSON.stringify(ck.count)} is not a layer count of this ${nl}-layer stage`, `valid: 0..${nl}`);
      }
      if (ck.others !== undefined && !isPartialRecompute(ck.others)) {
        throw badInput(`${f}.ckpt.others`, `unknown ${JSON.stringify(ck.others)}`, `valid: ${PARTIAL_RECOMPUTE.join(', ')} (or absent: no recomputation in the other layers)`);
      }
    } else if (ck.others !== undefined) {
      throw badInput(`${f}.ckpt.others`, `applies only to mode "layers" (this stage's mode is "${ck.mode}")`, 'drop it, or use mode "layers" with a count');
    }
    const o = s.offload;
    if (!o || typeof o !== 'object') throw badInput(`${f}.offload`, 'is required', '{weights, grads, optimizer, activations} ratios in [0, 1]');
    for (const k of OFFLOAD_KEYS) {
      const v = o[k];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw badInput(`${f}.offload.${k}`, `ratio ${JSON.stringify(v)} is out of range`, 'valid: a number in [0, 1]');
    }
    if (s.splitBackward !== undefined && typeof s.splitBackward !== 'boolean') throw badInput(`${f}.splitBackward`, `${JSON.stringify(s.splitBackward)} is not a boolean`, 'valid: true or false (or absent: false)');
    if (s.splitBackward === true && o.activations > 0) {
      throw badInput(`${f}.splitBackward`, 'cannot combine with activation offloading (the weight pass would pin the offloaded activations)', 'set offload.activations to 0, or splitBackward to false');
    }
    used += s.nodes * s.gpusPerNode;
  });
  if (next !== m.layers) throw badInput('stages', `cover layers 0..${next - 1}, the model has ${m.layers}`, `valid: the last stage ends at layer ${m.layers - 1}`);
  const s0 = stages[0]!;
  for (let i = 1; i < pp; i++) {
    const s = stages[i]!;
    for (const k of ['dp', 'tp', 'microBatch'] as const) {
      if (s[k] !== s0[k]) throw badInput(`stages[${i}].${k}`, `${s[k]} differs from stage 0's ${s0[k]}`, `v1 plans use one mesh: every stage has the same dp, tp and microBatch`);
    }
  }
  if (used !== gpus) {
    throw badInput('stages', `dp × tp × pp = ${s0.dp} × ${s0.tp} × ${pp} = ${used} GPUs ≠ the cluster's ${cl.nodes} × ${cl.gpusPerNode} = ${gpus}`, 'the stages must use every GPU of the cluster slice');
  }
  if (plan.globalBatch !== s0.dp * s0.microBatch * plan.gradAccum) {
    throw badInput(
      'globalBatch',
      `${plan.globalBatch} ≠ dp ${s0.dp} × microBatch ${s0.microBatch} × gradAccum ${plan.gradAccum} = ${s0.dp * s0.microBatch * plan.gradAccum}`,
      'globalBatch must equal dp × microBatch × gradAccum',
    );
  }
  if (plan.gradAccum < pp) throw badInput('gradAccum', `${plan.gradAccum} is less than the ${pp} pipeline stages`, `1F1B needs gradAccum ≥ pp (${pp})`);
  const pr = plan.prePost;
  if (!pr || typeof pr !== 'object') throw badInput('prePost', 'is required', '{dp, tp, zero}');
  posInt('prePost.dp', pr.dp);
  posInt('prePost.tp', pr.tp);
  if (![0, 1, 2, 3].includes(pr.zero)) throw badInput('prePost.zero', `unknown ZeRO level ${JSON.stringify(pr.zero)}`, 'valid: 0, 1, 2, 3');
  const stageGpus = s0.nodes * s0.gpusPerNode;
  if (pr.dp * pr.tp !== stageGpus) throw badInput('prePost.dp', `dp ${pr.dp} × tp ${pr.tp} ≠ the stage's ${stageGpus} GPUs`, 'prePost.dp × prePost.tp must equal the GPUs of a stage');
}

/** Fully recomputed layers c and the partial-recomputation code of the others (see partialCode). */
export function ckptCount(ck: Ckpt, layers: number): { c: number; sel: number } {
  switch (ck.mode) {
    case 'none':
      return { c: 0, sel: 0 };
    case 'selective':
    case 'norms':
    case 'pointwise':
      return { c: 0, sel: partialCode(ck.mode) };
    case 'layers':
      return { c: ck.count ?? 0, sel: partialCode(ck.others) };
    case 'full':
      return { c: layers, sel: 0 };
  }
}

export function stagePosition(i: number, pp: number): StagePosition {
  return pp === 1 ? 'only' : i === 0 ? 'first' : i === pp - 1 ? 'last' : 'middle';
}

/** The candidate row of a plan's stage. */
export function stageRow(plan: Plan, s: Stage): Row {
  const nl = s.layers[1] - s.layers[0] + 1;
  const { sel } = ckptCount(s.ckpt, nl);
  return {
    b: s.microBatch,
    dp: s.dp,
    tp: s.tp,
    ...zeroFlags(s.zero),
    wo: s.offload.weights,
    go: s.offload.grads,
    oo: s.offload.optimizer,
    ao: s.offload.activations,
    sel,
    ppdp: plan.prePost.dp,
    pptp: plan.prePost.tp,
    ppzero: plan.prePost.zero,
  };
}

function gib(x: number): string {
  return (x / GIB).toFixed(1);
}

/** Predict a validated plan on the given hardware. Infeasible plans are a result (fits=false, reason), never a throw. */
export function predictPlan(plan: Plan, hw: HardwareParams): Prediction {
  validatePlan(plan);
  const pp = plan.stages.length;
  const G = plan.gradAccum;
  const capacity = hw.memoryBytes * hw.usableMemoryFraction;
  const stable: number[] = [];
  const delta: number[] = [];
  const peaks: number[] = [];
  const required: number[] = [];
  const wgrad: number[] = [];
  const hideable: number[] = [];
  let gpuOffset = 0;
  plan.stages.forEach((s, i) => {
    const position = stagePosition(i, pp);
    const sm = compileStageModel({ model: plan.model, seqLen: plan.seqLen, workload: plan.workload, hw, position });
    const stageGpus = s.nodes * s.gpusPerNode;
    gpuOffset += stageGpus;
    const cross = i < pp - 1 && plan.cluster.nodes > 1 && gpuOffset % plan.cluster.gpusPerNode === 0 ? 1 : 0;
    const scalars: RowScalars = { G, nodes: s.nodes, gpn: s.gpusPerNode, cross };
    const nl = s.layers[1] - s.layers[0] + 1;
    const { c } = ckptCount(s.ckpt, nl);
    const rows = candidateRows(1, stageRow(plan, s));
    const prepared = sm.prepare(rows, scalars, 1);
    const out = outputArrays(1);
    sm.evalCell(prepared, { l: nl, c, p: Math.min(pp - i - 1, G - 1) }, out);
    const split = s.splitBackward === true;
    stable.push(out.stable[0]!);
    delta.push(out.delta[0]!);
    peaks.push(split ? out.peakSplit[0]! : out.peak[0]!);
    required.push(split ? out.requiredSplit[0]! : out.required[0]!);
    wgrad.push(split ? out.wgrad[0]! : 0);
    hideable.push(split ? out.hideable[0]! : 0);
  });
  const iter = iterationSeconds(stable, delta, G, wgrad, hideable) + hw.iterationOverheadSeconds;
  const gpus = plan.cluster.nodes * plan.cluster.gpusPerNode;
  const tokens = plan.globalBatch * plan.seqLen;
  const modelFlops = modelFlopsPerIteration(plan.model, plan.globalBatch, plan.seqLen);
  const hwFlops = modelFlops + recomputeFlops(plan);
  let worst = -1;
  let short = 0;
  required.forEach((r, i) => {
    if (r - capacity > short) {
      short = r - capacity;
      worst = i;
    }
  });
  const fits = worst < 0;
  const reason = fits
    ? null
    : `stage ${worst} needs ${gib(required[worst]!)} GiB/GPU, capacity ${gib(capacity)} GiB (short by ${gib(short)} GiB)`;
  // p2p time per micro-batch per boundary, for reporting
  const lw = { seqLen: plan.seqLen, flash: plan.workload.flash, dropout: plan.workload.dropout, sequenceParallel: plan.workload.sequenceParallel === true };
  const out0 = interpret(blockQuantities(plan.model, lw).out, {
    b: plan.stages[0]!.microBatch,
    tp: plan.stages[0]!.tp,
  });
  const p2p = pp > 1 ? 2 * compileStageModel({ model: plan.model, seqLen: plan.seqLen, workload: plan.workload, hw, position: 'first' }).fns.p2p!(out0, 0) : 0;
  return {
    fits,
    reason,
    iterationSeconds: iter,
    tokensPerSecond: tokens / iter,
    mfu: modelFlops / (iter * gpus * hw.peakFlops),
    stages: stable.map((st, i) => ({ stableSeconds: st, deltaSeconds: delta[i]!, peakMemoryBytes: peaks[i]!, requiredMemoryBytes: required[i]! })),
    modelFlopsPerIteration: modelFlops,
    hardwareFlopsPerIteration: hwFlops,
    flopsConvention: FLOPS_CONVENTION,
    memoryCapacityBytes: capacity,
    p2pSecondsPerMicroBatch: p2p,
    overheadSeconds: hw.iterationOverheadSeconds,
    hardware: hw.name,
  };
}

/**
 * FLOPs of checkpoint recomputation per iteration (full: the layer's forward; selective: the attention core;
 * norms and pointwise: the core unless flash keeps it, norms and activation functions being memory-bound).
 */
export function recomputeFlops(plan: Plan): number {
  const q = blockQuantities(plan.model, { seqLen: plan.seqLen, flash: plan.workload.flash, dropout: plan.workload.dropout });
  const perSeq = { b: 1, tp: 1 };
  const layerFwd = interpret(q.flopsFwd, perSeq);
  const core = q.core.gemms.reduce((a, g) => a + interpret(g.flops, perSeq), 0);
  let total = 0;
  for (const s of plan.stages) {
    const nl = s.layers[1] - s.layers[0] + 1;
    const { c, sel } = ckptCount(s.ckpt, nl);
    const partial = sel === 1 || (sel >= 2 && q.pointwise.withCore) ? core : 0;
    total += c * layerFwd + (nl - c) * partial;
  }
  return total * plan.globalBatch;
}

// ---------------------------------------------------------------------------------------------------------------
// Uniform plans from flags

export interface UniformPlanOptions {
  model: string | ModelSpec;
  gpu: string;
  nodes: number;
  gpusPerNode: number;
  globalBatch: number;
  seqLen?: number;
  tp: number;
  pp: number;
  dp: number;
  /** Micro-batch per GPU; derived from globalBatch / (dp · gradAccum) when omitted. */
  microBatch?: number;
  /** Derived from globalBatch / (dp · microBatch) when omitted. */
  gradAccum?: number;
  zero?: 0 | 1 | 2 | 3;
  ckpt?: 'none' | 'selective' | 'norms' | 'pointwise' | 'full' | number;
  offload?: Partial<Offload>;
  flash?: boolean;
  dropout?: number;
  gradDtype?: Workload['gradDtype'];
  /** Megatron sequence parallelism (Workload.sequenceParallel); default false. */
  sequenceParallel?: boolean;
  /** Megatron-Core TP communication/GEMM overlap (Workload.tpCommOverlap; needs sequenceParallel); default false. */
  tpCommOverlap?: boolean;
  space?: string;
}

/**
 * Layer split: ⌊L/pp⌋ per stage; the L mod pp remainder layers go one each to the last stages (never the first,
 * which also holds the embedding and the most in-flight micro-batches).
 */
export function uniformSplit(layers: number, pp: number): Array<[number, number]> {
  const base = Math.floor(layers / pp);
  const rem = layers % pp;
  const out: Array<[number, number]> = [];
  let start = 0;
  for (let i = 0; i < pp; i++) {
    const n = base + (i >= pp - rem ? 1 : 0);
    out.push([start, start + n - 1]);
    start += n;
  }
  return out;
}

export function uniformPlan(o: UniformPlanOptions): Plan {
  const model = typeof o.model === 'string' ? resolveModel(o.model) : resolveModel(o.model);
  const nodes = posInt('nodes', o.nodes);
  const gpn = posInt('gpusPerNode', o.gpusPerNode);
  const tp = posInt('tp', o.tp);
  const pp = posInt('pp', o.pp);
  const dp = posInt('dp', o.dp);
  const gb = posInt('globalBatch', o.globalBatch);
  if (dp * tp * pp !== nodes * gpn) throw badInput('dp', `dp ${dp} × tp ${tp} × pp ${pp} = ${dp * tp * pp} ≠ ${nodes} × ${gpn} = ${nodes * gpn} GPUs`, 'dp × tp × pp must equal nodes × gpusPerNode');
  if (pp > model.layers) throw badInput('pp', `${pp} stages for ${model.layers} layers`, `valid: 1..${model.layers}`);
  let mb = o.microBatch;
  let ga = o.gradAccum;
  if (mb === undefined && ga === undefined) ga = Math.max(pp, 1);
  if (mb === undefined) {
    posInt('gradAccum', ga);
    if (gb % (dp * ga!) !== 0) throw badInput('globalBatch', `${gb} is not divisible by dp ${dp} × gradAccum ${ga}`, 'give --micro-batch explicitly');
    mb = gb / (dp * ga!);
  }
  posInt('microBatch', mb);
  if (ga === undefined) {
    if (gb % (dp * mb) !== 0) throw badInput('globalBatch', `${gb} is not divisible by dp ${dp} × microBatch ${mb}`, 'valid: a multiple of dp × microBatch');
    ga = gb / (dp * mb);
  }
  const stageGpus = dp * tp;
  const sNodes = stageGpus >= gpn ? stageGpus / gpn : 1;
  const sGpn = stageGpus >= gpn ? gpn : stageGpus;
  if (!Number.isInteger(sNodes) || (stageGpus < gpn && gpn % stageGpus !== 0)) {
    throw badInput('dp', `a stage of dp × tp = ${stageGpus} GPUs does not tile nodes of ${gpn}`, `valid: dp × tp dividing ${gpn} or a multiple of it`);
  }
  const zero = o.zero ?? 1;
  const offload: Offload = { weights: 0, grads: 0, optimizer: 0, activations: 0, ...(o.offload ?? {}) };
  const split = uniformSplit(model.layers, pp);
  const ckpt = (n: number): Ckpt => {
    const c = o.ckpt ?? 'none';
    if (typeof c === 'number') return { mode: 'layers', count: c };
    if (c === 'none' || c === 'full' || isPartialRecompute(c)) return { mode: c };
    throw badInput('ckpt', `unknown ${JSON.stringify(c)}`, `valid: none, selective, norms, pointwise, full, or a layer count 0..${n}`);
  };
  const stages: Stage[] = split.map((layers) => ({
    layers,
    nodes: sNodes,
    gpusPerNode: sGpn,
    dp,
    tp,
    microBatch: mb!,
    zero,
    ckpt: ckpt(layers[1] - layers[0] + 1),
    offload: { ...offload },
  }));
  const seqLen = o.seqLen ?? model.seqLen;
  const name = model.name ?? model.arch;
  const plan: Plan = {
    version: PLAN_VERSION,
    id: `uniform-${name}-${o.gpu}-${nodes}x${gpn}-dp${dp}-tp${tp}-pp${pp}-b${mb}-g${ga}`,
    space: o.space ?? 'uniform',
    model,
    cluster: { gpu: o.gpu, nodes, gpusPerNode: gpn },
    globalBatch: gb,
    seqLen,
    gradAccum: ga,
    workload: {
      flash: o.flash ?? true,
      dropout: o.dropout ?? 0,
      gradDtype: o.gradDtype ?? 'bf16',
      ...(o.sequenceParallel ? { sequenceParallel: true } : {}),
      ...(o.tpCommOverlap ? { tpCommOverlap: true } : {}),
    },
    stages,
    prePost: { dp, tp, zero },
  };
  validatePlan(plan);
  return plan;
}

/** Total parameters of a plan's model (for reports). */
export function planParams(plan: Plan): number {
  return paramCounts(plan.model).total;
}
