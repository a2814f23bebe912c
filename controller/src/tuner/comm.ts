/**
 * Communication and kernel-efficiency models of research/mist.md §3.3, in scalar and column forms.
 *
 * - Collectives: t = (X / k) · (n − 1)/n + β, times the op factor (all-reduce 2.1, all-gather 1.0,
 *   reduce-scatter 1.1); 0 when the group has one member or X < 1e-5 GiB (Mist's cut-off). X is the full
 *   (unsharded) buffer: the gathered weights for an all-gather, the whole gradient for a reduce-scatter.
 *   (k, β) come from the hardware's table by group layout (inter-node × intra-node size).
 * - P2P between pipeline stages: t = X / k with k of layout 2x1 across nodes, 1x2 inside one (Mist adds no β).
 * - Host↔device copies: t = X / k + β, 0 when X = 0.
 * - GEMM efficiency: eff(F) = max / (1 + (half / F)^shape).
 *
 * Column forms take Float64Arrays and write into `out` (allocated once when omitted; it may alias the input).
 * They allocate nothing per element, so they can run over millions of candidate cells.
 */
import { badInput } from '../../../protocol/src/errors.js';
import { GIB, LAYOUT_SIZES, collectiveKey } from './hardware.js';
import type { HardwareParams, LinkParams } from './hardware-types.js';

export type CollectiveOp = 'allReduce' | 'allGather' | 'reduceScatter';

/** A process group's shape: how many nodes it spans and how many of its ranks share a node. */
export interface GroupLayout {
  inter: number;
  intra: number;
}

/** Mist returns 0 for collectives under 1e-5 GB (its GB is a GiB): about 10.7 KB. */
export const TINY_COLLECTIVE_BYTES = 1e-5 * GIB;

/** Table index of a group size: 1 → 0, 2 → 1, 3–4 → 2, ≥ 5 → 3 (sizes above 8 use the 8 column). */
function bucket(n: number): number {
  return n <= 1 ? 0 : n <= 2 ? 1 : n <= 4 ? 2 : 3;
}

/**
 * The (k, β) pair for a group layout. Sizes round up to the next of 1, 2, 4, 8 (above 8: 8). A layout missing
 * from the table falls back to the nearest smaller one: fewer nodes first (staying cross-node when the group is),
 * then fewer GPUs per node. Throws BAD_INPUT when nothing fits (a table without 1x2 or 2x1).
 */
export function collectiveLink(hw: HardwareParams, inter: number, intra: number): LinkParams {
  const bi = bucket(inter);
  const bj = bucket(intra);
  const minI = bi >= 1 ? 1 : 0;
  for (let j = bj; j >= 0; j--) {
    for (let i = bi; i >= minI; i--) {
      if (i === 0 && j === 0) continue;
      const l = hw.collective[collectiveKey(LAYOUT_SIZES[i], LAYOUT_SIZES[j])];
      if (l !== undefined) return l;
    }
  }
  throw badInput(`hardware.collective`, `no link for a group of ${inter} node(s) × ${intra} GPU(s)`, `table has ${Object.keys(hw.collective).join(', ') || 'no layouts'}; it needs at least 1x2 and 2x1`);
}

/**
 * The resolved table in Mist's flat layout: entry (i·4 + j) holds [bandwidth bytes/s, latency s] at
 * [2(i·4+j), 2(i·4+j)+1] for inter bucket i and intra bucket j. The 1x1 entry is [Infinity, 0] (never used).
 */
export function linkTable(hw: HardwareParams): Float64Array {
  const t = new Float64Array(32);
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) {
      const at = 2 * (i * 4 + j);
      if (i === 0 && j === 0) {
        t[at] = Infinity;
        t[at + 1] = 0;
        continue;
      }
      const l = collectiveLink(hw, LAYOUT_SIZES[i], LAYOUT_SIZES[j]);
      t[at] = l.bandwidth;
      t[at + 1] = l.latency;
    }
  }
  return t;
}

export function opFactor(hw: HardwareParams, op: CollectiveOp): number {
  const f = hw.collectiveFactor[op];
  if (f === undefined) throw badInput('op', `unknown collective "${String(op)}"`, 'valid: allReduce, allGather, reduceScatter');
  return f;
}

/** Seconds for one collective of `bytes` (the full buffer) over a group spanning inter nodes × intra GPUs. */
export function collectiveSeconds(hw: HardwareParams, op: CollectiveOp, bytes: number, inter: number, intra: number): number {
  const factor = opFactor(hw, op);
  const n = inter * intra;
  if (n <= 1 || bytes < TINY_COLLECTIVE_BYTES) return 0;
  const l = collectiveLink(hw, inter, intra);
  return factor * ((bytes / l.bandwidth) * ((n - 1) / n) + l.latency);
}

function checkOut(out: Float64Array | undefined, n: number): Float64Array {
  if (out === undefined) return new Float64Array(n);
  if (out.length < n) throw badInput('out', `has ${out.length} elements, needs ${n}`);
  return out;
}

function checkColumn(field: string, v: number | ArrayLike<number>, n: number): void {
  if (typeof v !== 'number' && v.length !== n) throw badInput(field, `has ${v.length} elements, expected ${n} (one per byte count)`);
}

/**
 * Column form of `collectiveSeconds`: `inter` and `intra` are either one value for every row or one per row.
 * Writes out[i] for i < bytes.length and returns out.
 */
export function collectiveColumn(
  hw: HardwareParams,
  op: CollectiveOp,
  bytes: Float64Array,
  inter: number | ArrayLike<number>,
  intra: number | ArrayLike<number>,
  out?: Float64Array,
): Float64Array {
  const len = bytes.length;
  const factor = opFactor(hw, op);
  checkColumn('inter', inter, len);
  checkColumn('intra', intra, len);
  const res = checkOut(out, len);
  if (typeof inter === 'number' && typeof intra === 'number') {
    const n = inter * intra;
    if (n <= 1) {
      res.fill(0, 0, len);
      return res;
    }
    const l = collectiveLink(hw, inter, intra);
    const scale = ((n - 1) / n / l.bandwidth) * factor;
    const fixed = l.latency * factor;
    for (let i = 0; i < len; i++) {
      const x = bytes[i];
      res[i] = x < TINY_COLLECTIVE_BYTES ? 0 : x * scale + fixed;
    }
    return res;
  }
  const table = linkTable(hw);
  const interArr = typeof inter === 'number' ? null : inter;
  const intraArr = typeof intra === 'number' ? null : intra;
  const interOne = typeof inter === 'number' ? inter : 0;
  const intraOne = typeof intra === 'number' ? intra : 0;
  for (let i = 0; i < len; i++) {
    const a = interArr === null ? interOne : interArr[i];
    const b = intraArr === null ? intraOne : intraArr[i];
    const n = a * b;
    const x = bytes[i];
    if (n <= 1 || x < TINY_COLLECTIVE_BYTES) {
      res[i] = 0;
      continue;
    }
    const at = 2 * (bucket(a) * 4 + bucket(b));
    res[i] = factor * ((x / table[at]) * ((n - 1) / n) + table[at + 1]);
  }
  return res;
}

/** Pipeline point-to-point send of `bytes`: Mist's t = X / k (no latency term), k of 2x1 or 1x2. */
export function p2pSeconds(hw: HardwareParams, bytes: number, crossNode: boolean): number {
  if (bytes === 0) return 0;
  const l = crossNode ? collectiveLink(hw, 2, 1) : collectiveLink(hw, 1, 2);
  return bytes / l.bandwidth;
}

export function p2pColumn(hw: HardwareParams, bytes: Float64Array, crossNode: boolean, out?: Float64Array): Float64Array {
  const len = bytes.length;
  const res = checkOut(out, len);
  const l = crossNode ? collectiveLink(hw, 2, 1) : collectiveLink(hw, 1, 2);
  const inv = 1 / l.bandwidth;
  for (let i = 0; i < len; i++) res[i] = bytes[i] * inv;
  return res;
}

function copySeconds(l: LinkParams, bytes: number): number {
  return bytes === 0 ? 0 : bytes / l.bandwidth + l.latency;
}

function copyColumn(l: LinkParams, bytes: Float64Array, out?: Float64Array): Float64Array {
  const len = bytes.length;
  const res = checkOut(out, len);
  const inv = 1 / l.bandwidth;
  const beta = l.latency;
  for (let i = 0; i < len; i++) {
    const x = bytes[i];
    res[i] = x === 0 ? 0 : x * inv + beta;
  }
  return res;
}

/** Host→device copy of pinned memory: X / k + β, 0 when X = 0. */
export function h2dSeconds(hw: HardwareParams, bytes: number): number {
  return copySeconds(hw.h2d, bytes);
}

/** Device→host copy of pinned memory: X / k + β, 0 when X = 0. */
export function d2hSeconds(hw: HardwareParams, bytes: number): number {
  return copySeconds(hw.d2h, bytes);
}

export function h2dColumn(hw: HardwareParams, bytes: Float64Array, out?: Float64Array): Float64Array {
  return copyColumn(hw.h2d, bytes, out);
}

export function d2hColumn(hw: HardwareParams, bytes: Float64Array, out?: Float64Array): Float64Array {
  return copyColumn(hw.d2h, bytes, out);
}

/** Achieved fraction of peak for one GEMM of `flops` FLOPs: max / (1 + (half/F)^shape); 0 for F ≤ 0. */
export function gemmEfficiency(hw: HardwareParams, flops: number): number {
  if (flops <= 0) return 0;
  const g = hw.gemm;
  return g.maxEfficiency / (1 + (g.shape === 1 ? g.halfFlops / flops : Math.pow(g.halfFlops / flops, g.shape)));
}

export function gemmEfficiencyColumn(hw: HardwareParams, flops: Float64Array, out?: Float64Array): Float64Array {
  const len = flops.length;
  const res = checkOut(out, len);
  const { maxEfficiency, halfFlops, shape } = hw.gemm;
  for (let i = 0; i < len; i++) {
    const f = flops[i];
    res[i] = f <= 0 ? 0 : maxEfficiency / (1 + (shape === 1 ? halfFlops / f : Math.pow(halfFlops / f, shape)));
  }
  return res;
}

/** Seconds for one GEMM of `flops` FLOPs at the curve's efficiency: F / (peak · eff(F)); 0 for F ≤ 0. */
export function gemmSeconds(hw: HardwareParams, flops: number): number {
  if (flops <= 0) return 0;
  const g = hw.gemm;
  const work = g.shape === 1 ? flops + g.halfFlops : flops * (1 + Math.pow(g.halfFlops / flops, g.shape));
  return work / (hw.peakFlops * g.maxEfficiency);
}

export function gemmSecondsColumn(hw: HardwareParams, flops: Float64Array, out?: Float64Array): Float64Array {
  const len = flops.length;
  const res = checkOut(out, len);
  const { maxEfficiency, halfFlops, shape } = hw.gemm;
  const inv = 1 / (hw.peakFlops * maxEfficiency);
  for (let i = 0; i < len; i++) {
    const f = flops[i];
    res[i] = f <= 0 ? 0 : (shape === 1 ? f + halfFlops : f * (1 + Math.pow(halfFlops / f, shape))) * inv;
  }
  return res;
}

function positiveInt(field: string, v: number): void {
  if (!(Number.isInteger(v) && v >= 1)) throw badInput(field, `must be an integer ≥ 1, got ${v}`);
}

/**
 * Layout of a stage's data-parallel group (mist.md §3.3): DP runs across nodes first, so a group of dp ranks
 * over a stage of `stageNodes` nodes spans min(dp, stageNodes) nodes with ⌈dp / stageNodes⌉ ranks per node
 * when dp > stageNodes (else 1).
 */
export function dpLayout(dp: number, stageNodes: number, gpusPerNode: number): GroupLayout {
  positiveInt('dp', dp);
  positiveInt('stageNodes', stageNodes);
  positiveInt('gpusPerNode', gpusPerNode);
  if (dp > stageNodes * gpusPerNode) {
    throw badInput('dp', `${dp} exceeds the stage's ${stageNodes} node(s) × ${gpusPerNode} GPU(s)`, `valid: 1..${stageNodes * gpusPerNode}`);
  }
  const inter = Math.min(dp, stageNodes);
  const intra = dp > stageNodes ? Math.ceil(dp / stageNodes) : 1;
  return { inter, intra };
}

/** Layout of a tensor-parallel group: inside one node when tp ≤ gpusPerNode, else whole nodes. */
export function tpLayout(tp: number, gpusPerNode: number): GroupLayout {
  positiveInt('tp', tp);
  positiveInt('gpusPerNode', gpusPerNode);
  const inter = tp > gpusPerNode ? Math.ceil(tp / gpusPerNode) : 1;
  const intra = Math.min(tp, gpusPerNode);
  return { inter, intra };
}
