/**
 * Mist's interference (overlap) model, research/mist.md §3.3 (Dazz993/Mist mist/tools/optimize.py::
 * interference_estimate_for_one_group): four streams run concurrently, each with a standalone duration,
 * C = compute, G = GPU↔GPU communication, H = host→device copy, D = device→host copy.
 *
 * A phase-by-phase race: while the streams of the active set S (the non-zero ones) run together, stream i
 * advances at 1/f_i(S) of its standalone speed. The phase lasts until the first stream finishes,
 * o = min_{i∈S} x_i · f_i(S); every stream of S then has x_i − o / f_i(S) of standalone work left; the set
 * shrinks and the race repeats; the last stream finishes alone. The result is the sum of the phases.
 *
 * Factors: 28 numbers ≥ 1 in Mist's order (hardware-types.ts): [0:4] the 4-way set; [4:16] the 3-way sets
 * {C,G,H}, {C,G,D}, {C,H,D}, {G,H,D}; [16:28] the 2-way sets {C,G}, {C,H}, {C,D}, {G,H}, {G,D}, {H,D}; inside a
 * set the factors follow the stream order C, G, H, D.
 *
 * A stream counts as absent when its duration is ≤ 1e-8 s (Mist's np.isclose(x, 0)); such a tiny leftover is
 * added at the end, as Mist does. Inputs must be ≥ 0 (the column form does not check).
 *
 * Properties (tests/unit/tuner/interference.test.ts checks each):
 * - result ≥ max(inputs), because every factor is ≥ 1: a stream is never faster than alone;
 * - result = max(inputs) when every factor is 1 (perfect overlap), and = the input when only one is non-zero;
 * - result ≤ Σ_i x_i · max_S f_i(S): each phase ends with a stream finishing, and lasts at most that stream's
 *   remaining work times its factor;
 * - result ≤ sum(inputs) (overlap never loses to running serially) when every set has Σ_{i∈S} 1/f_i(S) ≥ 1:
 *   then each phase completes at least as much standalone work as it lasts (`noWorseThanSerial`). Large factors
 *   break this: with f = 50 for both of {C,G}, C = G = 1 takes 50 s. So "equals the sum when the factors are
 *   huge" is false: huge factors exceed the sum;
 * - monotone non-decreasing in each input when the factors are superset-monotone, f_i(S) ≥ f_i(S') for S' ⊂ S
 *   (`isSupersetMonotone`): by coupling, more work in one stream keeps every active set a superset of the
 *   original one at each instant, so every stream runs at most as fast and finishes no earlier. Mist's fitted
 *   L4 and A100 factors are not superset-monotone, and there the result can drop when an input grows (a test
 *   pins one such case); the additive construction `additiveInterference` is superset-monotone by design.
 */
import { badInput } from '../../../protocol/src/errors.js';

/** Stream indices. */
export const C = 0;
export const G = 1;
export const H = 2;
export const D = 3;
export const STREAM_NAMES = ['compute', 'gpuGpu', 'hostToDevice', 'deviceToHost'] as const;

/** Below this a duration counts as absent (Mist: np.isclose(x, 0), absolute tolerance 1e-8). */
export const ZERO_SECONDS = 1e-8;

export interface InterferenceSet {
  /** Bit i set ⇔ stream i belongs to the set (C = 1, G = 2, H = 4, D = 8). */
  mask: number;
  /** Index of the set's first factor in the 28-vector. */
  offset: number;
  /** Streams of the set, ascending; factor k of the set belongs to streams[k]. */
  streams: readonly number[];
}

function set(offset: number, ...streams: number[]): InterferenceSet {
  return Object.freeze({ mask: streams.reduce((m, s) => m | (1 << s), 0), offset, streams: Object.freeze(streams) });
}

/** The 11 sets in Mist's order. */
export const INTERFERENCE_SETS: readonly InterferenceSet[] = Object.freeze([
  set(0, C, G, H, D),
  set(4, C, G, H),
  set(7, C, G, D),
  set(10, C, H, D),
  set(13, G, H, D),
  set(16, C, G),
  set(18, C, H),
  set(20, C, D),
  set(22, G, H),
  set(24, G, D),
  set(26, H, D),
]);

export const INTERFERENCE_FACTOR_COUNT = 28;

/** FACTOR_INDEX[mask·4 + s] = index into the 28-vector of stream s's factor in set `mask`, or −1. */
const FACTOR_INDEX = (() => {
  const idx = new Int8Array(64).fill(-1);
  for (const s of INTERFERENCE_SETS) s.streams.forEach((stream, k) => (idx[s.mask * 4 + stream] = s.offset + k));
  return idx;
})();

const POPCOUNT = (() => {
  const p = new Uint8Array(16);
  for (let m = 0; m < 16; m++) p[m] = (m & 1) + ((m >> 1) & 1) + ((m >> 2) & 1) + ((m >> 3) & 1);
  return p;
})();

function checkFactors(factors: ArrayLike<number>): void {
  if (factors.length !== INTERFERENCE_FACTOR_COUNT) {
    throw badInput('interference', `needs ${INTERFERENCE_FACTOR_COUNT} factors, got ${factors.length}`);
  }
}

/** Factor of stream `stream` when the streams of `mask` run together (1 for sets of fewer than two). */
export function interferenceFactor(factors: ArrayLike<number>, mask: number, stream: number): number {
  const i = FACTOR_INDEX[(mask & 15) * 4 + stream];
  return i < 0 ? 1 : factors[i];
}

/** Fills a 64-entry table t[mask·4 + s] = factor (1 where undefined). */
function fillTable(factors: ArrayLike<number>, t: Float64Array): Float64Array {
  for (let k = 0; k < 64; k++) {
    const i = FACTOR_INDEX[k];
    t[k] = i < 0 ? 1 : factors[i];
  }
  return t;
}

/** The race over a filled table. */
function race(t: Float64Array, c: number, g: number, h: number, d: number): number {
  let mask = (c > ZERO_SECONDS ? 1 : 0) | (g > ZERO_SECONDS ? 2 : 0) | (h > ZERO_SECONDS ? 4 : 0) | (d > ZERO_SECONDS ? 8 : 0);
  let total = 0;
  while (POPCOUNT[mask] >= 2) {
    const b = mask << 2;
    const fc = t[b];
    const fg = t[b + 1];
    const fh = t[b + 2];
    const fd = t[b + 3];
    let o = Infinity;
    if (mask & 1 && c * fc < o) o = c * fc;
    if (mask & 2 && g * fg < o) o = g * fg;
    if (mask & 4 && h * fh < o) o = h * fh;
    if (mask & 8 && d * fd < o) o = d * fd;
    total += o;
    let next = 0;
    if (mask & 1) {
      c = (c * fc - o) / fc;
      if (c > ZERO_SECONDS) next |= 1;
    }
    if (mask & 2) {
      g = (g * fg - o) / fg;
      if (g > ZERO_SECONDS) next |= 2;
    }
    if (mask & 4) {
      h = (h * fh - o) / fh;
      if (h > ZERO_SECONDS) next |= 4;
    }
    if (mask & 8) {
      d = (d * fd - o) / fd;
      if (d > ZERO_SECONDS) next |= 8;
    }
    mask = next;
  }
  return total + c + g + h + d;
}

const SCRATCH = new Float64Array(64);

/** Wall time of four concurrent streams with standalone durations c, g, h, d (seconds). */
export function overlapSeconds(factors: ArrayLike<number>, c: number, g: number, h: number, d: number): number {
  checkFactors(factors);
  return race(fillTable(factors, SCRATCH), c, g, h, d);
}

/**
 * Column form: out[i] = overlapSeconds(factors, C[i], G[i], H[i], D[i]). Allocates only the 64-entry factor
 * table (and `out` when omitted); `out` may alias an input.
 */
export function overlapColumn(
  factors: ArrayLike<number>,
  cs: Float64Array,
  gs: Float64Array,
  hs: Float64Array,
  ds: Float64Array,
  out?: Float64Array,
): Float64Array {
  checkFactors(factors);
  const n = cs.length;
  if (gs.length !== n || hs.length !== n || ds.length !== n) {
    throw badInput('overlapColumn', `columns differ in length (${n}, ${gs.length}, ${hs.length}, ${ds.length})`);
  }
  const res = out ?? new Float64Array(n);
  if (res.length < n) throw badInput('out', `has ${res.length} elements, needs ${n}`);
  const t = fillTable(factors, new Float64Array(64));
  for (let i = 0; i < n; i++) {
    const c = cs[i];
    const g = gs[i];
    const h = hs[i];
    const d = ds[i];
    const active = (c > ZERO_SECONDS ? 1 : 0) + (g > ZERO_SECONDS ? 1 : 0) + (h > ZERO_SECONDS ? 1 : 0) + (d > ZERO_SECONDS ? 1 : 0);
    res[i] = active < 2 ? c + g + h + d : race(t, c, g, h, d);
  }
  return res;
}

/**
 * Builds a full 28-vector from the 12 two-way factors (Mist's [16:28] order) by adding slowdowns:
 * f_i(S) = 1 + Σ_{j∈S, j≠i} (f_i({i,j}) − 1). The result is superset-monotone.
 */
export function additiveInterference(twoWay: ArrayLike<number>): number[] {
  if (twoWay.length !== 12) throw badInput('twoWay', `needs 12 two-way factors, got ${twoWay.length}`);
  const full = new Array<number>(INTERFERENCE_FACTOR_COUNT).fill(1);
  for (let k = 0; k < 12; k++) full[16 + k] = twoWay[k];
  const penalty = (i: number, j: number): number => interferenceFactor(full, (1 << i) | (1 << j), i) - 1;
  for (const s of INTERFERENCE_SETS) {
    if (s.streams.length < 3) continue;
    s.streams.forEach((i, k) => {
      let f = 1;
      for (const j of s.streams) if (j !== i) f += penalty(i, j);
      full[s.offset + k] = f;
    });
  }
  return full;
}

/** True when no stream runs faster in a set than in any of its subsets (makes the overlap monotone). */
export function isSupersetMonotone(factors: ArrayLike<number>, tolerance = 0): boolean {
  checkFactors(factors);
  for (const big of INTERFERENCE_SETS) {
    for (const small of INTERFERENCE_SETS) {
      if (small.mask === big.mask || (small.mask & big.mask) !== small.mask) continue;
      for (const i of small.streams) {
        if (interferenceFactor(factors, big.mask, i) + tolerance < interferenceFactor(factors, small.mask, i)) return false;
      }
    }
  }
  return true;
}

/** True when every set completes at least as much work as time passes, Σ 1/f ≥ 1 (makes overlap ≤ sum). */
export function noWorseThanSerial(factors: ArrayLike<number>): boolean {
  checkFactors(factors);
  return INTERFERENCE_SETS.every((s) => s.streams.reduce((acc, i) => acc + 1 / interferenceFactor(factors, s.mask, i), 0) >= 1);
}
