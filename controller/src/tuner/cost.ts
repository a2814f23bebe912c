/**
 * The stage model: overlap-aware time and peak memory of one pipeline stage as expressions over the candidate's
 * knobs (research/mist.md §3.4–§3.7), compiled once into a two-level column evaluator.
 *
 * Symbols
 *  - row columns (one value per candidate): b (micro-batch per GPU), dp, tp, wre/gre/ore (ZeRO flags: shard
 *    weights / grads / optimizer states over dp), wo/go/oo/ao (offloaded fraction of the sharded weights, grads,
 *    optimizer states, and of the saved activations), sel (partial recomputation of the layers that are not
 *    fully checkpointed: 0 none, 1 selective = the attention core, 2 pointwise = the norms and the activation
 *    function, 3 norms = the norms only; 2 and 3 also the core without flash), ppdp/pptp/ppzero (the pre/post
 *    layers' dp, tp and ZeRO level);
 *  - row scalars (one value per prepared batch): G (micro-batches per iteration), nodes and gpn (the stage's
 *    nodes × GPUs per node), cross (1 when the stage's outgoing pipeline link crosses nodes);
 *  - cell scalars: l (layers in the stage), c (how many of the stage's last layers are fully recomputed),
 *    p (extra in-flight micro-batches under 1F1B, min(S − i − 1, G − 1)).
 *  The stage position (first: holds the embedding; last: holds the head and loss; middle; only = no PP) is fixed
 *  when compiling, as Mist keeps four tensors per position.
 *
 * Outputs: stable (seconds per micro-batch in the steady state), delta (the once-per-iteration extra of the first
 * forward and the last backward micro-batch), peak (bytes allocated at the stage's peak), required (peak × the
 * allocator margin; fits ⇔ required ≤ usable capacity).
 *
 * Hardware enters only through the function table (`hardwareFns`): GEMM time at the efficiency curve,
 * collectives, P2P, host copies, group layouts and Mist's interference race — all from comm.ts / interference.ts.
 */
import type { ModelSpec } from '../domain/model.js';
import type { PartialRecompute, Workload } from '../domain/plan.js';
import type { HardwareParams } from './hardware-types.js';
import { collectiveSeconds, d2hSeconds, dpLayout, gemmSeconds, h2dSeconds, p2pSeconds, tpLayout } from './comm.js';
import { overlapSeconds } from './interference.js';
import {
  blockQuantities,
  gradBytes,
  OPTIMIZER_BYTES,
  postQuantities,
  preQuantities,
  WEIGHT_BYTES,
  type LayerQuantities,
  type LayerWorkload,
  type TpCollective,
} from './model.js';
import {
  add,
  call,
  clamp,
  div,
  eq,
  ge,
  gt,
  max,
  min,
  mul,
  not,
  num,
  select,
  sub,
  substitute,
  sym,
  type Expr,
  type FnTable,
  type Num,
} from './symbolic/expr.js';
import { compileTwoLevel, interpretAll, type PreparedRows, type TwoLevelFn } from './symbolic/compile.js';
import { pipelineSecondsBestHidden } from './solver.js';

export type StagePosition = 'first' | 'middle' | 'last' | 'only';

export const ROW_COLUMNS = ['b', 'dp', 'tp', 'wre', 'gre', 'ore', 'wo', 'go', 'oo', 'ao', 'sel', 'ppdp', 'pptp', 'ppzero'] as const;
export const ROW_SCALARS = ['G', 'nodes', 'gpn', 'cross'] as const;
export const CELL_SCALARS = ['l', 'c', 'p'] as const;
export const STAGE_OUTPUTS = ['stable', 'delta', 'peak', 'required', 'wgrad', 'hideable', 'peakSplit', 'requiredSplit'] as const;

/** The row column `sel`: partial recomputation of the layers that are not fully recomputed (0 is none). */
export const PARTIAL_CODE: Readonly<Record<PartialRecompute, number>> = { selective: 1, pointwise: 2, norms: 3 };

export function partialCode(p: PartialRecompute | undefined): number {
  return p ? PARTIAL_CODE[p] : 0;
}

export type RowColumn = (typeof ROW_COLUMNS)[number];
export type RowScalar = (typeof ROW_SCALARS)[number];
export type CellScalar = (typeof CELL_SCALARS)[number];
export type StageOutput = (typeof STAGE_OUTPUTS)[number];

/** N candidate rows, one Float64Array per knob. */
export type CandidateRows = Record<RowColumn, Float64Array>;
export type RowScalars = Record<RowScalar, number>;
export type Cell = Record<CellScalar, number>;
export type Row = Record<RowColumn, number>;

// ---------------------------------------------------------------------------------------------------------------
// Function table

/** Byte counts below this are treated as no transfer (avoids 1e-300 noise turning on a stream). */
const EPS_BYTES = 1;

/**
 * The hardware-dependent primitives the expressions call. All pure functions of their numeric arguments.
 *  gemm(F): F / (peak · eff(F)) (comm.ts gemmSeconds); ar/ag/rs(bytes, inter, intra): collectives; p2p(bytes, cross);
 *  h2d/d2h(bytes); ovl(c, g, h, d): the interference race; dpInter/dpIntra(dp, nodes, gpn), tpInter/tpIntra(tp, gpn).
 */
export function hardwareFns(hw: HardwareParams): FnTable {
  const factors = Float64Array.from(hw.interference);
  return {
    gemm: (f) => gemmSeconds(hw, f),
    ar: (x, i, j) => collectiveSeconds(hw, 'allReduce', x, i, j),
    ag: (x, i, j) => collectiveSeconds(hw, 'allGather', x, i, j),
    rs: (x, i, j) => collectiveSeconds(hw, 'reduceScatter', x, i, j),
    p2p: (x, cross) => p2pSeconds(hw, x, cross > 0),
    h2d: (x) => (x < EPS_BYTES ? 0 : h2dSeconds(hw, x)),
    d2h: (x) => (x < EPS_BYTES ? 0 : d2hSeconds(hw, x)),
    ovl: (c, g, h, d) => overlapSeconds(factors, c, g, h, d),
    dpInter: (dp, nodes, gpn) => dpLayout(dp, nodes, gpn).inter,
    dpIntra: (dp, nodes, gpn) => dpLayout(dp, nodes, gpn).intra,
    tpInter: (tp, gpn) => tpLayout(tp, gpn).inter,
    tpIntra: (tp, gpn) => tpLayout(tp, gpn).intra,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Building blocks

/**
 * Resident model-state bytes on one GPU for `params` parameters (mist.md §3.4): weights W/s_w·(1−wo), gradients
 * Gr/s_g·(1−go), optimizer states O/s_o·(1−oo), where s_x = dp when the ZeRO flag shards x, else 1. With no offload
 * this is ZeRO's (2 + 2 + 12)Ψ family (research/validation.md §5.1), 18 B/param with fp32 main grads.
 */
export function residentStates(
  params: Num,
  k: { dp: Num; wre: Num; gre: Num; ore: Num; wo: Num; go: Num; oo: Num },
  gradBytesPerParam: number,
): { weights: Expr; grads: Expr; optimizer: Expr; total: Expr } {
  const shard = (flag: Num): Expr => add(1, mul(flag, sub(k.dp, 1)));
  const weights = mul(div(mul(WEIGHT_BYTES, params), shard(k.wre)), not(k.wo));
  const grads = mul(div(mul(gradBytesPerParam, params), shard(k.gre)), not(k.go));
  const optimizer = mul(div(mul(OPTIMIZER_BYTES, params), shard(k.ore)), not(k.oo));
  return { weights, grads, optimizer, total: add(weights, grads, optimizer) };
}

const S = Object.fromEntries([...ROW_COLUMNS, ...ROW_SCALARS, ...CELL_SCALARS].map((n) => [n, sym(n)])) as Record<
  RowColumn | RowScalar | CellScalar,
  Expr
>;

export interface StageModelContext {
  model: ModelSpec;
  /** Training sequence length (the plan's seqLen). */
  seqLen: number;
  workload: Workload;
  hw: HardwareParams;
  position: StagePosition;
}

/** Time of one layer kind's passes at one (b, tp), as expressions (seconds). */
export interface LayerTimes {
  fwd: Expr;
  bwd: Expr;
  /**
   * Re-running the forward (full checkpointing), the attention core only (selective), the norms and the
   * activation function plus the core unless flash keeps it (pointwise), the norms plus that core (norms).
   */
  recomputeFull: Expr;
  recomputeCore: Expr;
  recomputePointwise: Expr;
  recomputeNorms: Expr;
  tpFwd: Expr;
  tpBwd: Expr;
  /** The weight-gradient GEMMs of the backward (half of each weight GEMM's backward; the core has no weights). */
  wgrad: Expr;
}

/**
 * Layer pass times. `tpFwd`/`tpBwd` are the TP communication time each pass adds on top of its compute:
 *  - plain: the collectives of `q.tpComm.fwd`/`bwd` back to back, never overlapped (mist.md §3.5);
 *  - the sequence-parallel re-gather (`bwdRegather`) runs concurrently with the input-gradient GEMMs of the
 *    GEMMs it feeds (Megatron launches it asynchronously first): it adds ovl(dgrad, regather) − dgrad, Mist's
 *    interference race of a compute and a GPU↔GPU stream;
 *  - `overlapTp` (Megatron-Core `--tp-comm-overlap`, Transformer Engine userbuffers; Wang et al., "Overlap
 *    Communication with Dependent Computation via Decomposition", ASPLOS'23): each collective is split into tp
 *    chunks pipelined with the chunks of the GEMM it feeds (all-gather → GEMM) or drains (GEMM → reduce-scatter).
 *    One chunk of tp cannot be hidden (the pipeline's fill or drain step), so 1/tp of the collective time stays
 *    exposed; the rest races the fed GEMMs (forward: the GEMMs once; backward: input- and weight-gradient GEMMs,
 *    twice) in the interference race, which charges the SM and memory contention through the hardware's {C, G}
 *    factors: extra = ovl(C_fed, (1 − 1/tp)·T) − C_fed + T/tp ≥ 0.
 */
export function layerTimes(q: LayerQuantities, hw: HardwareParams, tpInter: Expr, tpIntra: Expr, tpDegree: Expr, overlapTp: boolean): LayerTimes {
  const hbm = 1 / hw.hbmBandwidth;
  const gemmT = (flops: Expr): Expr => call('gemm', flops);
  const coreSet = new Set(q.core.gemms.map((g) => g.name));
  const fwdGemm = add(...q.gemms.map((g) => gemmT(g.flops)));
  const bwdGemm = add(...q.gemms.map((g) => mul(coreSet.has(g.name) ? q.coreBwdRatio : 2, gemmT(g.flops))));
  const coreGemm = add(...q.core.gemms.map((g) => gemmT(g.flops)));
  const fwd = add(fwdGemm, mul(hbm, q.memFwd));
  const bwd = add(bwdGemm, mul(hbm, q.memBwd));
  const comm = (cs: readonly TpCollective[]): Expr => add(...cs.map((c) => mul(c.count, call(c.op, c.bytes, tpInter, tpIntra))));
  const ovl = (c: Expr, g: Expr): Expr => call('ovl', c, g, 0, 0);
  const tc = q.tpComm;
  const fedFwd = add(...q.gemms.filter((g) => tc.fedGemms.includes(g.name)).map((g) => gemmT(g.flops)));
  const commFwd = comm(tc.fwd);
  const commBwd = comm(tc.bwd);
  const regather = comm(tc.bwdRegather);
  let tpFwd: Expr;
  let tpBwd: Expr;
  if (overlapTp) {
    const hiddenFraction = sub(1, div(1, tpDegree));
    const overlapped = (fed: Expr, t: Expr): Expr => add(sub(ovl(fed, mul(hiddenFraction, t)), fed), div(t, tpDegree));
    tpFwd = overlapped(fedFwd, commFwd);
    tpBwd = overlapped(mul(2, fedFwd), add(commBwd, regather));
  } else {
    tpFwd = commFwd;
    // the input-gradient GEMMs of the fed GEMMs have the forward's FLOPs
    tpBwd = tc.bwdRegather.length > 0 ? add(commBwd, sub(ovl(fedFwd, regather), fedFwd)) : commBwd;
  }
  const recomputeCore = add(coreGemm, mul(hbm, q.core.memFwd));
  return {
    fwd,
    bwd,
    recomputeFull: fwd,
    recomputeCore,
    recomputePointwise: add(q.pointwise.withCore ? recomputeCore : 0, mul(hbm, q.pointwise.memFwd)),
    recomputeNorms: add(q.pointwise.withCore ? recomputeCore : 0, mul(hbm, q.pointwise.normsMemFwd)),
    tpFwd,
    tpBwd,
    wgrad: add(...q.gemms.filter((g) => !coreSet.has(g.name)).map((g) => gemmT(g.flops))),
  };
}

/** Loads a layer's compute overlaps in one phase: pre-work (prefetch for the layer) and post-work (after it). */
interface Loads {
  gPre: Expr;
  gPost: Expr;
  h: Expr;
  d: Expr;
}

type Where = 'first' | 'mid' | 'last' | 'only';

/**
 * Layer time with overlap (mist.md §3.5 stage-boundary variants, re-derived): a layer's compute hides the
 * prefetch of the next layer (gPre, h) and the post-work of the previous one (gPost, d). The first layer in
 * execution order has no previous layer, and its own prefetch is exposed; the last has no next layer, and its own
 * post-work is exposed. Layers are identical, so "the next layer's loads" are this layer's loads.
 */
function phaseTime(compute: Expr, L: Loads, where: Where): Expr {
  const ovl = (c: Num, g: Num, h: Num, d: Num): Expr => call('ovl', c, g, h, d);
  switch (where) {
    case 'mid':
      return ovl(compute, add(L.gPre, L.gPost), L.h, L.d);
    case 'first':
      return add(ovl(compute, L.gPre, L.h, 0), ovl(0, L.gPre, L.h, 0));
    case 'last':
      return add(ovl(compute, L.gPost, 0, L.d), ovl(0, L.gPost, 0, L.d));
    case 'only':
      return add(compute, ovl(0, L.gPre, L.h, 0), ovl(0, L.gPost, 0, L.d));
  }
}

const REVERSED: Record<Where, Where> = { first: 'last', last: 'first', mid: 'mid', only: 'only' };

export interface StageExprs {
  stable: Expr;
  delta: Expr;
  peak: Expr;
  required: Expr;
  /**
   * Split backward (the Plan stage's `splitBackward`): the input gradients of the stage are computed and sent
   * upstream before the weight gradients of its layers that are not fully recomputed. `wgrad` is that
   * weight-gradient time, which moves off the pipeline's critical path, and `hideable` the most of the stage's
   * pipeline transfers (the 2·p2p charged in `stable`) that can run during it, min(wgrad, 2·p2p) (solver.ts
   * objective). `peakSplit` / `requiredSplit` are the memory with the split, which keeps those layers'
   * weight-GEMM inputs and output gradients until the weight pass (no split with activation offloading).
   */
  wgrad: Expr;
  hideable: Expr;
  peakSplit: Expr;
  requiredSplit: Expr;
  /** Diagnostics (same symbols). */
  peakFwd: Expr;
  peakBwd: Expr;
  margin: Expr;
  /** Block output bytes per GPU (the P2P payload). */
  out: Expr;
}

/** Build the stage expressions (the single source of truth for stage time and memory). */
export function stageExprs(ctx: StageModelContext): StageExprs {
  const { model, hw, workload, position } = ctx;
  const lw: LayerWorkload = { seqLen: ctx.seqLen, flash: workload.flash, dropout: workload.dropout, sequenceParallel: workload.sequenceParallel === true };
  // TP/GEMM overlap applies to the transformer blocks (Transformer Engine layers), not to the embedding or the head
  const overlapTp = workload.tpCommOverlap === true;
  const hasPre = position === 'first' || position === 'only';
  const hasPost = position === 'last' || position === 'only';
  const tied = model.tiedEmbeddings ?? model.arch === 'gpt';
  const { b, dp, tp, wre, gre, ore, wo, go, oo, ao, sel, ppdp, pptp, ppzero, G, nodes, gpn, cross, l, c, p } = S;
  const gB = gradBytes(workload.gradDtype);

  const blk = blockQuantities(model, lw);
  // pre/post layers run at the pre/post tp
  const atPP = (q: LayerQuantities): LayerQuantities => {
    const t = (e: Expr): Expr => substitute(e, { tp: pptp });
    return {
      ...q,
      params: t(q.params),
      saved: { none: t(q.saved.none), selective: t(q.saved.selective), norms: t(q.saved.norms), pointwise: t(q.saved.pointwise), full: t(q.saved.full) },
      fwdTransient: t(q.fwdTransient),
      bwdTransient: t(q.bwdTransient),
      out: t(q.out),
      gemms: q.gemms.map((g) => ({ name: g.name, flops: t(g.flops) })),
      memFwd: t(q.memFwd),
      memBwd: t(q.memBwd),
      core: { gemms: q.core.gemms.map((g) => ({ name: g.name, flops: t(g.flops) })), memFwd: t(q.core.memFwd) },
      pointwise: { memFwd: t(q.pointwise.memFwd), normsMemFwd: t(q.pointwise.normsMemFwd), withCore: q.pointwise.withCore },
      tpComm: {
        ...q.tpComm,
        fwd: q.tpComm.fwd.map((c) => ({ ...c, bytes: t(c.bytes) })),
        bwd: q.tpComm.bwd.map((c) => ({ ...c, bytes: t(c.bytes) })),
        bwdRegather: q.tpComm.bwdRegather.map((c) => ({ ...c, bytes: t(c.bytes) })),
      },
      flopsFwd: t(q.flopsFwd),
    };
  };
  const pre = atPP(preQuantities(model, lw));
  const post = atPP(postQuantities(model, lw, !(tied && position === 'only')));

  const tpInter = call('tpInter', tp, gpn);
  const tpIntra = call('tpIntra', tp, gpn);
  const dpInter = call('dpInter', dp, nodes, gpn);
  const dpIntra = call('dpIntra', dp, nodes, gpn);
  const ppdpInter = call('dpInter', ppdp, nodes, gpn);
  const ppdpIntra = call('dpIntra', ppdp, nodes, gpn);
  const pptpInter = call('tpInter', pptp, gpn);
  const pptpIntra = call('tpIntra', pptp, gpn);
  const hbm = 1 / hw.hbmBandwidth;

  // ----- per-layer model states (mist.md §3.4) -----
  const W = mul(WEIGHT_BYTES, blk.params);
  const Gr = mul(gB, blk.params);
  const O = mul(OPTIMIZER_BYTES, blk.params);
  const sw = add(1, mul(wre, sub(dp, 1)));
  const sg = add(1, mul(gre, sub(dp, 1)));
  const so = add(1, mul(ore, sub(dp, 1)));
  const resident = residentStates(blk.params, { dp, wre, gre, ore, wo, go, oo }, gB);
  const Wp = resident.weights;
  const Gp = resident.grads;
  const Op = resident.optimizer;
  const SW = mul(div(W, sw), wo);
  const SG = mul(div(Gr, sg), go);
  const SO = mul(div(O, so), oo);

  const A0 = blk.saved.none;
  const Ack = blk.saved.full;
  // saved set of a layer that is not fully checkpointed: sel 0 none, 1 selective, 2 pointwise, 3 norms
  const Ansel = select(eq(sel, PARTIAL_CODE.norms), blk.saved.norms, select(eq(sel, PARTIAL_CODE.pointwise), blk.saved.pointwise, select(sel, blk.saved.selective, A0)));
  const SAck = mul(Ack, ao);
  const SAnck = mul(Ansel, ao);

  const AG = call('ag', W, dpInter, dpIntra);
  const RS = call('rs', Gr, dpInter, dpIntra);
  const AR = call('ar', Gr, dpInter, dpIntra);
  const h2d = (x: Expr): Expr => call('h2d', x);
  const d2h = (x: Expr): Expr => call('d2h', x);

  // ----- per-layer compute -----
  const T = layerTimes(blk, hw, tpInter, tpIntra, tp, overlapTp);
  // The optimizer step of one layer's shard (mist.md §6: layer-wise, during the first forward micro-batch):
  // memory-bound; reads and writes fp32 master, m, v (24 B), reads the gradient, writes the bf16 weight.
  const stepBytesPerParam = 2 * OPTIMIZER_BYTES + gB + WEIGHT_BYTES;
  const optStep = mul(hbm, stepBytesPerParam, div(blk.params, so));

  // Phase loads (mist.md §3.5 table) for a checkpointed (ck) or not (nck) layer.
  const loads = (kind: 'F1' | 'Fk' | 'BL' | 'Bk', ck: boolean): Loads => {
    const SA = ck ? SAck : SAnck;
    switch (kind) {
      case 'F1':
        return { gPre: mul(AG, ore), gPost: num(0), h: add(h2d(SO), h2d(SG)), d: add(d2h(SO), d2h(SW), d2h(SA)) };
      case 'Fk':
        return { gPre: mul(AG, wre), gPost: num(0), h: h2d(SW), d: d2h(SA) };
      case 'BL':
        return { gPre: mul(AG, wre), gPost: add(mul(RS, ore), mul(AR, not(ore))), h: add(h2d(SW), h2d(SG), h2d(SA)), d: d2h(SG) };
      case 'Bk':
        return { gPre: mul(AG, wre), gPost: mul(RS, gre), h: add(h2d(SW), h2d(SG), h2d(SA)), d: d2h(SG) };
    }
  };
  const fwdCompute = (first: boolean): Expr => (first ? add(T.fwd, optStep) : T.fwd);
  const partialRecompute = select(eq(sel, PARTIAL_CODE.norms), T.recomputeNorms, select(eq(sel, PARTIAL_CODE.pointwise), T.recomputePointwise, select(sel, T.recomputeCore, 0)));
  const bwdCompute = (ck: boolean): Expr => (ck ? add(T.bwd, T.recomputeFull) : add(T.bwd, partialRecompute));
  /** Time of one layer (forward + backward of one micro-batch) at a position in the stage. */
  const block = (where: Where, ck: boolean, firstLast: boolean): Expr => {
    const f = phaseTime(fwdCompute(firstLast), loads(firstLast ? 'F1' : 'Fk', ck), where);
    const bw = phaseTime(bwdCompute(ck), loads(firstLast ? 'BL' : 'Bk', ck), REVERSED[where]);
    // re-running a checkpointed layer's forward re-runs its TP collectives too (Mist: C_exec = fwd + bwd)
    return add(f, T.tpFwd, bw, T.tpBwd, ck ? T.tpFwd : 0);
  };
  const many = gt(G, 1); // with one micro-batch the stable rows are the first/last ones and delta is 0
  const stageTime = (firstLast: boolean): Expr => {
    const v = (where: Where, ck: boolean): Expr => (firstLast ? block(where, ck, true) : select(many, block(where, ck, false), block(where, ck, true)));
    const midCk = clamp(sub(c, 1), 0, sub(l, 2));
    const midNck = sub(sub(l, 2), midCk);
    const layered = add(
      mul(midCk, v('mid', true)),
      mul(midNck, v('mid', false)),
      select(eq(c, l), v('first', true), v('first', false)),
      select(gt(c, 0), v('last', true), v('last', false)),
    );
    return select(gt(l, 1), layered, select(gt(c, 0), v('only', true), v('only', false)));
  };
  let stable = stageTime(false);
  let delta = mul(many, sub(stageTime(true), stable));

  // ----- pre/post layers (mist.md §3.6, with ZeRO-0 priced as an all-reduce) -----
  const ppW = gt(ppzero, 2); // ZeRO-3: weights sharded
  const ppGr = gt(ppzero, 1);
  const ppO = gt(ppzero, 0);
  const ppSo = add(1, mul(ppO, sub(ppdp, 1)));
  const prePostTerms = (q: LayerQuantities): { stable: Expr; delta: Expr } => {
    const t = layerTimes(q, hw, pptpInter, pptpIntra, pptp, false);
    const Wq = mul(WEIGHT_BYTES, q.params);
    const Gq = mul(gB, q.params);
    const ag = call('ag', Wq, ppdpInter, ppdpIntra);
    const rs = call('rs', Gq, ppdpInter, ppdpIntra);
    const ar = call('ar', Gq, ppdpInter, ppdpIntra);
    const step = mul(hbm, stepBytesPerParam, div(q.params, ppSo));
    return {
      stable: add(t.fwd, t.bwd, t.tpFwd, t.tpBwd, mul(ppW, ag), mul(ppGr, rs)),
      delta: add(mul(not(ppW), ppO, ag), mul(not(ppGr), add(mul(ppO, rs), mul(not(ppO), ar))), step),
    };
  };
  if (hasPre) {
    const t = prePostTerms(pre);
    stable = add(stable, t.stable);
    delta = add(delta, t.delta);
  }
  if (hasPost) {
    const t = prePostTerms(post);
    stable = add(stable, t.stable);
    delta = add(delta, t.delta);
  }
  if (tied && (position === 'first' || position === 'last')) {
    // Megatron all-reduces the tied embedding's gradient between the first and the last stage once per iteration.
    const embGrad = mul(gB, div(model.vocab * model.hidden, pptp));
    delta = add(delta, call('ar', embGrad, add(1, cross), sub(2, cross)));
  }
  // Pipeline send of the activations and receive of their gradients: 2·p2p(Out) per micro-batch per boundary,
  // charged to the stage before the boundary (Mist leaves P2P out of the tuning cost).
  const out = blk.out;
  const p2p = position === 'first' || position === 'middle' ? mul(2, call('p2p', out, cross)) : num(0);
  stable = add(stable, p2p);

  // ----- memory (mist.md §3.7) -----
  const bufW = max(mul(wre, gt(dp, 1)), gt(wo, 0));
  const bufG = max(mul(gre, gt(dp, 1)), gt(go, 0));
  const preW = mul(WEIGHT_BYTES, pre.params);
  const postW = mul(WEIGHT_BYTES, post.params);
  const Wbuf = max(mul(W, bufW), hasPre ? mul(preW, ppW, gt(ppdp, 1)) : 0, hasPost ? mul(postW, ppW, gt(ppdp, 1)) : 0);
  const Gbuf = max(mul(Gr, bufG), hasPre ? mul(gB, pre.params, ppGr, gt(ppdp, 1)) : 0, hasPost ? mul(gB, post.params, ppGr, gt(ppdp, 1)) : 0);
  const buffers = mul(2, add(Wbuf, Gbuf));
  // the optimizer step's working set: one layer's full optimizer shard on the GPU, plus an fp32 copy of its
  // gradient shard when gradients are kept in bf16
  const stepWork = add(div(O, so), gB === 2 ? mul(4, div(blk.params, so)) : 0);
  const statesFwd = add(buffers, stepWork, mul(l, add(Wp, Gp)), mul(sub(l, 1), Op));
  const statesBwd = add(buffers, mul(l, add(Wp, Gp, Op)));
  const keep = not(ao);
  const savedMb = mul(keep, add(mul(c, Ack), mul(sub(l, c), Ansel)));
  const savedCur = mul(keep, select(eq(c, l), mul(sub(l, 1), Ack), add(mul(c, Ack), mul(sub(sub(l, c), 1), Ansel))));
  const ckDelta = mul(ao, select(ge(c, sub(l, 1)), Ack, Ansel));
  const fwdPeakLayer = add(Ansel, blk.fwdTransient);
  const bwdPeakLayer = add(A0, blk.bwdTransient);
  const attn = workload.flash ? num(0) : div(mul(2, b, model.heads, ctx.seqLen, ctx.seqLen), tp);
  const inflight = add(mul(p, savedMb), mul(2, p, out));
  let peakFwd = add(statesFwd, inflight, savedCur, ckDelta, fwdPeakLayer, attn);
  let peakBwd = add(statesBwd, inflight, savedCur, ckDelta, bwdPeakLayer, mul(2, out), attn);
  const ppStates = (q: LayerQuantities): Expr =>
    add(
      div(mul(WEIGHT_BYTES, q.params), add(1, mul(ppW, sub(ppdp, 1)))),
      div(mul(gB, q.params), add(1, mul(ppGr, sub(ppdp, 1)))),
      div(mul(OPTIMIZER_BYTES, q.params), ppSo),
    );
  if (hasPost) {
    // the last stage holds no earlier micro-batch (p = 0): its peak is either inside the blocks or inside the head
    const ps = ppStates(post);
    const postSaved = post.saved.none;
    // (the attention score buffer is not alive while the head runs)
    peakFwd = max(add(statesFwd, ps, savedMb, postSaved, post.fwdTransient), add(peakFwd, ps));
    peakBwd = max(add(statesBwd, ps, savedMb, postSaved, post.bwdTransient), add(sub(peakBwd, out), ps));
  }
  if (hasPre) {
    const extra = add(ppStates(pre), mul(add(p, 1), pre.saved.none));
    peakFwd = add(peakFwd, extra);
    peakBwd = add(peakBwd, extra);
  }
  const peak = max(peakFwd, peakBwd);
  // Split backward of the l − c layers that are not fully recomputed (a recomputed layer would have to keep its
  // recomputed activations instead of its 2sbh checkpoint): while the input-gradient pass walks the layers, a
  // processed split layer holds its weight-GEMM inputs and output gradients (wgradRetained) where an unprocessed
  // one holds its saved set, so the current micro-batch needs at most Σ max(saved, retained) over those layers: the
  // extra over savedCur is (l − c)·max(0, retained − saved).
  const Aw = blk.wgradRetained;
  const splitExtra = mul(sub(l, c), max(0, sub(Aw, mul(keep, Ansel))));
  const peakSplit = max(peakFwd, add(peakBwd, splitExtra));

  // Allocator margin (mist.md §3.7, Mist's empirical factors kept): fragmentation grows with hidden size and
  // sequence length; every memory technique adds allocator churn. `peak` models allocated bytes; required = peak ×
  // margin is compared with memory × usableMemoryFraction (0.95: only the CUDA context and NCCL buffers live
  // outside the allocator; tuner/hardware.ts). Kept at Mist's values (which Mist paired with 0.88): conservative,
  // and every measured plan still fits (bench/validate.ts).
  const frag = 0.005 * Math.max(0, model.hidden / 2048 - 1) + 0.045 * Math.max(0, ctx.seqLen / 2048 - 1);
  const margin = add(
    1 + frag + (position === 'only' ? 0 : 0.025) + (position === 'middle' ? 0.01 : 0),
    mul(0.025, gt(wo, 0)),
    mul(0.025, gt(go, 0)),
    mul(0.03, gt(oo, 0)),
    mul(0.04, gt(ao, 0)),
    mul(0.025, wre, gt(dp, 1)),
    mul(0.025, gre, gt(dp, 1)),
    mul(0.04, gt(tp, 1)),
    mul(0.01, ge(b, 4)),
  );
  // (rows with activation offloading never split: the retained tensors would pin what the offload moves out)
  const requiredSplit = add(mul(peakSplit, margin), mul(gt(ao, 0), 1e30));
  const wgrad = mul(sub(l, c), T.wgrad);
  return { stable, delta, peak, required: mul(peak, margin), wgrad, hideable: min(wgrad, p2p), peakSplit, requiredSplit, peakFwd, peakBwd, margin, out };
}

// ---------------------------------------------------------------------------------------------------------------
// The compiled stage model

export interface StageModel {
  readonly position: StagePosition;
  readonly exprs: StageExprs;
  readonly fns: FnTable;
  readonly compiled: TwoLevelFn;
  /** Per-row work (everything that does not depend on l, c, p), once per batch of rows. */
  prepare(rows: Partial<CandidateRows>, scalars: RowScalars, n: number): PreparedRows;
  /** Evaluate one (l, c, p) cell for every prepared row into the output arrays. */
  evalCell(prepared: PreparedRows, cell: Cell, out: Record<StageOutput, Float64Array>): void;
  /** The interpreter over the same trees (reference path; slow). */
  interpret(row: Row, scalars: RowScalars, cell: Cell): Record<StageOutput, number>;
}

const MODEL_CACHE = new Map<string, StageModel>();
const MODEL_CACHE_LIMIT = 64;

/** Compile (or fetch from a small deterministic cache) the stage model for one context. */
export function compileStageModel(ctx: StageModelContext): StageModel {
  const key = JSON.stringify([ctx.model, ctx.seqLen, ctx.workload, ctx.hw, ctx.position]);
  const hit = MODEL_CACHE.get(key);
  if (hit) return hit;
  const exprs = stageExprs(ctx);
  const fns = hardwareFns(ctx.hw);
  const outputs: Record<StageOutput, Expr> = {
    stable: exprs.stable,
    delta: exprs.delta,
    peak: exprs.peak,
    required: exprs.required,
    wgrad: exprs.wgrad,
    hideable: exprs.hideable,
    peakSplit: exprs.peakSplit,
    requiredSplit: exprs.requiredSplit,
  };
  const compiled = compileTwoLevel(outputs, { rowColumns: ROW_COLUMNS, rowScalars: ROW_SCALARS, cellScalars: CELL_SCALARS }, fns);
  const model: StageModel = {
    position: ctx.position,
    exprs,
    fns,
    compiled,
    prepare(rows, scalars, n) {
      return compiled.prepare(rows as Record<string, Float64Array>, scalars, n);
    },
    evalCell(prepared, cell, out) {
      compiled.evalCell(prepared, cell, STAGE_OUTPUTS.map((k) => out[k]));
    },
    interpret(row, scalars, cell) {
      return interpretAll(outputs, { ...row, ...scalars, ...cell }, fns) as Record<StageOutput, number>;
    },
  };
  if (MODEL_CACHE.size >= MODEL_CACHE_LIMIT) MODEL_CACHE.delete(MODEL_CACHE.keys().next().value as string);
  MODEL_CACHE.set(key, model);
  return model;
}

/** Allocate N-row candidate columns filled with a default row. */
export function candidateRows(n: number, fill: Partial<Row> = {}): CandidateRows {
  const defaults: Row = { b: 1, dp: 1, tp: 1, wre: 0, gre: 0, ore: 0, wo: 0, go: 0, oo: 0, ao: 0, sel: 0, ppdp: 1, pptp: 1, ppzero: 0, ...fill };
  const rows = {} as CandidateRows;
  for (const k of ROW_COLUMNS) rows[k] = new Float64Array(n).fill(defaults[k]);
  return rows;
}

export function outputArrays(n: number): Record<StageOutput, Float64Array> {
  return Object.fromEntries(STAGE_OUTPUTS.map((k) => [k, new Float64Array(n)])) as Record<StageOutput, Float64Array>;
}

/** ZeRO level → (wre, gre, ore). */
export function zeroFlags(zero: number): { wre: number; gre: number; ore: number } {
  return { wre: zero >= 3 ? 1 : 0, gre: zero >= 2 ? 1 : 0, ore: zero >= 1 ? 1 : 0 };
}

/**
 * Iteration time from per-stage stable and delta (mist.md §3.8):
 * T = Σ S_i + (G − 1)·max S_i + max(0, max_i(D_i − Σ_{j<i} S_j)), with what split backwards take off it when
 * their per-stage `wgrad` and `hideable` transfer seconds are given (0 where a stage does not split; solver.ts
 * pipelineSecondsBestHidden).
 */
export function iterationSeconds(stable: readonly number[], delta: readonly number[], G: number, wgrad: readonly number[] = [], hideable: readonly number[] = []): number {
  return pipelineSecondsBestHidden(stable.map((t, i) => ({ stable: t, delta: delta[i]!, wgrad: wgrad[i] ?? 0, hideable: hideable[i] ?? 0 })), G);
}
