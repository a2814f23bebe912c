/**
 * The inter-stage problem of Mist (research/mist.md §5) as pure data, and the interface its solvers share.
 *
 * Given, for every stage i and every allowed layer count, a set of policy options (Pareto points of the
 * intra-stage tuning: a stable per-micro-batch time and a once-per-iteration delta), choose one layer count and
 * one option per stage so that the layer counts sum to L and the iteration time
 *
 *     (G−1)·max_i T_i + Σ_i T_i + max(0, max_i (D_i − Σ_{j<i} T_j))
 *
 * is minimal (mist.md §3.8). Two solvers implement {@link Solver}: `DpSolver` (dp-solver.ts, exact, pure) and
 * `GlpkSolver` (tuner-worker/glpk-solver.ts, the paper's MILP on glpk.js in a worker thread; the model itself is
 * built and decoded by the pure milp.ts). The conformance suite (tests/conformance/solvers) holds them to the
 * same answers.
 */

/** A stage's stable per-micro-batch time and once-per-iteration delta, in seconds. */
export interface PolicyOption {
  stable: number;
  delta: number;
}

export interface InterStageProblem {
  /** Total layers. */
  L: number;
  /** Number of stages (≥ 1). */
  S: number;
  /** Micro-batches per iteration (≥ 1). */
  G: number;
  /** Allowed layer counts for any stage, sorted ascending (e.g. Mist's [round(L/S)−2 .. round(L/S)+2] ∩ [1, L−S+1]). */
  layerChoices: number[];
  /** options[i][j]: the policy choices of stage i holding layerChoices[j] layers; empty = infeasible. */
  options: PolicyOption[][][];
  /** Best objective found so far elsewhere: a solver may return 'pruned' when it proves it cannot beat it. */
  incumbent?: number;
}

export type SolveStatus = 'optimal' | 'feasible' | 'infeasible' | 'pruned';

export interface InterStageSolution {
  status: SolveStatus;
  /** {@link objectiveOf} of `layers`/`choice`; Infinity unless the status is 'optimal' or 'feasible'. */
  objective: number;
  /** Per-stage layer count (sums to L); empty when there is no solution. */
  layers: number[];
  /** Per-stage index into options[i][j] for the stage's layer count layerChoices[j] = layers[i]. */
  choice: number[];
  /** 'glpk' | 'dp'. */
  solver: string;
  /** Relative MIP gap (an upper bound on it) when the status is 'feasible'. */
  gap?: number;
}

export interface SolveOptions {
  timeLimitSeconds: number;
  relGap: number;
}

export interface Solver {
  readonly name: string;
  solve(p: InterStageProblem, o: SolveOptions): Promise<InterStageSolution>;
  close?(): Promise<void>;
}

/**
 * The objective, the single source of truth: (G−1)·max_i T_i + Σ_i T_i + max(0, max_i (D_i − Σ_{j<i} T_j)),
 * T_i / D_i the stable / delta of stage i's chosen option. Infinity when the assignment is not a valid one
 * (wrong lengths, a layer count outside layerChoices, a missing option, or layers not summing to L).
 */
export function objectiveOf(p: InterStageProblem, layers: number[], choice: number[]): number {
  if (layers.length !== p.S || choice.length !== p.S) return Infinity;
  let sum = 0;
  let max = -Infinity;
  let excess = 0;
  let used = 0;
  for (let i = 0; i < p.S; i++) {
    const j = p.layerChoices.indexOf(layers[i]);
    if (j < 0) return Infinity;
    const option = p.options[i]?.[j]?.[choice[i]];
    if (!option) return Infinity;
    used += layers[i];
    excess = Math.max(excess, option.delta - sum);
    sum += option.stable;
    max = Math.max(max, option.stable);
  }
  if (used !== p.L) return Infinity;
  return (p.G - 1) * max + sum + excess;
}
