/** Unit tests of the inter-stage problem: objectiveOf, the exact DP (against brute force), the MILP model. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DpSolver, hasFeasibleSplit, solveDp } from '../../../controller/src/tuner/dp-solver.js';
import { GLP, buildMilp, decodeMilp, relaxMilp, xName, zName } from '../../../controller/src/tuner/milp.js';
import { objectiveOf, pipelineSeconds, pipelineSecondsBestHidden, type InterStageProblem, type PolicyOption } from '../../../controller/src/tuner/solver.js';
import { assertWellFormed, bruteForce, closeRel, mistLayerChoices, prng, randomProblem } from '../../support/inter-stage.js';

const o = (stable: number, delta: number): PolicyOption => ({ stable, delta });
const EXACT = { timeLimitSeconds: 10, relGap: 0 };

const two: InterStageProblem = {
  L: 5,
  S: 2,
  G: 3,
  layerChoices: [2, 3],
  options: [
    [[o(1, 4)], [o(1.5, 0.5), o(1.2, 3)]],
    [[o(2, 1)], [o(2.5, 0)]],
  ],
};

describe('objectiveOf', () => {
  it('is (G−1)·max T + Σ T + max(0, max_i (D_i − Σ_{j<i} T_j))', () => {
    // layers (3, 2), options (1.2, 3) then (2, 1): max T 2, Σ T 3.2, excess max(0, 3 − 0, 1 − 1.2) = 3.
    assert.equal(objectiveOf(two, [3, 2], [1, 0]), 2 * 2 + 3.2 + 3);
    // layers (2, 3): (1, 4) then (2.5, 0): 2·2.5 + 3.5 + 4.
    assert.equal(objectiveOf(two, [2, 3], [0, 0]), 2 * 2.5 + 3.5 + 4);
  });
  it('clamps the delta term at zero', () => {
    const p: InterStageProblem = { L: 2, S: 2, G: 1, layerChoices: [1], options: [[[o(5, 0)]], [[o(1, 2)]]] };
    assert.equal(objectiveOf(p, [1, 1], [0, 0]), 6);
  });
  it('is Infinity for an assignment that is not one', () => {
    assert.equal(objectiveOf(two, [2, 2], [0, 0]), Infinity, 'layers do not sum to L');
    assert.equal(objectiveOf(two, [4, 1], [0, 0]), Infinity, 'not a layer choice');
    assert.equal(objectiveOf(two, [3, 2], [2, 0]), Infinity, 'no such option');
    assert.equal(objectiveOf(two, [3], [0]), Infinity, 'wrong length');
  });
});

describe('split backwards in the objective', () => {
  it('with wgrad W and hidden H: (G−1)·max (T − H) + Σ (T − W + H) + max (W + H) + the delta term over T − W + H', () => {
    const stages: PolicyOption[] = [
      { stable: 3, delta: 0.5, wgrad: 1, hidden: 0.5 },
      { stable: 3.2, delta: 2, wgrad: 0.8 },
      { stable: 2.5, delta: 0 },
    ];
    // periods 2.5, 3.2, 2.5; latencies 2.5, 2.4, 2.5; tails 1.5, 0.8, 0; excess max(0.5, 2 − 2.5, 0 − 4.9) = 0.5
    assert.ok(Math.abs(pipelineSeconds(stages, 8) - (7 * 3.2 + 7.4 + 1.5 + 0.5)) < 1e-12);
    assert.equal(pipelineSeconds([{ stable: 2, delta: 1 }, { stable: 3, delta: 0 }], 4), objectiveOf({ L: 2, S: 2, G: 4, layerChoices: [1], options: [[[o(2, 1)]], [[o(3, 0)]]] }, [1, 1], [0, 0]));
  });

  it('the best hidden amounts are no worse than none or all, and match a fine grid search', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ t: fc.double({ min: 1, max: 3, noNaN: true }), w: fc.double({ min: 0, max: 1, noNaN: true }), x: fc.double({ min: 0, max: 1, noNaN: true }) }), { minLength: 2, maxLength: 4 }),
        fc.integer({ min: 2, max: 32 }),
        (st, G) => {
          const stages = st.map((s) => ({ stable: s.t, delta: 0, wgrad: s.w, hideable: s.w * s.x }));
          const best = pipelineSecondsBestHidden(stages, G);
          const with_ = (f: (i: number) => number) => pipelineSeconds(stages.map((s, i) => ({ ...s, hidden: f(i) })), G);
          assert.ok(best <= with_(() => 0) + 1e-12 && best <= with_((i) => stages[i]!.hideable) + 1e-12);
          // a grid over each stage's hidden amount (11 steps) never beats it
          const steps = 10;
          const idx = new Array<number>(stages.length).fill(0);
          for (;;) {
            assert.ok(best <= with_((i) => (stages[i]!.hideable * idx[i]!) / steps) + 1e-9);
            let k = 0;
            while (k < idx.length && idx[k] === steps) idx[k++] = 0;
            if (k === idx.length) break;
            idx[k]!++;
          }
        },
      ),
      { seed: 3, numRuns: 60 },
    );
  });
});

describe('DpSolver', () => {
  it('equals brute force on 600 seeded random problems (fast-check, fixed seed)', () => {
    const problem = fc.integer({ min: 0, max: 2 ** 31 - 1 }).map((seed) =>
      randomProblem(prng(seed), { maxS: 5, maxLayersPerStage: 3, maxOptions: 4, emptyRate: 0.15, maxG: 10 }),
    );
    fc.assert(
      fc.property(problem, fc.double({ min: 0.5, max: 1.5, noNaN: true }), fc.boolean(), (p, factor, withIncumbent) => {
        const brute = bruteForce(p);
        const q = withIncumbent && brute.objective < Infinity ? { ...p, incumbent: brute.objective * factor } : p;
        const s = solveDp(q);
        assertWellFormed(q, s, 'dp');
        if (brute.objective === Infinity) return s.status === 'infeasible';
        if (q.incumbent !== undefined && q.incumbent < brute.objective * (1 - 1e-9)) return s.status === 'pruned';
        if (q.incumbent !== undefined && q.incumbent <= brute.objective * (1 + 1e-9)) return s.status === 'pruned' || closeRel(s.objective, brute.objective);
        return s.status === 'optimal' && closeRel(s.objective, brute.objective);
      }),
      { seed: 424242, numRuns: 600 },
    );
  });

  it('equals a plain enumeration of every Tmax threshold (no pruning) on mid-size problems', () => {
    const rand = prng(5);
    for (let n = 0; n < 20; n++) {
      const S = 2 + Math.floor(rand() * 7);
      const L = S * (2 + Math.floor(rand() * 4));
      const layerChoices = mistLayerChoices(L, S);
      const options = Array.from({ length: S }, () => layerChoices.map((c) => Array.from({ length: 1 + Math.floor(rand() * 6) }, () => o(c * (0.5 + rand()), 2 * rand()))));
      const p: InterStageProblem = { L, S, G: 1 + Math.floor(rand() * 20), layerChoices, options };
      const s = solveDp(p);
      assertWellFormed(p, s, 'dp');
      assert.equal(s.status, 'optimal');
      assert.ok(closeRel(s.objective, thresholdEnumeration(p)), `problem ${n}`);
    }
  });

  it('solves the largest supported size (S = 64, L = 128, 5 layer choices × 30 options)', () => {
    const rand = prng(64);
    const S = 64;
    const L = 128;
    const layerChoices = mistLayerChoices(L, S);
    const options = Array.from({ length: S }, (_, i) =>
      layerChoices.map((c) => Array.from({ length: 30 }, (_, k) => o(c * (1 + 0.02 * k) + (i === 0 || i === S - 1 ? 0.5 : 0) + 0.05 * rand(), 3 * (1 - k / 30) * rand()))),
    );
    const p: InterStageProblem = { L, S, G: 128, layerChoices, options };
    const s = solveDp(p);
    assertWellFormed(p, s, 'dp');
    assert.equal(s.status, 'optimal');
    // No worse than the even split with each stage's best-stable option.
    const even = Array<number>(S).fill(2);
    const j = layerChoices.indexOf(2);
    const choice = options.map((stage) => stage[j].reduce((b, x, k, a) => (x.stable < a[b].stable ? k : b), 0));
    assert.ok(s.objective <= objectiveOf(p, even, choice));
  });

  it('reports infeasible without a split and throws RangeError on a malformed problem', async () => {
    const p: InterStageProblem = { L: 7, S: 2, G: 2, layerChoices: [2, 3], options: [[[o(1, 0)], [o(1, 0)]], [[o(1, 0)], [o(1, 0)]]] };
    assert.equal(hasFeasibleSplit(p), false);
    assert.equal((await new DpSolver().solve(p, EXACT)).status, 'infeasible');
    assert.throws(() => solveDp({ ...p, G: 0 }), RangeError);
    assert.throws(() => solveDp({ ...p, layerChoices: [3, 2] }), RangeError);
    assert.throws(() => solveDp({ ...p, options: [p.options[0]] }), RangeError);
  });
});

/** min over every distinct stable value τ of (G−1)·τ + f(τ), f by a plain DP (the definition, no bounds). */
function thresholdEnumeration(p: InterStageProblem): number {
  const taus = [...new Set(p.options.flat(2).map((x) => x.stable))].sort((a, b) => a - b);
  let best = Infinity;
  for (const tau of taus) {
    let cur = new Array<number>(p.L + 1).fill(Infinity);
    cur[0] = 0;
    for (let i = 0; i < p.S; i++) {
      const next = new Array<number>(p.L + 1).fill(Infinity);
      for (let l = 0; l <= p.L; l++) {
        if (cur[l] === Infinity) continue;
        p.layerChoices.forEach((c, j) => {
          if (l + c > p.L) return;
          for (const x of p.options[i][j]) if (x.stable <= tau) next[l + c] = Math.min(next[l + c], x.stable + Math.max(cur[l], x.delta));
        });
      }
      cur = next;
    }
    best = Math.min(best, (p.G - 1) * tau + cur[p.L]);
  }
  return best;
}

describe('buildMilp / decodeMilp (mist.md §5)', () => {
  it('builds x, z binaries, the rows of §5 and the objective (G−1)·Tmax + Σ T + Dmax', () => {
    const m = buildMilp(two, { timeLimitSeconds: 7, relGap: 0.01 });
    assert.deepEqual(m.options, { tmlim: 7, mipgap: 0.01, msglev: GLP.MSG_OFF, presol: true });
    assert.equal(m.objective.direction, GLP.MIN);
    assert.deepEqual(m.objective.vars, [{ name: 'Tmax', coef: 2 }, { name: 'T_0', coef: 1 }, { name: 'T_1', coef: 1 }, { name: 'Dmax', coef: 1 }]);
    assert.deepEqual(m.binaries.filter((b) => b.startsWith('x_')).sort(), ['x_0_0', 'x_0_1', 'x_1_0', 'x_1_1']);
    assert.equal(m.binaries.filter((b) => b.startsWith('z_')).length, 5);
    const row = (name: string) => m.subjectTo.find((r) => r.name === name)!;
    assert.deepEqual(row('layers').vars, [{ name: 'x_0_0', coef: 2 }, { name: 'x_0_1', coef: 3 }, { name: 'x_1_0', coef: 2 }, { name: 'x_1_1', coef: 3 }]);
    assert.deepEqual(row('layers').bnds, { type: GLP.FX, lb: 5, ub: 5 });
    assert.deepEqual(row('dmax_1').vars, [{ name: 'Dmax', coef: 1 }, { name: 'D_1', coef: -1 }, { name: 'T_0', coef: 1 }]);
    assert.deepEqual(row('defT_0').vars, [{ name: 'T_0', coef: 1 }, { name: 'z_0_0_0', coef: -1 }, { name: 'z_0_1_0', coef: -1.5 }, { name: 'z_0_1_1', coef: -1.2 }]);
    assert.deepEqual(row('link_0_1').vars, [{ name: 'x_0_1', coef: -1 }, { name: 'z_0_1_0', coef: 1 }, { name: 'z_0_1_1', coef: 1 }]);
    assert.deepEqual(row('link_0_1').bnds, { type: GLP.FX, lb: 0, ub: 0 });
    // Tmax ≥ the bottleneck: the split (3, 2) with stable 1.2 and 2 gives max 2, the least achievable.
    assert.deepEqual(m.bounds.find((b) => b.name === 'Tmax'), { name: 'Tmax', type: GLP.LO, lb: 2, ub: 0 });
    assert.deepEqual(m.bounds.find((b) => b.name === 'Dmax'), { name: 'Dmax', type: GLP.LO, lb: 0, ub: 0 });
    assert.equal(m.subjectTo.some((r) => r.name === 'cut'), false);
    const cut = buildMilp({ ...two, incumbent: 12 }, EXACT).subjectTo.find((r) => r.name === 'cut')!;
    assert.deepEqual(cut.vars, m.objective.vars);
    assert.deepEqual(cut.bnds, { type: GLP.UP, lb: 0, ub: 12 });
    const paper = buildMilp(two, EXACT, { linking: 'per-option', tmaxBound: false });
    assert.deepEqual(paper.subjectTo.find((r) => r.name === 'link_0_1_1')!.vars, [{ name: 'z_0_1_1', coef: 1 }, { name: 'x_0_1', coef: -1 }]);
    assert.deepEqual(paper.subjectTo.find((r) => r.name === 'link_0_1_1')!.bnds, { type: GLP.UP, lb: 0, ub: 0 });
    assert.equal(paper.subjectTo.some((r) => r.name === 'link_0_1'), false);
    assert.equal(paper.bounds.find((b) => b.name === 'Tmax')!.type, GLP.FR);
    const relaxed = relaxMilp(m);
    assert.deepEqual(relaxed.binaries, []);
    assert.ok(relaxed.bounds.some((b) => b.name === 'z_0_1_1' && b.type === GLP.DB && b.lb === 0 && b.ub === 1));
  });

  it('leaves out empty and non-finite options', () => {
    const p: InterStageProblem = { L: 2, S: 1, G: 2, layerChoices: [1, 2], options: [[[], [o(Infinity, 0), o(1, 0)]]] };
    const m = buildMilp(p, EXACT);
    assert.deepEqual(m.binaries, ['x_0_1', 'z_0_1_1']);
  });

  it('decodes statuses: optimal, feasible with a gap, pruned under a cut, infeasible', () => {
    const vars: Record<string, number> = { [xName(0, 1)]: 1, [zName(0, 1, 1)]: 1, [xName(1, 0)]: 1, [zName(1, 0, 0)]: 1 };
    const obj = objectiveOf(two, [3, 2], [1, 0]);
    const opt = decodeMilp(two, { status: GLP.OPT, z: obj, vars });
    assert.deepEqual(opt, { status: 'optimal', objective: obj, layers: [3, 2], choice: [1, 0], solver: 'glpk' });
    const feas = decodeMilp(two, { status: GLP.FEAS, z: obj, vars, bound: obj / 2 });
    assert.equal(feas.status, 'feasible');
    assert.ok(closeRel(feas.gap!, 0.5));
    assert.equal(decodeMilp(two, { status: GLP.FEAS, z: obj, vars, bound: obj / 2, gapAtMost: 0.01 }).gap, 0.01);
    assert.equal(decodeMilp({ ...two, incumbent: 1 }, { status: GLP.NOFEAS, z: 0, vars: {} }).status, 'pruned');
    assert.equal(decodeMilp(two, { status: GLP.NOFEAS, z: 0, vars: {} }).status, 'infeasible');
    assert.equal(decodeMilp(two, { status: GLP.UNDEF, z: 0, vars: {} }).status, 'infeasible');
    assert.equal(decodeMilp({ ...two, incumbent: obj - 1 }, { status: GLP.OPT, z: obj, vars }).status, 'pruned', 'a solution worse than the incumbent');
    assert.throws(() => decodeMilp(two, { status: GLP.OPT, z: 0, vars: {} }), /no layer count/);
  });
});
