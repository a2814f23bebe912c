/**
 * An exact solver of the inter-stage problem (solver.ts) by dynamic programming. Pure: no I/O, no clock; the
 * time limit of {@link SolveOptions} is not used (the answer never depends on it).
 *
 * ## The recurrence
 * Walk the stages in order with s = Σ_{j<i} T_j and e = max_{k<i} (D_k − Σ_{j<k} T_j). Put u = s + max(0, e).
 * Appending a stage with option (t, d):
 *
 *     u' = s + t + max(0, e, d − s) = t + max(u, d)          (u₀ = 0)
 *
 * and after the last stage u = Σ_i T_i + max(0, max_i (D_i − Σ_{j<i} T_j)): everything but the (G−1)·Tmax term.
 * u' is non-decreasing in u, so one number per DP state suffices (no Pareto sets): for a threshold τ,
 *
 *     f(τ) = min over assignments with every T_i ≤ τ of u_S,  by a DP over (stage, layers used so far).
 *
 * The optimum is min_τ (G−1)·τ + f(τ) over the distinct stable values τ ≥ τmin (τmin = the bottleneck: the
 * smallest achievable max_i T_i, itself a small minimax DP). Exact: the optimal assignment, with Tmax = τ*, gives
 * (G−1)·τ* + f(τ*) ≤ its objective, and every f(τ) is attained by an assignment whose Tmax ≤ τ.
 *
 * ## The search over τ
 * f is non-increasing, so on an interval (a, b) of thresholds every value is ≥ (G−1)·θ_{a+1} + f(θ_b), and if
 * f(θ_a) = f(θ_b) no interior threshold beats θ_a. Starting from [τmin, max τ], intervals are bisected and
 * dropped by these two bounds against the best objective so far (and the incumbent). With G = 1 only f(∞) is
 * evaluated; with large G (the usual G ≥ S) only thresholds close to τmin survive. Inside one DP, a state is
 * dropped when (G−1)·τmin + u + (the least Σ T of any completion) exceeds the cut-off: u only grows by at least
 * the stable times still to come (u' ≥ u + t), so this never drops the optimum.
 *
 * ## Split backwards
 * With an option's period P, latency U and tail E (solver.ts) the recurrence is u' = U + max(u, d), still
 * non-decreasing in u, the thresholds τ bound the periods, and max_i E_i is added once: an outer loop fixes
 * ε ∈ {the distinct tails}, leaves out options with E > ε and adds ε to every bound; the optimum, whose max tail
 * is some ε*, is found in the pass ε = ε*. Without split options ε = 0 only. Options are grouped by (W, H), within
 * which U − P = 2H − W and E are constant, so that each group's front stays two-dimensional (period, delta); the
 * fronts are built once and each pass keeps those with E ≤ ε. The bounds above read P for T and U for t.
 *
 * ## Complexity
 * With K = Σ_j |options[i][j]| (after removing dominated options) per stage, one DP is O(S · L · K) time and
 * O(S · L) memory for the back-pointers. The number of DPs is ≤ the number of distinct stable values
 * (≤ S · K) in the worst case and O(levels · log n) in practice (levels = distinct values of f near the optimum).
 * Typical sizes (S = 16, L = 48, 5 layer counts × 30 options) take a few milliseconds; S = 64, L = 128 tens of ms.
 */
import type { InterStageProblem, InterStageSolution, PolicyOption, Solver, SolveOptions } from './solver.js';
import { latencyOf, objectiveOf, periodOf, tailOf } from './solver.js';

/** Relative tolerance when comparing an objective with the incumbent. */
export const INCUMBENT_TOLERANCE = 1e-9;

/** A solution object for the statuses without an assignment. */
export function noSolution(status: 'infeasible' | 'pruned', solver: string): InterStageSolution {
  return { status, objective: Infinity, layers: [], choice: [], solver };
}

/** Whether a solution with this objective may be returned under the problem's incumbent (ties allowed). */
export function withinIncumbent(p: InterStageProblem, objective: number): boolean {
  if (p.incumbent === undefined || Number.isNaN(p.incumbent)) return true;
  return objective <= p.incumbent + INCUMBENT_TOLERANCE * Math.abs(p.incumbent);
}

/** Throws a RangeError on a malformed problem (a programming error; infeasibility is a result, not a throw). */
export function checkProblem(p: InterStageProblem): void {
  const bad = (what: string): never => {
    throw new RangeError(`InterStageProblem: ${what}`);
  };
  if (!Number.isInteger(p.S) || p.S < 1) bad(`S must be an integer ≥ 1 (got ${p.S})`);
  if (!Number.isInteger(p.L) || p.L < 0) bad(`L must be a non-negative integer (got ${p.L})`);
  if (!Number.isInteger(p.G) || p.G < 1) bad(`G must be an integer ≥ 1 (got ${p.G})`);
  for (let j = 0; j < p.layerChoices.length; j++) {
    const c = p.layerChoices[j];
    if (!Number.isInteger(c) || c < 1) bad(`layerChoices[${j}] must be an integer ≥ 1 (got ${c})`);
    if (j > 0 && c <= p.layerChoices[j - 1]) bad('layerChoices must be strictly ascending');
  }
  if (!Array.isArray(p.options) || p.options.length !== p.S) bad(`options must hold S = ${p.S} stages`);
  for (let i = 0; i < p.S; i++) {
    if (!Array.isArray(p.options[i]) || p.options[i].length !== p.layerChoices.length) bad(`options[${i}] must hold one list per layer choice (${p.layerChoices.length})`);
  }
}

/** An option is usable when both its times are finite; others are ignored (as if absent). */
export function usable(o: { stable: number; delta: number }): boolean {
  return Number.isFinite(o.stable) && Number.isFinite(o.delta);
}

/**
 * reach[i][l]: stages i..S−1 can hold exactly L − l layers with usable options (reach[S][L] = true), or with the
 * stage × layer choices `has` allows. The problem is feasible iff reach[0][0].
 */
export function completions(p: InterStageProblem, has: (i: number, j: number) => boolean = (i, j) => p.options[i][j].some(usable)): Uint8Array[] {
  const { S, L, layerChoices } = p;
  const reach: Uint8Array[] = [];
  for (let i = 0; i <= S; i++) reach.push(new Uint8Array(L + 1));
  reach[S][L] = 1;
  for (let i = S - 1; i >= 0; i--) {
    for (let l = 0; l <= L; l++) {
      for (let j = 0; j < layerChoices.length; j++) {
        const n = l + layerChoices[j];
        if (n <= L && has(i, j) && reach[i + 1][n]) {
          reach[i][l] = 1;
          break;
        }
      }
    }
  }
  return reach;
}

/** Whether any assignment exists (some split of L layers with an option at every stage). */
export function hasFeasibleSplit(p: InterStageProblem): boolean {
  return completions(p)[0][0] === 1;
}

/**
 * One stage × layer-choice option list of one (wgrad, hidden) pair, non-dominated, sorted by period ascending
 * (delta strictly descending).
 */
interface Front {
  /** Periods. */
  t: Float64Array;
  d: Float64Array;
  /** Latency − period (2H − W) and tail (W + H), the same for the whole front. */
  off: number;
  tail: number;
  /** Index into the problem's options[i][j]. */
  k: Int32Array;
}

const groupOf = (o: PolicyOption): string => `${o.wgrad ?? 0}/${o.hidden ?? 0}`;

/** The fronts of one stage × layer choice, one per distinct (wgrad, hidden) among its usable options. */
function fronts(options: PolicyOption[]): Front[] {
  const groups = new Map<string, number[]>();
  options.forEach((o, k) => {
    if (!usable(o)) return;
    const g = groupOf(o);
    const ks = groups.get(g);
    if (ks) ks.push(k);
    else groups.set(g, [k]);
  });
  return [...groups.values()].map((ks) => front(options, ks));
}

function front(options: PolicyOption[], idx: number[]): Front {
  idx.sort((a, b) => periodOf(options[a]) - periodOf(options[b]) || options[a].delta - options[b].delta || a - b);
  const keep: number[] = [];
  let bestD = Infinity;
  for (const k of idx) {
    if (options[k].delta < bestD) {
      keep.push(k);
      bestD = options[k].delta;
    }
  }
  return {
    t: Float64Array.from(keep, (k) => periodOf(options[k])),
    d: Float64Array.from(keep, (k) => options[k].delta),
    off: latencyOf(options[idx[0]]) - periodOf(options[idx[0]]),
    tail: tailOf(options[idx[0]]),
    k: Int32Array.from(keep),
  };
}

/** The smallest achievable max_i P_i (periods; Infinity when infeasible): a minimax DP over (stage, layers used). */
function bottleneckOf(p: InterStageProblem, fronts: Front[][][], reach: Uint8Array[]): number {
  const { S, L, layerChoices } = p;
  let bott = new Float64Array(L + 1).fill(Infinity);
  bott[0] = -Infinity;
  for (let i = 0; i < S; i++) {
    const next = new Float64Array(L + 1).fill(Infinity);
    for (let l = 0; l <= L; l++) {
      if (bott[l] === Infinity) continue;
      for (let j = 0; j < layerChoices.length; j++) {
        const n = l + layerChoices[j];
        const fs = fronts[i][j];
        if (n > L || fs.length === 0 || !reach[i + 1][n]) continue;
        const v = Math.max(bott[l], Math.min(...fs.map((f) => f.t[0])));
        if (v < next[n]) next[n] = v;
      }
    }
    bott = next;
  }
  return bott[L];
}

/** The smallest achievable max_i T_i over all assignments (Infinity when there is none); a valid lower bound on Tmax. */
export function bottleneck(p: InterStageProblem): number {
  return bottleneckOf(p, p.options.map((stage) => stage.map(fronts)), completions(p));
}

/** Solves exactly and synchronously; see the file comment. Throws only on a malformed problem. */
export function solveDp(p: InterStageProblem): InterStageSolution {
  checkProblem(p);
  if (!completions(p)[0][0]) return noSolution('infeasible', 'dp');
  const all: Front[][][] = p.options.map((stage) => stage.map(fronts));
  const eps = new Set<number>();
  for (const stage of all) for (const fs of stage) for (const f of fs) eps.add(f.tail);
  const best: Best = { objective: Infinity, layers: [], choice: [] };
  for (const e of [...eps].sort((a, b) => a - b)) {
    // a front's options share one tail: the pass keeps the fronts with tail ≤ ε
    const fr = all.map((stage) => stage.map((fs) => fs.filter((f) => f.tail <= e)));
    solveWithin(p, fr, completions(p, (i, j) => fr[i][j].length > 0), e, best);
  }
  if (best.objective === Infinity) return noSolution('pruned', 'dp');
  return { status: 'optimal', objective: best.objective, layers: best.layers, choice: best.choice, solver: 'dp' };
}

interface Best {
  objective: number;
  layers: number[];
  choice: number[];
}

/** The τ search of the file comment over the fronts `fr` (those with tail ≤ ε), improving `best` in place. */
function solveWithin(p: InterStageProblem, fr: Front[][][], reach: Uint8Array[], eps: number, best: Best): void {
  const { S, L, G, layerChoices } = p;
  const C = layerChoices.length;
  const W = L + 1;
  if (!reach[0][0]) return;

  // Least Σ T of any completion of stages i..S−1 from l layers used (for the in-DP bound), and the bottleneck.
  const restSum: Float64Array[] = [];
  for (let i = 0; i <= S; i++) restSum.push(new Float64Array(W).fill(Infinity));
  restSum[S][L] = 0;
  for (let i = S - 1; i >= 0; i--) {
    for (let l = 0; l <= L; l++) {
      if (!reach[i][l]) continue;
      let best = Infinity;
      for (let j = 0; j < C; j++) {
        const n = l + layerChoices[j];
        const fs = fr[i][j];
        if (n > L || fs.length === 0 || !reach[i + 1][n]) continue;
        let minT = Infinity;
        for (const f of fs) for (let k = 0; k < f.t.length; k++) minT = Math.min(minT, f.t[k] + f.off);
        best = Math.min(best, minT + restSum[i + 1][n]);
      }
      restSum[i][l] = best;
    }
  }
  const tauMin = bottleneckOf(p, fr, reach);

  const distinct = new Set<number>();
  for (const stage of fr) for (const fs of stage) for (const f of fs) for (const t of f.t) if (t >= tauMin) distinct.add(t);
  const thresholds = Float64Array.from(distinct).sort();
  const n = thresholds.length;

  const tmaxFloor = (G - 1) * tauMin + eps;
  const incumbent = p.incumbent !== undefined && !Number.isNaN(p.incumbent) ? p.incumbent + INCUMBENT_TOLERANCE * Math.abs(p.incumbent) : Infinity;
  /** A bound no better than this is dropped: ≥ the best found, or > the incumbent. */
  const dropped = (lb: number) => lb >= best.objective || lb > incumbent;

  const U = [new Float64Array(W), new Float64Array(W)];
  const backJ = new Int32Array(S * W);
  const backG = new Int32Array(S * W);
  const backQ = new Int32Array(S * W);

  /** f(τ) (Infinity when every assignment under τ is dropped by the bounds); records an improving solution. */
  const evaluate = (tau: number): number => {
    let cur = U[0];
    let nxt = U[1];
    cur.fill(Infinity);
    cur[0] = 0;
    for (let i = 0; i < S; i++) {
      nxt.fill(Infinity);
      const rest = restSum[i + 1];
      const ok = reach[i + 1];
      const row = i * W;
      for (let l = 0; l <= L; l++) {
        const u = cur[l];
        if (u === Infinity) continue;
        for (let j = 0; j < C; j++) {
          const nl = l + layerChoices[j];
          if (nl > L || !ok[nl]) continue;
          const restN = rest[nl];
          const fs = fr[i][j];
          for (let g = 0; g < fs.length; g++) {
            const f = fs[g];
            const ft = f.t;
            const fd = f.d;
            const off = f.off;
            for (let k = 0; k < ft.length; k++) {
              const t = ft[k];
              if (t > tau) break;
              const d = fd[k];
              const v = t + off + (u > d ? u : d);
              if (v < nxt[nl] && !dropped(tmaxFloor + v + restN)) {
                nxt[nl] = v;
                backJ[row + nl] = j;
                backG[row + nl] = g;
                backQ[row + nl] = k;
              }
            }
          }
        }
      }
      const swap = cur;
      cur = nxt;
      nxt = swap;
    }
    const value = cur[L];
    if (value === Infinity) return Infinity;
    const layers = new Array<number>(S);
    const choice = new Array<number>(S);
    let l = L;
    for (let i = S - 1; i >= 0; i--) {
      const j = backJ[i * W + l];
      layers[i] = layerChoices[j];
      choice[i] = fr[i][j][backG[i * W + l]].k[backQ[i * W + l]];
      l -= layerChoices[j];
    }
    const obj = objectiveOf(p, layers, choice);
    if (obj < best.objective && obj <= incumbent) {
      best.objective = obj;
      best.layers = layers;
      best.choice = choice;
    }
    return value;
  };

  if (n === 0) return;
  const fHi = evaluate(thresholds[n - 1]);
  if (fHi === Infinity) return;
  if (n > 1) {
    const fLo = evaluate(thresholds[0]);
    const stack: Array<[number, number, number, number]> = [[0, n - 1, fLo, fHi]];
    while (stack.length > 0) {
      const [a, b, fa, fb] = stack.pop()!;
      if (b - a < 2) continue;
      if (fa === fb && fa !== Infinity) continue;
      if (dropped((G - 1) * thresholds[a + 1] + fb + eps)) continue;
      const m = (a + b) >> 1;
      const fm = evaluate(thresholds[m]);
      // Lower half first on the stack's top: small thresholds usually hold the optimum when G is large.
      stack.push([m, b, fm, fb], [a, m, fa, fm]);
    }
  }
}

/** The exact DP behind the {@link Solver} interface. */
export class DpSolver implements Solver {
  readonly name = 'dp';
  async solve(p: InterStageProblem, _o?: SolveOptions): Promise<InterStageSolution> {
    return solveDp(p);
  }
}
