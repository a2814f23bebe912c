/**
 * The search (research/mist.md §1, §4, §5): for every global shape (tp, pipeline stages S on a uniform mesh,
 * gradient accumulation G, micro-batch b, dp) build the per-stage options by intra-stage Pareto selection over
 * the compiled stage model (cost.ts) and solve the inter-stage problem (solver.ts), pruning shapes whose lower
 * bound cannot beat the incumbent. Baseline spaces (megatron-paper, megatron, deepspeed) enumerate their uniform
 * grids in the same cost model. The final plan is re-predicted by `predictPlan`, so every number reported comes
 * from the single cost model.
 *
 * Pure: no I/O, no clock (the caller injects `now`), no randomness.
 */
import type { ModelSpec } from '../domain/model.js';
import { isPartialRecompute, PLAN_VERSION, type Ckpt, type PartialRecompute, type Plan, type Stage, type Workload } from '../domain/plan.js';
import { badInput } from '../../../protocol/src/errors.js';
import type { HardwareParams } from './hardware-types.js';
import {
  candidateRows,
  compileStageModel,
  iterationSeconds,
  outputArrays,
  PARTIAL_CODE,
  partialCode,
  zeroFlags,
  type CandidateRows,
  type StageModel,
  type StageOutput,
  type StagePosition,
} from './cost.js';
import { predictPlan, stagePosition, uniformSplit } from './predict.js';
import type { InterStageProblem, PolicyOption, Solver, SolveStatus } from './solver.js';
import { FrontBuilder, sampleWeights, thinFront } from './pareto.js';
import {
  BASELINE_SPACES,
  checkPins,
  enumerateShapes,
  formatPins,
  layerChoices,
  MIST_KNOBS,
  offloadTuples,
  pinnedGrid,
  SPACE_NAMES,
  type OffloadTuple,
  type Pins,
  type Shape,
  type SpaceName,
  type StageKnobs,
} from './space.js';

// ---------------------------------------------------------------------------------------------------------------
// Public types

export interface TuneRequest {
  model: ModelSpec;
  cluster: { gpu: string; nodes: number; gpusPerNode: number };
  hw: HardwareParams;
  globalBatch: number;
  seqLen: number;
  workload: Workload;
  space: SpaceName;
  pins?: Pins;
  /** Pareto samples per stage (default 30, Mist's). */
  samples?: number;
  /** Stop the outer loop after this many seconds (by the injected clock) once a plan is known. */
  timeBudgetSeconds?: number;
  /** Also search the baseline spaces (default true for every space but the baselines themselves). */
  baselines?: boolean;
}

export interface TuneProgress {
  phase: string;
  done: number;
  total: number;
}

export interface TuneDeps {
  solver: Solver;
  /** Seconds on any monotonic clock (the CLI passes performance.now() / 1000). */
  now(): number;
  onProgress?(p: TuneProgress): void;
}

export interface FrontierPoint {
  stableSeconds: number;
  deltaSeconds: number;
  ckpt: Ckpt;
  zero: number;
  offload: { weights: number; grads: number; optimizer: number; activations: number };
  /**
   * Present (true) on a split-backward option: its wgradSeconds leave the pipeline's drain, and its
   * hiddenTransferSeconds of pipeline transfers run during that weight pass (solver.ts).
   */
  splitBackward?: boolean;
  wgradSeconds?: number;
  hiddenTransferSeconds?: number;
  chosen: boolean;
}

export interface Alternative {
  tp: number;
  pp: number;
  dp: number;
  microBatch: number;
  gradAccum: number;
  layers: number[];
  iterationSeconds: number;
}

export interface BaselineResult {
  iterationSeconds: number | null;
  plan: Plan | null;
  reason?: string;
}

/** The reasons behind a plan; stored beside it (plan history), never inside it. */
export interface DecisionRecord {
  space: SpaceName;
  pins: string;
  status: SolveStatus | 'infeasible';
  seconds: number;
  /** Candidate cells scored: rows × (l, c, p) cells of the stage model, plus baseline grid points. */
  candidates: number;
  shapes: { total: number; solved: number; pruned: number; skippedByBudget: number };
  solver: string;
  /** Per stage of the chosen plan: the options the inter-stage solver chose from at the chosen layer count. */
  frontiers: Array<{ stage: number; layers: number; points: FrontierPoint[] }>;
  /** The best plan of the other shapes solved, best first. */
  alternatives: Alternative[];
  baselines: Record<string, BaselineResult>;
}

export interface TuneResult {
  plan: Plan | null;
  record: DecisionRecord;
  infeasible?: { reason: string; closest?: Plan };
}

// ---------------------------------------------------------------------------------------------------------------
// Context

const GIB = 2 ** 30;
/** Feasibility: required ≤ capacity·(1 − FIT_SLACK), so the re-prediction of the plan fits too. */
const FIT_SLACK = 1e-9;
const TOP_K = 8;

interface Ctx {
  req: TuneRequest;
  deps: TuneDeps;
  L: number;
  cap: number;
  start: number;
  models: Map<StagePosition, StageModel>;
  candidates: number;
  weights: Float64Array;
}

function stageModel(ctx: Ctx, position: StagePosition): StageModel {
  let m = ctx.models.get(position);
  if (!m) {
    m = compileStageModel({ model: ctx.req.model, seqLen: ctx.req.seqLen, workload: ctx.req.workload, hw: ctx.req.hw, position });
    ctx.models.set(position, m);
  }
  return m;
}

/** Whether stage i's outgoing P2P link crosses nodes (as predictPlan computes it). */
function crossOf(i: number, S: number, shape: Shape, clusterNodes: number, gpusPerNode: number): number {
  const stageGpus = shape.mesh.nodes * shape.mesh.gpusPerNode;
  return i < S - 1 && clusterNodes > 1 && ((i + 1) * stageGpus) % gpusPerNode === 0 ? 1 : 0;
}

/** One candidate row's knobs. */
interface RowMeta extends OffloadTuple {
  zero: 0 | 1 | 2 | 3;
  sel: number;
}

interface Batch {
  meta: RowMeta[];
  rows: CandidateRows;
  n: number;
  prepared: ReturnType<StageModel['prepare']>;
  outLo: Record<StageOutput, Float64Array>;
  outHi: Record<StageOutput, Float64Array>;
}

function makeBatch(sm: StageModel, meta: RowMeta[], shape: Shape, ppZero: number, scalars: { G: number; nodes: number; gpn: number; cross: number }): Batch {
  const n = meta.length;
  const rows = candidateRows(n, { b: shape.b, dp: shape.dp, tp: shape.tp, ppdp: shape.dp, pptp: shape.tp, ppzero: ppZero });
  meta.forEach((m, i) => {
    const z = zeroFlags(m.zero);
    rows.wre[i] = z.wre;
    rows.gre[i] = z.gre;
    rows.ore[i] = z.ore;
    rows.wo[i] = m.wo;
    rows.go[i] = m.go;
    rows.oo[i] = m.oo;
    rows.ao[i] = m.ao;
    rows.sel[i] = m.sel;
  });
  return { meta, rows, n, prepared: sm.prepare(rows, scalars, n), outLo: outputArrays(n), outHi: outputArrays(n) };
}

const PARTIAL = new Map<number, PartialRecompute>(Object.entries(PARTIAL_CODE).map(([mode, code]) => [code, mode as PartialRecompute]));

/** The partial-recomputation code a ckpt pin asks for (0 for none, full, a layer count, or no pin). */
function pinnedPartial(pins: Pins): number {
  return isPartialRecompute(pins.ckpt) ? partialCode(pins.ckpt) : 0;
}

function ckptOf(sel: number, c: number, l: number): Ckpt {
  const partial = PARTIAL.get(sel);
  if (c === l && l > 0) return { mode: 'full' };
  if (c === 0) return partial ? { mode: partial } : { mode: 'none' };
  return partial ? { mode: 'layers', count: c, others: partial } : { mode: 'layers', count: c };
}

// ---------------------------------------------------------------------------------------------------------------
// Knobs of a shape under a space and the pins

interface ShapeKnobs {
  /** (zero, sel) groups: base row (the smallest offload tuple) and whether offload rows are tried. */
  groups: Array<{ zero: 0 | 1 | 2 | 3; sel: number; offload: boolean }>;
  /** Whether a group with partial recomputation (sel > 0) may also fully recompute some layers (c > 0). */
  partialWithLayers: boolean;
  /** Whether stages may split their backward, and whether they must (the splitBackward pin). */
  split: boolean;
  splitOnly: boolean;
  base: OffloadTuple;
  /** Offload tuples other than the base: optimizer/activation ratios only ("light"), or also weights/grads ("heavy"). */
  light: OffloadTuple[];
  heavy: OffloadTuple[];
  ppZero: 0 | 1 | 2 | 3;
  cValues(l: number): number[];
}

function shapeKnobs(knobs: StageKnobs, pins: Pins, dp: number): ShapeKnobs {
  const one = (z: 0 | 1 | 2 | 3): Array<0 | 1 | 2 | 3> => [z];
  const zb = pins.zero !== undefined ? one(pins.zero) : dp > 1 ? [...knobs.zeros] : one(1);
  const zo = pins.zero !== undefined ? one(pins.zero) : dp > 1 ? [...knobs.offloadZeros] : one(1);
  const pinned = pinnedPartial(pins);
  const sels = pinned ? [pinned] : pins.ckpt !== undefined ? [0] : [...knobs.partial];
  const tuples = offloadTuples(pinnedGrid(knobs.offload, pins));
  const groups: ShapeKnobs['groups'] = [];
  for (const sel of sels) for (const zero of zb) groups.push({ zero, sel, offload: tuples.length > 1 && zo.includes(zero) });
  const ck = pins.ckpt;
  return {
    groups,
    partialWithLayers: knobs.partialWithLayers,
    split: knobs.splitBackward && pins.splitBackward !== false,
    splitOnly: knobs.splitBackward && pins.splitBackward === true,
    base: tuples[0]!,
    light: tuples.slice(1).filter((t) => t.wo === tuples[0]!.wo && t.go === tuples[0]!.go),
    heavy: tuples.slice(1).filter((t) => t.wo !== tuples[0]!.wo || t.go !== tuples[0]!.go),
    ppZero: pins.zero ?? 1,
    cValues(l: number): number[] {
      if (ck === 'none' || isPartialRecompute(ck)) return [0];
      if (ck === 'full' || knobs.ckpt === 'full') return [l];
      if (typeof ck === 'number') return ck <= l ? [ck] : [];
      return Array.from({ length: l + 1 }, (_, c) => c);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Lower bound of a shape (valid for every plan of the shape: memory ignored, c = 0, no offload)

function lowerBound(ctx: Ctx, shape: Shape, sk: ShapeKnobs): number {
  const { S, G } = shape;
  const lmax = Math.ceil(ctx.L / S);
  const positions: StagePosition[] = S === 1 ? ['only'] : S === 2 ? ['first', 'last'] : ['first', 'middle', 'last'];
  const meta: RowMeta[] = [];
  for (const g of sk.groups) if (g.sel === 0) meta.push({ zero: g.zero, sel: 0, ...sk.base });
  if (meta.length === 0) meta.push({ zero: sk.groups[0]!.zero, sel: PARTIAL_CODE.selective, ...sk.base });
  let tmax = Infinity;
  let perLayer = Infinity;
  let wPerLayer = 0;
  const splits = sk.split && S > 1;
  for (const pos of positions) {
    const sm = stageModel(ctx, pos);
    const b = makeBatch(sm, meta, shape, sk.ppZero, { G, nodes: shape.mesh.nodes, gpn: shape.mesh.gpusPerNode, cross: 0 });
    sm.evalCell(b.prepared, { l: lmax, c: 0, p: 0 }, b.outLo);
    // (a split stage's period excludes up to its hideable transfers, the most at c = 0)
    for (let r = 0; r < b.n; r++) tmax = Math.min(tmax, b.outLo.stable[r]! - (splits ? b.outLo.hideable[r]! : 0));
    if (pos === 'middle' || pos === 'only') {
      if (ctx.L >= 3) {
        sm.evalCell(b.prepared, { l: 3, c: 0, p: 0 }, b.outLo);
        sm.evalCell(b.prepared, { l: 2, c: 0, p: 0 }, b.outHi);
        for (let r = 0; r < b.n; r++) {
          perLayer = Math.min(perLayer, b.outLo.stable[r]! - b.outHi.stable[r]!);
          wPerLayer = Math.max(wPerLayer, b.outLo.wgrad[r]! - b.outHi.wgrad[r]!);
        }
      }
    }
  }
  // Σ U + max E ≥ max T ≥ the bound on the period, and Σ U ≥ Σ (T − W) ≥ L·(per-layer T − per-layer W) (solver.ts)
  const sum = Number.isFinite(perLayer) ? Math.max(tmax, ctx.L * (perLayer - (splits ? wPerLayer : 0))) : tmax;
  return (G - 1) * tmax + sum;
}

// ---------------------------------------------------------------------------------------------------------------
// Intra-stage: options per stage and layer count

interface OptionRef {
  meta: RowMeta;
  c: number;
  split?: boolean;
  /** A split option's weight-gradient seconds (they depend on c) and the transfer seconds hidden behind them. */
  w?: number;
  h?: number;
}

interface StageOptions {
  problem: InterStageProblem;
  refs: OptionRef[][][];
}

interface Slot {
  i: number;
  p: number;
}

/** Weighted-sum accumulator of one (slot, layer count). */
interface Acc {
  val: Float64Array;
  x: Float64Array;
  y: Float64Array;
  ref: Array<OptionRef | null>;
}

function newAcc(A: number): Acc {
  return { val: new Float64Array(A).fill(Infinity), x: new Float64Array(A), y: new Float64Array(A), ref: new Array<OptionRef | null>(A).fill(null) };
}

/**
 * Where one kind of option (plain or split backward) accumulates: per stage × layer-choice index. The exact mode
 * keeps a split sink's fronts per recompute count c as well, since its options' weight-gradient time depends on c.
 */
interface Sink {
  split: boolean;
  accs: Array<Array<Acc | null>>;
  fronts: Array<Array<Map<number, FrontBuilder>>>;
}

function buildOptions(ctx: Ctx, shape: Shape, sk: ShapeKnobs, pins: Pins, wide: boolean, exact: boolean): StageOptions | null {
  const { S, G } = shape;
  const L = ctx.L;
  const { nodes, gpusPerNode } = ctx.req.cluster;
  const Lch = pins.layers ? [...new Set(pins.layers)].sort((a, b) => a - b) : layerChoices(L, S, G, wide);
  if (Lch.length === 0) return null;
  const cap = ctx.cap * (1 - FIT_SLACK);
  // partial recomputation with c > 0 only where the space combines it with layer recomputation
  const c0Only = (g: { sel: number }): boolean => g.sel > 0 && !sk.partialWithLayers;
  const W = ctx.weights;
  const A = W.length;
  const invG = 1 / G;

  // slots grouped into units of the same (position, cross)
  const units = new Map<string, { position: StagePosition; cross: number; slots: Slot[] }>();
  for (let i = 0; i < S; i++) {
    const position = stagePosition(i, S);
    const cross = crossOf(i, S, shape, nodes, gpusPerNode);
    const key = `${position}/${cross}`;
    let u = units.get(key);
    if (!u) units.set(key, (u = { position, cross, slots: [] }));
    u.slots.push({ i, p: Math.min(S - i - 1, G - 1) });
  }

  // accumulators per slot × layer-choice index: plain options, and split-backward ones (pipelines only)
  const newSink = (split: boolean): Sink => ({
    split,
    accs: Array.from({ length: S }, () => Lch.map(() => null)),
    fronts: Array.from({ length: S }, () => Lch.map(() => new Map<number, FrontBuilder>())),
  });
  // (a one-stage plan gains nothing from a split: it splits only when pinned to)
  const plain = newSink(false);
  const splitSink = sk.split && (S > 1 || sk.splitOnly) ? newSink(true) : null;
  const sinks = splitSink ? (sk.splitOnly ? [splitSink] : [plain, splitSink]) : [plain];
  const frontRefs: OptionRef[] = [];

  for (const u of units.values()) {
    u.slots.sort((a, b) => a.p - b.p);
    const K = u.slots.length;
    const ps = u.slots.map((s) => s.p);
    const pLo = ps[0]!;
    const pHi = ps[K - 1]!;
    const sm = stageModel(ctx, u.position);
    const scalars = { G, nodes: shape.mesh.nodes, gpn: shape.mesh.gpusPerNode, cross: u.cross };
    const baseMeta: RowMeta[] = sk.groups.map((g) => ({ zero: g.zero, sel: g.sel, ...sk.base }));
    const base = makeBatch(sm, baseMeta, shape, sk.ppZero, scalars);
    const offBatches = new Map<string, Batch>();
    const offBatch = (gi: number, kind: 'light' | 'heavy'): Batch => {
      const key = `${gi}/${kind}`;
      let b = offBatches.get(key);
      if (!b) {
        const g = sk.groups[gi]!;
        b = makeBatch(sm, sk[kind].map((t) => ({ zero: g.zero, sel: g.sel, ...t })), shape, sk.ppZero, scalars);
        offBatches.set(key, b);
      }
      return b;
    };
    // which layer counts each slot needs
    const lNeeded = new Set<number>();
    const slotNeeds = u.slots.map((s) => (pins.layers ? [pins.layers[s.i]!] : Lch));
    for (const ls of slotNeeds) for (const l of ls) lNeeded.add(l);

    // bucket scratch (weighted mode): for k = fit count 1..K, per weight
    const bucketVal = new Float64Array((K + 1) * A);
    const bucketRow = new Int32Array((K + 1) * A);
    const rowsMax = Math.max(base.n, sk.light.length, sk.heavy.length);
    const fitCount = new Int32Array(rowsMax);
    const fitCountSplit = new Int32Array(rowsMax);

    /** Each row's fit count (slots, ascending p, it fits) by one memory output evaluated at pLo and pHi. */
    const countFits = (b: Batch, key: 'required' | 'requiredSplit', into: Int32Array): void => {
      const lo = b.outLo[key];
      const hi = pHi !== pLo ? b.outHi[key] : lo;
      for (let r = 0; r < b.n; r++) {
        if (lo[r]! > cap) {
          into[r] = 0;
          continue;
        }
        if (hi[r]! <= cap) {
          into[r] = K;
          continue;
        }
        // required is affine in p (the in-flight micro-batches): count the slots below the crossing
        const slope = (hi[r]! - lo[r]!) / (pHi - pLo);
        const pfit = pLo + (cap - lo[r]!) / slope;
        let k = 0;
        while (k < K && ps[k]! <= pfit + 1e-9) k++;
        into[r] = k;
      }
    };
    /** Evaluate a batch at (l, c) and compute each row's fit counts, plain and with a split backward. */
    const evaluate = (b: Batch, l: number, c: number): void => {
      sm.evalCell(b.prepared, { l, c, p: pLo }, b.outLo);
      ctx.candidates += b.n;
      if (pHi !== pLo) {
        sm.evalCell(b.prepared, { l, c, p: pHi }, b.outHi);
        ctx.candidates += b.n;
      }
      countFits(b, 'required', fitCount);
      if (splitSink) countFits(b, 'requiredSplit', fitCountSplit);
    };

    const accumulate = (b: Batch, l: number, li: number, c: number): void => {
      accumulateInto(b, l, li, c, plain, fitCount);
      if (splitSink) accumulateInto(b, l, li, c, splitSink, fitCountSplit);
    };
    const accumulateInto = (b: Batch, l: number, li: number, c: number, sink: Sink, fits: Int32Array): void => {
      const stable = b.outLo.stable;
      const delta = b.outLo.delta;
      // the weight-gradient time depends on (l, c, shape) only: the same for every row of the cell
      const w = sink.split && b.n > 0 ? b.outLo.wgrad[0]! : 0;
      const h = sink.split && b.n > 0 ? b.outLo.hideable[0]! : 0;
      if (exact) {
        for (let s = 0; s < K; s++) {
          const slot = u.slots[s]!;
          if (!slotNeeds[s]!.includes(l)) continue;
          const byC = sink.fronts[slot.i]![li]!;
          const key = sink.split ? c : 0;
          let fb = byC.get(key);
          if (!fb) byC.set(key, (fb = new FrontBuilder()));
          // rows fitting at this slot; keep only this cell's non-dominated ones
          const idx: number[] = [];
          for (let r = 0; r < b.n; r++) if (fits[r]! > s) idx.push(r);
          if (!idx.length) continue;
          idx.sort((p, q) => stable[p]! - stable[q]! || delta[p]! - delta[q]!);
          let bestY = Infinity;
          for (const r of idx) {
            const y = delta[r]! * invG;
            if (y < bestY) {
              bestY = y;
              frontRefs.push(sink.split ? { meta: b.meta[r]!, c, split: true, w, h } : { meta: b.meta[r]!, c });
              fb.add(stable[r]!, y, frontRefs.length - 1);
            }
          }
        }
        return;
      }
      bucketVal.fill(Infinity);
      let any = false;
      for (let r = 0; r < b.n; r++) {
        const k = fits[r]!;
        if (k === 0) continue;
        any = true;
        const x = stable[r]!;
        const y = delta[r]! * invG;
        const off = k * A;
        for (let a = 0; a < A; a++) {
          const v = W[a]! * x + y;
          if (v < bucketVal[off + a]!) {
            bucketVal[off + a] = v;
            bucketRow[off + a] = r;
          }
        }
      }
      if (!any) return;
      // suffix minimum: slot s (0-based) sees the rows with fit count > s
      for (let a = 0; a < A; a++) {
        let bestV = Infinity;
        let bestR = -1;
        for (let k = K; k >= 1; k--) {
          const v = bucketVal[k * A + a]!;
          if (v < bestV) {
            bestV = v;
            bestR = bucketRow[k * A + a]!;
          }
          if (bestR < 0) continue;
          const s = k - 1;
          const slot = u.slots[s]!;
          if (!slotNeeds[s]!.includes(l)) continue;
          let acc = sink.accs[slot.i]![li];
          if (!acc) sink.accs[slot.i]![li] = acc = newAcc(A);
          if (bestV < acc.val[a]!) {
            acc.val[a] = bestV;
            acc.x[a] = stable[bestR]!;
            acc.y[a] = delta[bestR]! * invG;
            acc.ref[a] = sink.split ? { meta: b.meta[bestR]!, c, split: true, w, h } : { meta: b.meta[bestR]!, c };
          }
        }
      }
    };

    for (const l of lNeeded) {
      const li = Lch.indexOf(l);
      // groups for which some row without weight/grad offloading fits every slot at some c
      const lightOk = new Uint8Array(sk.groups.length);
      for (const c of sk.cValues(l)) {
        evaluate(base, l, c);
        const baseFit = Int32Array.from(fitCount.subarray(0, base.n));
        if (c > 0) {
          for (let gi = 0; gi < sk.groups.length; gi++) {
            if (!c0Only(sk.groups[gi]!)) continue;
            fitCount[gi] = 0;
            fitCountSplit[gi] = 0;
          }
        }
        // (more checkpointing is not dominated while a split backward still needs it to fit)
        let allFit = !splitSink || sk.groups.every((g, gi) => c0Only(g) || fitCountSplit[gi]! >= K);
        accumulate(base, l, li, c);
        for (let gi = 0; gi < sk.groups.length; gi++) {
          const g = sk.groups[gi]!;
          if (c0Only(g) && c > 0) continue;
          if (baseFit[gi]! >= K) {
            lightOk[gi] = 1;
            continue;
          }
          if (!c0Only(g)) allFit = false;
          if (!g.offload) continue;
          if (sk.light.length) {
            const ob = offBatch(gi, 'light');
            evaluate(ob, l, c);
            if (fitCount[ob.n - 1]! >= K) lightOk[gi] = 1;
            accumulate(ob, l, li, c);
          }
          if (exact && sk.heavy.length) {
            const ob = offBatch(gi, 'heavy');
            evaluate(ob, l, c);
            accumulate(ob, l, li, c);
          }
        }
        // every base row that may recompute layers fits at every slot: more checkpointing is dominated
        if (allFit) break;
      }
      // Weights/grads offloading (much slower to stream) is the last resort of the mist space: tried for a
      // group only when no checkpointing and optimizer/activation offloading lets it fit every stage.
      if (!exact && sk.heavy.length) {
        for (let gi = 0; gi < sk.groups.length; gi++) {
          const g = sk.groups[gi]!;
          if (!g.offload || lightOk[gi]) continue;
          const ob = offBatch(gi, 'heavy');
          for (const c of sk.cValues(l)) {
            if (c0Only(g) && c > 0) break;
            evaluate(ob, l, c);
            accumulate(ob, l, li, c);
          }
        }
      }
    }
  }

  // options per stage and layer choice
  const options: PolicyOption[][][] = [];
  const refs: OptionRef[][][] = [];
  let anyOption = false;
  for (let i = 0; i < S; i++) {
    const oi: PolicyOption[][] = [];
    const ri: OptionRef[][] = [];
    for (let li = 0; li < Lch.length; li++) {
      const o: PolicyOption[] = [];
      const r: OptionRef[] = [];
      for (const sink of sinks) {
        // a split option with transfers to hide comes twice: hiding them (a shorter period) or not (a shorter latency
        // and tail; solver.ts); the prediction then takes the best hidden amount in between (predict.ts)
        const options = (stable: number, delta: number, ref: OptionRef): PolicyOption[] =>
          !ref.w ? [{ stable, delta }] : ref.h ? [{ stable, delta, wgrad: ref.w, hidden: ref.h }, { stable, delta, wgrad: ref.w }] : [{ stable, delta, wgrad: ref.w }];
        if (exact) {
          for (const fb of sink.fronts[i]![li]!.values()) {
            for (const pt of thinFront(fb.points(), 400)) {
              for (const opt of options(pt.x, pt.y * G, frontRefs[pt.tag]!)) {
                o.push(opt);
                r.push(frontRefs[pt.tag]!);
              }
            }
          }
        } else {
          const acc = sink.accs[i]![li];
          if (acc) {
            const seen = new Set<string>();
            for (let a = 0; a < A; a++) {
              const ref = acc.ref[a];
              if (!ref) continue;
              const key = `${acc.x[a]}/${acc.y[a]}`;
              if (seen.has(key)) continue;
              seen.add(key);
              for (const opt of options(acc.x[a]!, acc.y[a]! * G, ref)) {
                o.push(opt);
                r.push(ref);
              }
            }
          }
        }
      }
      if (o.length) anyOption = true;
      oi.push(o);
      ri.push(r);
    }
    options.push(oi);
    refs.push(ri);
  }
  if (!anyOption) return null;
  return { problem: { L, S, G, layerChoices: Lch, options }, refs };
}

// ---------------------------------------------------------------------------------------------------------------
// Plans

interface StageChoice {
  l: number;
  meta: RowMeta;
  c: number;
  split?: boolean;
}

function buildPlan(ctx: Ctx, space: string, shape: Shape, ppZero: 0 | 1 | 2 | 3, choices: StageChoice[]): Plan {
  const r = ctx.req;
  let first = 0;
  const stages: Stage[] = choices.map((ch) => {
    const st: Stage = {
      layers: [first, first + ch.l - 1],
      nodes: shape.mesh.nodes,
      gpusPerNode: shape.mesh.gpusPerNode,
      dp: shape.dp,
      tp: shape.tp,
      microBatch: shape.b,
      zero: ch.meta.zero,
      ckpt: ckptOf(ch.meta.sel, ch.c, ch.l),
      offload: { weights: ch.meta.wo, grads: ch.meta.go, optimizer: ch.meta.oo, activations: ch.meta.ao },
    };
    if (ch.split) st.splitBackward = true;
    first += ch.l;
    return st;
  });
  const name = r.model.name ?? r.model.arch;
  return {
    version: PLAN_VERSION,
    id: `${space}-${name}-${r.cluster.gpu}-${r.cluster.nodes}x${r.cluster.gpusPerNode}-tp${shape.tp}-pp${shape.S}-dp${shape.dp}-b${shape.b}-g${shape.G}`,
    space,
    model: r.model,
    cluster: { ...r.cluster },
    globalBatch: r.globalBatch,
    seqLen: r.seqLen,
    gradAccum: shape.G,
    workload: { ...r.workload },
    stages,
    prePost: { dp: shape.dp, tp: shape.tp, zero: ppZero },
  };
}

interface Found {
  objective: number;
  plan: Plan;
  shape: Shape;
  frontiers?: DecisionRecord['frontiers'];
}

interface SpaceOutcome {
  best: Found | null;
  status: SolveStatus;
  solved: Found[];
  shapes: DecisionRecord['shapes'];
}

function overBudget(ctx: Ctx): boolean {
  const b = ctx.req.timeBudgetSeconds;
  return b !== undefined && ctx.deps.now() - ctx.start > b;
}

/** The Pareto/MILP engine: the mist space (wide = false, exact = false) and the exhaustive space (true, true). */
async function searchPareto(ctx: Ctx, space: SpaceName, knobs: StageKnobs, pins: Pins, wide: boolean, exact: boolean, incumbentIn?: Found | null): Promise<SpaceOutcome> {
  const r = ctx.req;
  const shapes = enumerateShapes(r.model, r.cluster.nodes, r.cluster.gpusPerNode, r.globalBatch, { microBatches: [1, 2, 4, 8] }, pins);
  const withLb = shapes.map((shape) => {
    const sk = shapeKnobs(knobs, pins, shape.dp);
    return { shape, sk, lb: lowerBound(ctx, shape, sk) };
  });
  withLb.sort((a, b) => a.lb - b.lb);
  let best: Found | null = incumbentIn ?? null;
  let incumbent = best ? best.objective : Infinity;
  let status: SolveStatus = 'optimal';
  const solved: Found[] = [];
  const stats = { total: shapes.length, solved: 0, pruned: 0, skippedByBudget: 0 };
  for (let k = 0; k < withLb.length; k++) {
    const { shape, sk, lb } = withLb[k]!;
    ctx.deps.onProgress?.({ phase: space, done: k, total: withLb.length });
    if (best && overBudget(ctx)) {
      stats.skippedByBudget = withLb.length - k;
      status = 'feasible';
      break;
    }
    if (lb >= incumbent) {
      stats.pruned += withLb.length - k; // sorted by bound: every later shape is pruned too
      break;
    }
    const so = buildOptions(ctx, shape, sk, pins, wide, exact);
    if (!so) continue;
    if (Number.isFinite(incumbent)) so.problem.incumbent = incumbent;
    const sol = await ctx.deps.solver.solve(so.problem, { timeLimitSeconds: 30, relGap: 1e-6 });
    stats.solved++;
    if (sol.status !== 'optimal' && sol.status !== 'feasible') continue;
    if (sol.status === 'feasible') status = 'feasible';
    const choices: StageChoice[] = sol.layers.map((l, i) => {
      const j = so.problem.layerChoices.indexOf(l);
      const ref = so.refs[i]![j]![sol.choice[i]!]!;
      return { l, meta: ref.meta, c: ref.c, split: ref.split === true };
    });
    const plan = buildPlan(ctx, space, shape, sk.ppZero, choices);
    const found: Found = { objective: sol.objective, plan, shape };
    solved.push(found);
    if (sol.objective < incumbent) {
      incumbent = sol.objective;
      found.frontiers = sol.layers.map((l, i) => {
        const j = so.problem.layerChoices.indexOf(l);
        return {
          stage: i,
          layers: l,
          points: so.problem.options[i]![j]!.map((o, q) => {
            const ref = so.refs[i]![j]![q]!;
            return {
              stableSeconds: o.stable,
              deltaSeconds: o.delta,
              ckpt: ckptOf(ref.meta.sel, ref.c, l),
              zero: ref.meta.zero,
              offload: { weights: ref.meta.wo, grads: ref.meta.go, optimizer: ref.meta.oo, activations: ref.meta.ao },
              ...(ref.split ? { splitBackward: true, wgradSeconds: o.wgrad ?? 0, hiddenTransferSeconds: o.hidden ?? 0 } : {}),
              chosen: q === sol.choice[i],
            };
          }),
        };
      });
      best = found;
    }
  }
  ctx.deps.onProgress?.({ phase: space, done: withLb.length, total: withLb.length });
  return { best, status, solved, shapes: stats };
}

// ---------------------------------------------------------------------------------------------------------------
// Baseline grids: uniform partition, one global setting per plan

interface GridVariant {
  zero: 0 | 1 | 2 | 3;
  sel: number;
  off: OffloadTuple;
  /** c per stage of l layers. */
  ckpt: (l: number) => number;
}

const NO_OFFLOAD: OffloadTuple = { wo: 0, go: 0, oo: 0, ao: 0 };

function gridVariants(space: SpaceName, shape: Shape, L: number): GridVariant[] {
  const full = (l: number): number => l;
  const none = (): number => 0;
  switch (space) {
    case 'megatron-paper':
      return [{ zero: 1, sel: 0, off: NO_OFFLOAD, ckpt: full }];
    case 'megatron': {
      const out: GridVariant[] = [];
      const lmax = Math.ceil(L / shape.S);
      for (const zero of [0, 1] as const) {
        out.push({ zero, sel: 0, off: NO_OFFLOAD, ckpt: none });
        out.push({ zero, sel: PARTIAL_CODE.selective, off: NO_OFFLOAD, ckpt: none });
        // Megatron-Core --recompute-granularity selective --recompute-modules layernorm (+ core_attn without flash)
        out.push({ zero, sel: PARTIAL_CODE.norms, off: NO_OFFLOAD, ckpt: none });
        for (let n = 1; n < lmax; n++) out.push({ zero, sel: 0, off: NO_OFFLOAD, ckpt: (l) => Math.min(n, l) });
        out.push({ zero, sel: 0, off: NO_OFFLOAD, ckpt: full });
      }
      return out;
    }
    case 'deepspeed': {
      if (shape.S > 1 || shape.dp === 1) return [{ zero: 1, sel: 0, off: NO_OFFLOAD, ckpt: full }];
      return [
        { zero: 1, sel: 0, off: NO_OFFLOAD, ckpt: full },
        { zero: 2, sel: 0, off: NO_OFFLOAD, ckpt: full },
        { zero: 3, sel: 0, off: NO_OFFLOAD, ckpt: full },
        // ZeRO-Offload: stage 2 with the optimizer (and its gradients) on the host
        { zero: 2, sel: 0, off: { wo: 0, go: 1, oo: 1, ao: 0 }, ckpt: full },
        // ZeRO-Infinity (CPU): stage 3 with parameters, gradients and optimizer states on the host
        { zero: 3, sel: 0, off: { wo: 1, go: 1, oo: 1, ao: 0 }, ckpt: full },
      ];
    }
    default:
      return [];
  }
}

function searchGrid(ctx: Ctx, space: SpaceName, pins: Pins): SpaceOutcome {
  const r = ctx.req;
  const rules = space === 'megatron' ? { microBatches: [1, 2, 4, 8] } : { microBatches: [1, 2, 4], pureppMicroBatchOne: space === 'megatron-paper' };
  const shapes = enumerateShapes(r.model, r.cluster.nodes, r.cluster.gpusPerNode, r.globalBatch, rules, pins);
  const cap = ctx.cap * (1 - FIT_SLACK);
  let best: Found | null = null;
  const solved: Found[] = [];
  const { nodes, gpusPerNode } = r.cluster;
  for (const shape of shapes) {
    const { S, G } = shape;
    const split = pins.layers ?? uniformSplit(ctx.L, S).map(([a, b]) => b - a + 1);
    const variants = gridVariants(space, shape, ctx.L).filter((v) => {
      if (pins.zero !== undefined && v.zero !== pins.zero) return false;
      if (pins.offloadOptimizer !== undefined && v.off.oo !== pins.offloadOptimizer) return false;
      if (pins.offloadWeights !== undefined && v.off.wo !== pins.offloadWeights) return false;
      if (pins.offloadGrads !== undefined && v.off.go !== pins.offloadGrads) return false;
      if (pins.offloadActivations !== undefined && v.off.ao !== pins.offloadActivations) return false;
      return true;
    });
    if (!variants.length) continue;
    const ppZero = (v: GridVariant): 0 | 1 | 2 | 3 => (v.zero === 0 ? 0 : 1);
    // one batch per (stage position, cross, ppZero) holding every variant's row
    const batches = new Map<string, Batch>();
    const batchFor = (i: number, pz: 0 | 1 | 2 | 3): Batch => {
      const position = stagePosition(i, S);
      const cross = crossOf(i, S, shape, nodes, gpusPerNode);
      const key = `${position}/${cross}/${pz}`;
      let b = batches.get(key);
      if (!b) {
        const sm = stageModel(ctx, position);
        b = makeBatch(sm, variants.map((v) => ({ zero: v.zero, sel: v.sel, ...v.off })), shape, pz, { G, nodes: shape.mesh.nodes, gpn: shape.mesh.gpusPerNode, cross });
        batches.set(key, b);
      }
      return b;
    };
    variants.forEach((v, vi) => {
      if (pins.ckpt !== undefined) {
        const want = pins.ckpt;
        const c0 = v.ckpt(split[0]!);
        const skip =
          want === 'none' ? v.sel || c0 !== 0
          : want === 'full' ? c0 !== split[0]
          : typeof want === 'number' ? v.sel || c0 !== Math.min(want, split[0]!)
          : v.sel !== partialCode(want) || c0 !== 0;
        if (skip) return;
      }
      const stable: number[] = [];
      const delta: number[] = [];
      let fits = true;
      const cs: number[] = [];
      for (let i = 0; i < S && fits; i++) {
        const l = split[i]!;
        const c = v.ckpt(l);
        cs.push(c);
        const b = batchFor(i, ppZero(v));
        const sm = stageModel(ctx, stagePosition(i, S));
        sm.evalCell(b.prepared, { l, c, p: Math.min(S - i - 1, G - 1) }, b.outLo);
        ctx.candidates += b.n;
        if (b.outLo.required[vi]! > cap) fits = false;
        stable.push(b.outLo.stable[vi]!);
        delta.push(b.outLo.delta[vi]!);
      }
      if (!fits) return;
      const objective = iterationSeconds(stable, delta, G);
      if (best && objective >= best.objective) return;
      const meta: RowMeta = { zero: v.zero, sel: v.sel, ...v.off };
      const plan = buildPlan(ctx, space, shape, ppZero(v), split.map((l, i) => ({ l, meta, c: cs[i]! })));
      const found = { objective, plan, shape };
      solved.push(found);
      best = found;
    });
  }
  return { best, status: 'optimal', solved, shapes: { total: shapes.length, solved: shapes.length, pruned: 0, skippedByBudget: 0 } };
}

// ---------------------------------------------------------------------------------------------------------------
// Infeasible: the closest plan, with every memory reduction on

function closestPlan(ctx: Ctx, pins: Pins): { reason: string; closest?: Plan } {
  const r = ctx.req;
  const shapes = enumerateShapes(r.model, r.cluster.nodes, r.cluster.gpusPerNode, r.globalBatch, { microBatches: [1, 2, 4, 8] }, pins);
  const capGiB = (ctx.cap / GIB).toFixed(1);
  if (!shapes.length) {
    const p = formatPins(pins);
    return {
      reason: `no parallel layout fits the cluster: no (tp, pp, dp, microBatch, gradAccum) with tp ≤ ${r.cluster.gpusPerNode} dividing the heads, dp × tp × pp = ${r.cluster.nodes * r.cluster.gpusPerNode} GPUs on a uniform mesh, gradAccum a power of two ≥ pp and dp × microBatch × gradAccum = ${r.globalBatch}${p ? ` under the pins ${p}` : ''}`,
    };
  }
  let best: { need: number; plan: Plan } | null = null;
  for (const shape of shapes) {
    const split = pins.layers ?? uniformSplit(ctx.L, shape.S).map(([a, b]) => b - a + 1);
    const zero = pins.zero ?? (shape.dp > 1 ? 3 : 1);
    const meta: RowMeta = {
      zero,
      sel: pinnedPartial(pins),
      wo: pins.offloadWeights ?? 1,
      go: pins.offloadGrads ?? 1,
      oo: pins.offloadOptimizer ?? 1,
      ao: pins.offloadActivations ?? 1,
    };
    const cOf = (l: number): number => (typeof pins.ckpt === 'number' ? Math.min(pins.ckpt, l) : pins.ckpt === 'full' || pins.ckpt === undefined ? l : 0);
    const plan = buildPlan(ctx, r.space, shape, pins.zero ?? 1, split.map((l) => ({ l, meta, c: cOf(l) })));
    let pred;
    try {
      pred = predictPlan(plan, r.hw);
    } catch {
      continue;
    }
    const need = Math.max(...pred.stages.map((s) => (s as { requiredMemoryBytes?: number }).requiredMemoryBytes ?? s.peakMemoryBytes));
    if (!best || need < best.need) best = { need, plan: { ...plan, predicted: pred } };
  }
  if (!best) return { reason: `no plan of the space can be priced on ${r.cluster.nodes}×${r.cluster.gpusPerNode} ${r.cluster.gpu}` };
  const needGiB = (best.need / GIB).toFixed(1);
  return {
    reason: `needs ${needGiB} GiB per GPU with every reduction on (ZeRO-3, full recompute, full offload); capacity ${capGiB} GiB`,
    closest: best.plan,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// tune()

/** Largest case the exhaustive space accepts. */
export const EXHAUSTIVE_LIMIT = { gpus: 8, layers: 40 };

function validateRequest(r: TuneRequest): void {
  if (!(SPACE_NAMES as readonly string[]).includes(r.space)) throw badInput('space', `unknown space "${r.space}"`, `valid: ${SPACE_NAMES.join(', ')}`);
  for (const [k, v] of [
    ['nodes', r.cluster.nodes],
    ['gpusPerNode', r.cluster.gpusPerNode],
    ['globalBatch', r.globalBatch],
    ['seqLen', r.seqLen],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw badInput(k, `must be a positive integer (got ${JSON.stringify(v)})`);
  }
  if (r.samples !== undefined && (!Number.isInteger(r.samples) || r.samples < 1)) throw badInput('samples', `must be a positive integer (got ${r.samples})`);
  if (r.model.arch === 'gpt' && r.seqLen > r.model.seqLen) throw badInput('seqLen', `${r.seqLen} exceeds the model's ${r.model.seqLen} learned positions`, `valid: 1..${r.model.seqLen}`);
  if (r.space === 'exhaustive') {
    const gpus = r.cluster.nodes * r.cluster.gpusPerNode;
    if (gpus > EXHAUSTIVE_LIMIT.gpus || r.model.layers > EXHAUSTIVE_LIMIT.layers) {
      throw badInput(
        'space',
        `exhaustive search is limited to ≤ ${EXHAUSTIVE_LIMIT.gpus} GPUs and ≤ ${EXHAUSTIVE_LIMIT.layers} layers (this case: ${gpus} GPUs, ${r.model.layers} layers)`,
        'use --space mist',
      );
    }
  }
}

async function runSpace(ctx: Ctx, space: SpaceName, pins: Pins): Promise<SpaceOutcome> {
  switch (space) {
    case 'mist':
      return searchPareto(ctx, 'mist', MIST_KNOBS, pins, false, false);
    case 'exhaustive': {
      const seed = await searchPareto(ctx, 'exhaustive', MIST_KNOBS, pins, false, false);
      const out = await searchPareto(ctx, 'exhaustive', MIST_KNOBS, pins, true, true, seed.best);
      return { ...out, shapes: { ...out.shapes, solved: out.shapes.solved + seed.shapes.solved } };
    }
    default:
      return searchGrid(ctx, space, pins);
  }
}

function withPredicted(plan: Plan, hw: HardwareParams): Plan {
  return { ...plan, predicted: predictPlan(plan, hw) };
}

/**
 * Tune one job: the best plan of the requested space (with its prediction), the decision record, and when
 * nothing fits, the reason and the closest plan. Infeasible is a result, never a throw; bad requests and pins
 * throw BAD_INPUT.
 */
export async function tune(request: TuneRequest, deps: TuneDeps): Promise<TuneResult> {
  validateRequest(request);
  const pins = request.pins ?? {};
  const gpus = request.cluster.nodes * request.cluster.gpusPerNode;
  checkPins(pins, request.model, gpus, request.cluster.gpusPerNode, request.globalBatch);
  const ctx: Ctx = {
    req: request,
    deps,
    L: request.model.layers,
    cap: request.hw.memoryBytes * request.hw.usableMemoryFraction,
    start: deps.now(),
    models: new Map(),
    candidates: 0,
    weights: sampleWeights(request.samples ?? 30),
  };
  const out = await runSpace(ctx, request.space, pins);

  const baselines: Record<string, BaselineResult> = {};
  const wantBaselines = request.baselines ?? !(BASELINE_SPACES as readonly string[]).includes(request.space);
  if (wantBaselines) {
    for (const b of BASELINE_SPACES) {
      if (b === request.space) continue;
      deps.onProgress?.({ phase: `baseline ${b}`, done: 0, total: 1 });
      const o = searchGrid(ctx, b, {});
      if (o.best) {
        const plan = withPredicted(o.best.plan, request.hw);
        baselines[b] = { iterationSeconds: plan.predicted!.iterationSeconds, plan };
      } else {
        baselines[b] = { iterationSeconds: null, plan: null, reason: `no ${b} plan fits` };
      }
    }
  }
  const seconds = deps.now() - ctx.start;
  const record: DecisionRecord = {
    space: request.space,
    pins: formatPins(pins),
    status: out.best ? out.status : 'infeasible',
    seconds,
    candidates: ctx.candidates,
    shapes: out.shapes,
    solver: request.space === 'mist' || request.space === 'exhaustive' ? deps.solver.name : 'grid',
    frontiers: out.best?.frontiers ?? [],
    alternatives: [...out.solved]
      .sort((a, b) => a.objective - b.objective)
      .slice(0, TOP_K)
      .map((f) => ({
        tp: f.shape.tp,
        pp: f.shape.S,
        dp: f.shape.dp,
        microBatch: f.shape.b,
        gradAccum: f.shape.G,
        layers: f.plan.stages.map((s) => s.layers[1] - s.layers[0] + 1),
        iterationSeconds: f.objective + request.hw.iterationOverheadSeconds,
      })),
    baselines,
  };
  if (!out.best) {
    const inf = closestPlan(ctx, pins);
    record.seconds = deps.now() - ctx.start;
    return { plan: null, record, infeasible: inf };
  }
  const plan = withPredicted(out.best.plan, request.hw);
  plan.tuner = {
    seconds,
    candidates: ctx.candidates,
    solver: record.solver,
    status: out.status,
    baselines: Object.fromEntries(Object.entries(baselines).map(([k, v]) => [k, { iterationSeconds: v.iterationSeconds }])),
  };
  return { plan, record };
}
