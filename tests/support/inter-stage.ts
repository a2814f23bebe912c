/** Helpers for the inter-stage solver tests: a seeded PRNG, random problems, a brute-force oracle, invariants. */
import assert from 'node:assert/strict';
import { objectiveOf, type InterStageProblem, type InterStageSolution, type PolicyOption } from '../../controller/src/tuner/solver.js';

/** mulberry32: a small seeded PRNG in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mist's layer choices: [round(L/S)−2 .. round(L/S)+2] ∩ [1, L−S+1]. */
export function mistLayerChoices(L: number, S: number): number[] {
  const mid = Math.round(L / S);
  const out: number[] = [];
  for (let c = Math.max(1, mid - 2); c <= Math.min(mid + 2, L - S + 1); c++) out.push(c);
  return out;
}

export interface RandomProblemSpec {
  maxS: number;
  maxLayersPerStage: number;
  maxOptions: number;
  /** Probability that an options list is empty. */
  emptyRate: number;
  maxG: number;
  /** Probability that an option splits its backward (has a wgrad); default 0. */
  splitRate?: number;
}

/** A random small problem: costs loosely proportional to layers, deltas in a similar range, some empty lists. */
export function randomProblem(rand: () => number, spec: RandomProblemSpec): InterStageProblem {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const S = int(1, spec.maxS);
  const L = S * int(1, spec.maxLayersPerStage) + int(0, S - 1);
  const G = int(1, spec.maxG);
  const layerChoices = mistLayerChoices(L, S);
  const options: PolicyOption[][][] = [];
  for (let i = 0; i < S; i++) {
    const stage: PolicyOption[][] = [];
    for (const c of layerChoices) {
      const list: PolicyOption[] = [];
      if (rand() >= spec.emptyRate) {
        const n = int(1, spec.maxOptions);
        for (let k = 0; k < n; k++) {
          // Quantised times make exact ties (and so equal-objective alternatives) appear now and then.
          const q = rand() < 0.3 ? 0.25 : 1e-6;
          const round = (v: number) => Math.round(v / q) * q;
          const option: PolicyOption = { stable: round(c * (0.5 + rand())), delta: round(rand() * 2 * c * rand()) };
          // a split backward: its weight-gradient time is a share of the stable time, the same for a layer count
          if (spec.splitRate && rand() < spec.splitRate) {
            option.wgrad = round(option.stable * 0.4 * rand());
            // part of the stage's transfers hides behind the weight pass
            if (rand() < 0.5) option.hidden = Math.min(option.wgrad, round(option.stable * 0.2 * rand()));
          }
          list.push(option);
        }
      }
      stage.push(list);
    }
    options.push(stage);
  }
  return { L, S, G, layerChoices, options };
}

/** Exhaustive minimum of objectiveOf (small problems only). */
export function bruteForce(p: InterStageProblem): { objective: number; layers: number[]; choice: number[] } {
  let best = { objective: Infinity, layers: [] as number[], choice: [] as number[] };
  const layers: number[] = [];
  const choice: number[] = [];
  const rec = (i: number, used: number) => {
    if (i === p.S) {
      if (used !== p.L) return;
      const v = objectiveOf(p, layers, choice);
      if (v < best.objective) best = { objective: v, layers: [...layers], choice: [...choice] };
      return;
    }
    for (let j = 0; j < p.layerChoices.length; j++) {
      if (used + p.layerChoices[j] > p.L) continue;
      for (let k = 0; k < p.options[i][j].length; k++) {
        layers[i] = p.layerChoices[j];
        choice[i] = k;
        rec(i + 1, used + p.layerChoices[j]);
      }
    }
    layers.length = i;
    choice.length = i;
  };
  rec(0, 0);
  return best;
}

/** The invariants every solution satisfies, whatever the solver. */
export function assertWellFormed(p: InterStageProblem, s: InterStageSolution, solver: string): void {
  assert.equal(s.solver, solver);
  if (s.status === 'optimal' || s.status === 'feasible') {
    assert.equal(s.layers.length, p.S);
    assert.equal(s.choice.length, p.S);
    assert.equal(s.layers.reduce((a, b) => a + b, 0), p.L, 'layers sum to L');
    for (let i = 0; i < p.S; i++) {
      const j = p.layerChoices.indexOf(s.layers[i]);
      assert.ok(j >= 0, `stage ${i}: ${s.layers[i]} layers is not a layer choice`);
      assert.ok(s.choice[i] >= 0 && s.choice[i] < p.options[i][j].length, `stage ${i}: option ${s.choice[i]} exists`);
    }
    assert.equal(s.objective, objectiveOf(p, s.layers, s.choice), 'objective = objectiveOf(layers, choice)');
    assert.ok(Number.isFinite(s.objective));
  } else {
    assert.equal(s.objective, Infinity);
  }
}

/** |a − b| ≤ rel · max(|a|, |b|, 1e-12). */
export function closeRel(a: number, b: number, rel = 1e-9): boolean {
  if (a === b) return true;
  return Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b), 1e-12);
}
