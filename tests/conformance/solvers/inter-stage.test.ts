/**
 * One suite, every inter-stage solver (DESIGN.md §3; research/mist.md §5): hand cases with known optima.
 * The GLPK solver gets a generous time limit and a zero gap, so its status must be 'optimal' — nothing here
 * depends on the wall clock.
 */
import assert from 'node:assert/strict';
import { DpSolver } from '../../../controller/src/tuner/dp-solver.js';
import { objectiveOf, type InterStageProblem, type PolicyOption, type Solver, type SolveOptions } from '../../../controller/src/tuner/solver.js';
import { GlpkSolver } from '../../../controller/src/tuner-worker/glpk-solver.js';
import { assertWellFormed, closeRel } from '../../support/inter-stage.js';

const EXACT: SolveOptions = { timeLimitSeconds: 120, relGap: 0 };
const o = (stable: number, delta: number): PolicyOption => ({ stable, delta });

interface Case {
  name: string;
  problem: InterStageProblem;
  objective: number;
  layers?: number[];
  choice?: number[];
}

const single: InterStageProblem = { L: 4, S: 1, G: 4, layerChoices: [4], options: [[[o(1, 0.5), o(0.8, 2)]]] };
// Stage 1's delta hides behind stage 0's stable time; the same option on stage 0 is exposed.
const deltaHidden: InterStageProblem = { L: 4, S: 2, G: 2, layerChoices: [2], options: [[[o(1, 0)]], [[o(1, 0.9), o(1.1, 0)]]] };
const deltaExposed: InterStageProblem = { L: 4, S: 2, G: 2, layerChoices: [2], options: [[[o(1, 0.9), o(1.1, 0)]], [[o(1, 0)]]] };
// The last stage carries a head (+1.5 s): the uneven split (4, 2) beats the even one (3, 3).
const uneven: InterStageProblem = {
  L: 6,
  S: 2,
  G: 4,
  layerChoices: [2, 3, 4],
  options: [
    [[o(2, 0)], [o(3, 0)], [o(4, 0)]],
    [[o(3.5, 0)], [o(4.5, 0)], [o(5.5, 0)]],
  ],
};
// Three stages, unsorted and dominated options, a non-finite option (ignored), delta and Tmax both in play.
const three: InterStageProblem = {
  L: 9,
  S: 3,
  G: 3,
  layerChoices: [2, 3, 4],
  options: [
    [[o(2.2, 0.5), o(2.0, 3)], [o(3.5, 0.2), o(3.1, 2.5), o(3.6, 0.3)], [o(Infinity, 0), o(4.4, 0.1)]],
    [[o(2.0, 1), o(1.9, 0.4)], [o(3.0, 1.5), o(2.9, 4)], [o(4.2, 0.5)]],
    [[], [o(3.3, 2.0), o(3.4, 0.1)], [o(4.5, 0.1), o(4.3, 1.0)]],
  ],
};

function bruteOptimum(p: InterStageProblem): number {
  let best = Infinity;
  const rec = (i: number, used: number, layers: number[], choice: number[]) => {
    if (i === p.S) {
      if (used === p.L) best = Math.min(best, objectiveOf(p, layers, choice));
      return;
    }
    p.layerChoices.forEach((c, j) => p.options[i][j].forEach((_, k) => rec(i + 1, used + c, [...layers, c], [...choice, k])));
  };
  rec(0, 0, [], []);
  return best;
}

const cases: Case[] = [
  { name: 'a single stage: (G−1)·T + T + D, the better of two options', problem: single, objective: 3 + 1 + 0.5, layers: [4], choice: [0] },
  { name: 'two stages: a later stage hides its delta behind the earlier stable time', problem: deltaHidden, objective: 1 + 2 + 0, layers: [2, 2], choice: [0, 0] },
  { name: 'two stages: the first stage cannot hide its delta', problem: deltaExposed, objective: 1.1 + 2.1 + 0, layers: [2, 2], choice: [1, 0] },
  { name: 'an uneven split beats the even one', problem: uneven, objective: 3 * 4 + 7.5, layers: [4, 2], choice: [0, 0] },
  { name: 'G = 1: no Tmax term', problem: { ...uneven, G: 1 }, objective: 7.5 },
  { name: 'three stages with dominated, unsorted and non-finite options', problem: three, objective: bruteOptimum(three) },
];

const infeasible: Array<{ name: string; problem: InterStageProblem }> = [
  { name: 'a stage with no option at any layer count', problem: { ...uneven, options: [uneven.options[0], [[], [], []]] } },
  { name: 'no split of the layers sums to L', problem: { L: 5, S: 2, G: 2, layerChoices: [2], options: [[[o(1, 0)]], [[o(1, 0)]]] } },
  {
    name: 'the only splits that sum to L need an empty option list',
    problem: { L: 5, S: 2, G: 2, layerChoices: [2, 3], options: [[[o(1, 0)], []], [[o(1, 0)], []]] },
  },
  { name: 'only non-finite options', problem: { L: 2, S: 1, G: 2, layerChoices: [2], options: [[[o(NaN, 0), o(1, Infinity)]]] } },
];

const factories: Array<{ name: string; solver: string; make: () => Solver }> = [
  { name: 'dp', solver: 'dp', make: () => new DpSolver() },
  { name: 'glpk', solver: 'glpk', make: () => new GlpkSolver() },
  { name: "glpk with the paper's z ≤ x rows and no Tmax bound", solver: 'glpk', make: () => new GlpkSolver({ linking: 'per-option', tmaxBound: false }) },
];

for (const f of factories) {
  describe(`inter-stage solver conformance: ${f.name}`, () => {
    let solver: Solver;
    before(() => {
      solver = f.make();
    });
    after(async () => {
      await solver.close?.();
    });

    it('reports its name', () => assert.equal(solver.name, f.solver));

    for (const c of cases) {
      it(`finds the optimum: ${c.name}`, async () => {
        const s = await solver.solve(c.problem, EXACT);
        assertWellFormed(c.problem, s, f.solver);
        assert.equal(s.status, 'optimal');
        assert.ok(closeRel(s.objective, c.objective), `objective ${s.objective}, expected ${c.objective}`);
        if (c.layers) assert.deepEqual(s.layers, c.layers);
        if (c.choice) assert.deepEqual(s.choice, c.choice);
      });
    }

    for (const c of infeasible) {
      it(`reports infeasible: ${c.name}`, async () => {
        const s = await solver.solve(c.problem, EXACT);
        assertWellFormed(c.problem, s, f.solver);
        assert.equal(s.status, 'infeasible');
        assert.deepEqual(s.layers, []);
      });
    }

    describe('incumbent', () => {
      const opt = 3 * 4 + 7.5;
      it('an incumbent below the optimum is pruned', async () => {
        const p = { ...uneven, incumbent: opt - 0.5 };
        const s = await solver.solve(p, EXACT);
        assertWellFormed(p, s, f.solver);
        assert.equal(s.status, 'pruned');
      });
      it('an incumbent above the optimum leaves the optimum', async () => {
        const p = { ...uneven, incumbent: opt + 1 };
        const s = await solver.solve(p, EXACT);
        assertWellFormed(p, s, f.solver);
        assert.equal(s.status, 'optimal');
        assert.ok(closeRel(s.objective, opt));
      });
      it('an incumbent equal to the optimum: pruned, or a solution no worse', async () => {
        const p = { ...uneven, incumbent: opt };
        const s = await solver.solve(p, EXACT);
        assertWellFormed(p, s, f.solver);
        if (s.status !== 'pruned') {
          assert.equal(s.status, 'optimal');
          assert.ok(s.objective <= opt * (1 + 1e-9));
        }
      });
      it('an infeasible problem stays infeasible or pruned under an incumbent', async () => {
        const p = { ...infeasible[0].problem, incumbent: 100 };
        const s = await solver.solve(p, EXACT);
        assert.ok(s.status === 'infeasible' || s.status === 'pruned');
      });
    });

    it('rejects a malformed problem', async () => {
      await assert.rejects(solver.solve({ ...uneven, S: 3 }, EXACT), RangeError);
    });
  });
}
