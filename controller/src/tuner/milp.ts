/**
 * Mist's inter-stage MILP (research/mist.md §5) as a glpk.js model object, and the decoding of a glpk.js result.
 * Pure: building and decoding only. The solve runs in a worker thread (tuner-worker/glpk-solver.ts), because
 * glpk.js on Node is synchronous.
 *
 * Variables (j indexes layerChoices, k options[i][j]; options with a non-finite time are left out):
 *   x_i_j ∈ {0,1}      stage i holds layerChoices[j] layers
 *   z_i_j_k ∈ {0,1}    stage i holds layerChoices[j] layers and uses option k
 *   T_i, D_i free      stage stable / delta time;   Tmax free;   Dmax ≥ 0
 * Rows:
 *   one_i:    Σ_j x_i_j = 1                          layers: Σ_i Σ_j layerChoices[j]·x_i_j = L
 *   pick_i:   Σ_{j,k} z_i_j_k = 1
 *   link_i_j: Σ_k z_i_j_k − x_i_j = 0   (default, `linking: 'aggregated'`), or the paper's
 *   link_i_j_k: z_i_j_k − x_i_j ≤ 0     (`linking: 'per-option'`). Both give the same integer solutions; the
 *             aggregated rows are fewer and their LP relaxation tighter: on S = 6, L = 24, 8 options glpk.js
 *             proves optimality in 0.4 s with them and is still 30% off after 20 s with the paper's rows.
 *   Tmax ≥ the bottleneck (the smallest achievable max_i T_i, dp-solver.ts; `tmaxBound: false` drops it): a
 *             valid bound that closes much of the relaxation's gap on the (G−1)·Tmax term (S = 16: 23 s → 4 s).
 *   T_i − Σ stable·z = 0,   D_i − Σ delta·z = 0,   tmax_i: Tmax − T_i ≥ 0,   dmax_i: Dmax − D_i + Σ_{j<i} T_j ≥ 0
 *   cut (with an incumbent): (G−1)·Tmax + Σ_i T_i + Dmax ≤ incumbent
 *     (stronger than the paper's (G−1)·Tmax ≤ best, and still a valid cut; infeasible under it → 'pruned')
 * Objective: min (G−1)·Tmax + Σ_i T_i + Dmax.
 * With split backwards (an option with wgrad > 0; solver.ts): T_i is the period (stable − hidden), and
 * U_i − Σ latency·z = 0, E_i − Σ tail·z = 0, emax_i: Emax − E_i ≥ 0; the objective and the dmax rows sum U_i in
 * place of T_i, and the objective adds Emax.
 */
import type { InterStageProblem, InterStageSolution, SolveOptions } from './solver.js';
import { latencyOf, objectiveOf, periodOf, tailOf } from './solver.js';
import { bottleneck, noSolution, usable, withinIncumbent } from './dp-solver.js';

/** glpk.js constants (glpk.js 5.0.0 `GLPKConstants`), repeated here so that this module stays free of the package. */
export const GLP = {
  MIN: 1,
  MAX: 2,
  FR: 1,
  LO: 2,
  UP: 3,
  DB: 4,
  FX: 5,
  MSG_OFF: 0,
  UNDEF: 1,
  FEAS: 2,
  INFEAS: 3,
  NOFEAS: 4,
  OPT: 5,
  UNBND: 6,
} as const;

export interface MilpTerm {
  name: string;
  coef: number;
}
export interface MilpBounds {
  type: number;
  lb: number;
  ub: number;
}
/** Structurally glpk.js's `LP` (with its `Options`). */
export interface MilpModel {
  name: string;
  objective: { direction: number; name: string; vars: MilpTerm[] };
  subjectTo: { name: string; vars: MilpTerm[]; bnds: MilpBounds }[];
  bounds: ({ name: string } & MilpBounds)[];
  binaries: string[];
  options: { tmlim: number; mipgap: number; msglev: number; presol: boolean };
}

/** What the worker sends back: glpk.js's `result` plus the LP-relaxation bound when the MIP stopped early. */
export interface MilpResult {
  status: number;
  z: number;
  vars: Record<string, number>;
  /** Seconds glpk.js spent. */
  time?: number;
  /** The LP relaxation's optimum (a lower bound on the MILP), computed when the status is GLP_FEAS. */
  bound?: number;
  /** Set when GLP_FEAS came from the gap test (the solve ended well before the time limit): the gap is ≤ this. */
  gapAtMost?: number;
}

export interface BuildOptions {
  /** 'aggregated' (default: Σ_k z_i_j_k = x_i_j) or 'per-option' (the paper's z_i_j_k ≤ x_i_j rows). */
  linking?: 'per-option' | 'aggregated';
  /** Bound Tmax from below by the bottleneck (default true). */
  tmaxBound?: boolean;
}

export const xName = (i: number, j: number) => `x_${i}_${j}`;
export const zName = (i: number, j: number, k: number) => `z_${i}_${j}_${k}`;

/** The MILP of mist.md §5 for `p`, with `o`'s time limit and relative gap as glpk.js options. */
export function buildMilp(p: InterStageProblem, o: SolveOptions, b: BuildOptions = {}): MilpModel {
  const { S, L, G, layerChoices } = p;
  const rows: MilpModel['subjectTo'] = [];
  const binaries: string[] = [];
  const fx = (v: number): MilpBounds => ({ type: GLP.FX, lb: v, ub: v });
  const layerTerms: MilpTerm[] = [];
  const split = p.options.some((st) => st.some((os) => os.some((o) => usable(o) && tailOf(o) > 0)));
  const sumVar = (i: number): string => (split ? `U_${i}` : `T_${i}`);
  for (let i = 0; i < S; i++) {
    const oneTerms: MilpTerm[] = [];
    const pickTerms: MilpTerm[] = [];
    const tTerms: MilpTerm[] = [{ name: `T_${i}`, coef: 1 }];
    const dTerms: MilpTerm[] = [{ name: `D_${i}`, coef: 1 }];
    const uTerms: MilpTerm[] = [{ name: `U_${i}`, coef: 1 }];
    const eTerms: MilpTerm[] = [{ name: `E_${i}`, coef: 1 }];
    for (let j = 0; j < layerChoices.length; j++) {
      const opts = p.options[i][j];
      const ks = opts.map((_, k) => k).filter((k) => usable(opts[k]));
      if (ks.length === 0) continue;
      const x = xName(i, j);
      binaries.push(x);
      oneTerms.push({ name: x, coef: 1 });
      layerTerms.push({ name: x, coef: layerChoices[j] });
      const agg: MilpTerm[] = [{ name: x, coef: -1 }];
      for (const k of ks) {
        const z = zName(i, j, k);
        binaries.push(z);
        pickTerms.push({ name: z, coef: 1 });
        if (periodOf(opts[k]) !== 0) tTerms.push({ name: z, coef: -periodOf(opts[k]) });
        if (opts[k].delta !== 0) dTerms.push({ name: z, coef: -opts[k].delta });
        if (latencyOf(opts[k]) !== 0) uTerms.push({ name: z, coef: -latencyOf(opts[k]) });
        if (tailOf(opts[k]) !== 0) eTerms.push({ name: z, coef: -tailOf(opts[k]) });
        if (b.linking !== 'per-option') agg.push({ name: z, coef: 1 });
        else rows.push({ name: `link_${i}_${j}_${k}`, vars: [{ name: z, coef: 1 }, { name: x, coef: -1 }], bnds: { type: GLP.UP, lb: 0, ub: 0 } });
      }
      if (b.linking !== 'per-option') rows.push({ name: `link_${i}_${j}`, vars: agg, bnds: fx(0) });
    }
    rows.push({ name: `one_${i}`, vars: oneTerms, bnds: fx(1) });
    rows.push({ name: `pick_${i}`, vars: pickTerms, bnds: fx(1) });
    rows.push({ name: `defT_${i}`, vars: tTerms, bnds: fx(0) });
    rows.push({ name: `defD_${i}`, vars: dTerms, bnds: fx(0) });
    rows.push({ name: `tmax_${i}`, vars: [{ name: 'Tmax', coef: 1 }, { name: `T_${i}`, coef: -1 }], bnds: { type: GLP.LO, lb: 0, ub: 0 } });
    const dmax: MilpTerm[] = [{ name: 'Dmax', coef: 1 }, { name: `D_${i}`, coef: -1 }];
    for (let j = 0; j < i; j++) dmax.push({ name: sumVar(j), coef: 1 });
    rows.push({ name: `dmax_${i}`, vars: dmax, bnds: { type: GLP.LO, lb: 0, ub: 0 } });
    if (split) {
      rows.push({ name: `defU_${i}`, vars: uTerms, bnds: fx(0) });
      rows.push({ name: `defE_${i}`, vars: eTerms, bnds: fx(0) });
      rows.push({ name: `emax_${i}`, vars: [{ name: 'Emax', coef: 1 }, { name: `E_${i}`, coef: -1 }], bnds: { type: GLP.LO, lb: 0, ub: 0 } });
    }
  }
  rows.push({ name: 'layers', vars: layerTerms, bnds: fx(L) });

  const objective: MilpTerm[] = [];
  if (G > 1) objective.push({ name: 'Tmax', coef: G - 1 });
  for (let i = 0; i < S; i++) objective.push({ name: sumVar(i), coef: 1 });
  objective.push({ name: 'Dmax', coef: 1 });
  if (split) objective.push({ name: 'Emax', coef: 1 });
  if (p.incumbent !== undefined && Number.isFinite(p.incumbent)) {
    rows.push({ name: 'cut', vars: objective.map((t) => ({ ...t })), bnds: { type: GLP.UP, lb: 0, ub: p.incumbent } });
  }

  const bounds: MilpModel['bounds'] = [];
  for (let i = 0; i < S; i++) {
    bounds.push({ name: `T_${i}`, type: GLP.FR, lb: 0, ub: 0 });
    bounds.push({ name: `D_${i}`, type: GLP.FR, lb: 0, ub: 0 });
    if (split) {
      bounds.push({ name: `U_${i}`, type: GLP.FR, lb: 0, ub: 0 });
      bounds.push({ name: `E_${i}`, type: GLP.LO, lb: 0, ub: 0 });
    }
  }
  if (split) bounds.push({ name: 'Emax', type: GLP.LO, lb: 0, ub: 0 });
  const tauMin = b.tmaxBound === false ? -Infinity : bottleneck(p);
  bounds.push(Number.isFinite(tauMin) ? { name: 'Tmax', type: GLP.LO, lb: tauMin, ub: 0 } : { name: 'Tmax', type: GLP.FR, lb: 0, ub: 0 });
  bounds.push({ name: 'Dmax', type: GLP.LO, lb: 0, ub: 0 });

  return {
    name: 'mist-inter-stage',
    objective: { direction: GLP.MIN, name: 'iteration', vars: objective },
    subjectTo: rows,
    bounds,
    binaries,
    options: { tmlim: o.timeLimitSeconds, mipgap: o.relGap, msglev: GLP.MSG_OFF, presol: true },
  };
}

/** The LP relaxation of a model (binaries become continuous in [0, 1]); its optimum bounds the MILP's from below. */
export function relaxMilp(m: MilpModel): MilpModel {
  return {
    ...m,
    name: `${m.name}-relaxation`,
    bounds: [...m.bounds, ...m.binaries.map((name) => ({ name, type: GLP.DB, lb: 0, ub: 1 }))],
    binaries: [],
  };
}

/**
 * Reads a glpk.js result back into a solution of `p`. GLP_OPT → 'optimal'; GLP_FEAS (stopped by the time
 * limit or the gap with an integer solution) → 'feasible' with `gap` (from the relaxation bound); no integer
 * solution → 'pruned' when an incumbent cut was present, else 'infeasible' (also for GLP_UNDEF: the time limit
 * hit before any integer solution — Mist likewise counts anything but optimal as infeasible).
 * The objective is recomputed by objectiveOf from the decoded assignment.
 */
export function decodeMilp(p: InterStageProblem, r: MilpResult): InterStageSolution {
  const hasCut = p.incumbent !== undefined && Number.isFinite(p.incumbent);
  if (r.status !== GLP.OPT && r.status !== GLP.FEAS) {
    return noSolution(hasCut && r.status !== GLP.UNDEF ? 'pruned' : 'infeasible', 'glpk');
  }
  const layers: number[] = [];
  const choice: number[] = [];
  for (let i = 0; i < p.S; i++) {
    let found = false;
    for (let j = 0; j < p.layerChoices.length && !found; j++) {
      if (!((r.vars[xName(i, j)] ?? 0) > 0.5)) continue;
      const opts = p.options[i][j];
      for (let k = 0; k < opts.length; k++) {
        if ((r.vars[zName(i, j, k)] ?? 0) > 0.5) {
          layers.push(p.layerChoices[j]);
          choice.push(k);
          found = true;
          break;
        }
      }
    }
    if (!found) throw new Error(`decodeMilp: no layer count/option selected for stage ${i} in a ${r.status === GLP.OPT ? 'optimal' : 'feasible'} result`);
  }
  const objective = objectiveOf(p, layers, choice);
  if (!Number.isFinite(objective)) throw new Error('decodeMilp: the decoded assignment is not a valid one');
  if (!withinIncumbent(p, objective)) return noSolution('pruned', 'glpk');
  const solution: InterStageSolution = { status: r.status === GLP.OPT ? 'optimal' : 'feasible', objective, layers, choice, solver: 'glpk' };
  if (r.status === GLP.FEAS) {
    const fromBound = r.bound !== undefined && Number.isFinite(r.bound) ? Math.max(0, (objective - r.bound) / Math.max(Math.abs(objective), 1e-12)) : Infinity;
    solution.gap = Math.min(fromBound, r.gapAtMost ?? Infinity);
  }
  return solution;
}
