/**
 * The inter-stage problem of Mist (research/mist.md §5) as pure data, and the interface its solvers share.
 *
 * Given, for every stage i and every allowed layer count, a set of policy options (Pareto points of the
 * intra-stage tuning: a stable per-micro-batch time and a once-per-iteration delta), choose one layer count and
 * one option per stage so that the layer counts sum to L and the iteration time
 *
 *     (G−1)·max_i P_i + Σ_i U_i + max_i E_i + max(0, max_i (D_i − Σ_{j<i} U_j))
 *
 *     P_i = T_i − H_i (period)    U_i = T_i − W_i + H_i (latency)    E_i = W_i + H_i (tail)
 *
 * is minimal. T_i / D_i are the stable / delta times of stage i's option; with W = H = 0 this is mist.md §3.8's
 * 1F1B time (G−1)·max T + Σ T + max(0, max_i (D_i − Σ_{j<i} T_j)). W_i (`wgrad`) is the weight-gradient time a
 * stage with a split backward computes after sending its input gradient upstream, H_i (`hidden`) the part of the
 * stage's pipeline transfers (charged in T_i) that runs during that weight pass: the weight gradients leave the
 * pipeline's drain and the dependency loop of 1F1B, so transfers of that loop can hide behind them. The form is
 * an upper bound on a discrete-event simulation of 1F1B with split backwards and transfers, exact for uniform
 * stages (tests/unit/tuner/cost.test.ts). Two solvers implement {@link Solver}: `DpSolver` (dp-solver.ts, exact, pure) and
 * `GlpkSolver` (tuner-worker/glpk-solver.ts, the paper's MILP on glpk.js in a worker thread; the model itself is
 * built and decoded by the pure milp.ts). The conformance suite (tests/conformance/solvers) holds them to the
 * same answers.
 */

/** A stage's stable per-micro-batch time and once-per-iteration delta, in seconds. */
export interface PolicyOption {
  stable: number;
  delta: number;
  /** Weight-gradient seconds of the stable time that a split backward computes after the send (absent: 0, no split). */
  wgrad?: number;
  /** Transfer seconds of the stable time that run during the weight pass (≤ wgrad; absent: 0). */
  hidden?: number;
}

/** The option's period P = T − H, latency U = T − W + H and tail E = W + H (see the file comment). */
export function periodOf(o: PolicyOption): number {
  return o.stable - (o.hidden ?? 0);
}
export function latencyOf(o: PolicyOption): number {
  return o.stable - (o.wgrad ?? 0) + (o.hidden ?? 0);
}
export function tailOf(o: PolicyOption): number {
  return (o.wgrad ?? 0) + (o.hidden ?? 0);
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
 * The objective, the single source of truth: (G−1)·max_i P_i + Σ_i U_i + max_i E_i + max(0, max_i (D_i − Σ_{j<i} U_j))
 * over stage i's chosen option (see the file comment). Infinity when the assignment is not a valid one
 * (wrong lengths, a layer count outside layerChoices, a missing option, or layers not summing to L).
 */
export function objectiveOf(p: InterStageProblem, layers: number[], choice: number[]): number {
  if (layers.length !== p.S || choice.length !== p.S) return Infinity;
  const chosen: PolicyOption[] = [];
  let used = 0;
  for (let i = 0; i < p.S; i++) {
    const j = p.layerChoices.indexOf(layers[i]);
    if (j < 0) return Infinity;
    const option = p.options[i]?.[j]?.[choice[i]];
    if (!option) return Infinity;
    used += layers[i];
    chosen.push(option);
  }
  if (used !== p.L) return Infinity;
  return pipelineSeconds(chosen, p.G);
}

/**
 * The iteration time of a pipeline from its stages' options (see the file comment); without split backwards it is
 * mist.md §3.8's Σ T + (G − 1)·max T + max(0, max_i (D_i − Σ_{j<i} T_j)).
 */
export function pipelineSeconds(stages: readonly PolicyOption[], G: number): number {
  let sum = 0;
  let max = -Infinity;
  let tail = 0;
  let excess = 0;
  for (const o of stages) {
    excess = Math.max(excess, o.delta - sum);
    sum += latencyOf(o);
    max = Math.max(max, periodOf(o));
    tail = Math.max(tail, tailOf(o));
  }
  return (G - 1) * max + sum + tail + excess;
}

/**
 * The least {@link pipelineSeconds} over the hidden transfer seconds H_i ∈ [0, hideable_i] of each stage (every
 * such H is a valid bound; the objective is convex in H). For a target period P the least H reaching it is
 * H_i = clamp(T_i − P, 0, hideable_i), and more H only adds to the latency and tail terms, so the optimum is at a
 * target P among the breakpoints T_i and T_i − hideable_i.
 */
export function pipelineSecondsBestHidden(stages: ReadonlyArray<PolicyOption & { hideable: number }>, G: number): number {
  const at = (P: number): number => pipelineSeconds(stages.map((o) => ({ ...o, hidden: Math.min(o.hideable, Math.max(0, o.stable - P)) })), G);
  let best = at(Infinity);
  for (const o of stages) for (const P of [o.stable, o.stable - o.hideable]) best = Math.min(best, at(P));
  return best;
}
