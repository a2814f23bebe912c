/**
 * Differential test: DpSolver and GlpkSolver find the same optimal objective on seeded random cost tables
 * (and both match a brute-force enumeration), with and without incumbents.
 */
import assert from 'node:assert/strict';
import { DpSolver } from '../../../controller/src/tuner/dp-solver.js';
import type { InterStageProblem } from '../../../controller/src/tuner/solver.js';
import { GlpkSolver } from '../../../controller/src/tuner-worker/glpk-solver.js';
import { assertWellFormed, bruteForce, closeRel, mistLayerChoices, prng, randomProblem, type RandomProblemSpec } from '../../support/inter-stage.js';

const EXACT = { timeLimitSeconds: 120, relGap: 0 };

describe('inter-stage solvers agree (DP vs GLPK MILP, seeded random problems)', () => {
  const dp = new DpSolver();
  const glpk = new GlpkSolver();
  after(async () => {
    await glpk.close();
  });

  /** Solves n seeded random problems with both solvers and brute force, asserting they agree. */
  async function agreeOnRandom(seed: number, n: number, spec: RandomProblemSpec): Promise<{ feasible: number; split: number }> {
    const rand = prng(seed);
    let feasible = 0;
    let split = 0;
    for (let k = 0; k < n; k++) {
      const p = randomProblem(rand, spec);
      const brute = bruteForce(p);
      const a = await dp.solve(p, EXACT);
      const b = await glpk.solve(p, EXACT);
      const what = `problem ${k}: ${JSON.stringify(p)}`;
      assertWellFormed(p, a, 'dp');
      assertWellFormed(p, b, 'glpk');
      if (brute.objective === Infinity) {
        assert.equal(a.status, 'infeasible', what);
        assert.equal(b.status, 'infeasible', what);
        continue;
      }
      feasible++;
      if (brute.choice.some((q, i) => (p.options[i]![p.layerChoices.indexOf(brute.layers[i]!)]![q]!.wgrad ?? 0) > 0)) split++;
      assert.equal(a.status, 'optimal', what);
      assert.equal(b.status, 'optimal', what);
      assert.ok(closeRel(a.objective, brute.objective), `dp ${a.objective} vs brute ${brute.objective}: ${what}`);
      assert.ok(closeRel(b.objective, a.objective), `glpk ${b.objective} vs dp ${a.objective}: ${what}`);
    }
    return { feasible, split };
  }

  it('the same optimal objective on 240 small random problems, equal to brute force', async () => {
    const { feasible } = await agreeOnRandom(20250311, 240, { maxS: 4, maxLayersPerStage: 4, maxOptions: 4, emptyRate: 0.15, maxG: 8 });
    assert.ok(feasible >= 150, `only ${feasible} feasible problems: the generator drifted`);
  });

  it('the same optimum as brute force with split backwards (options with wgrad and hidden transfers) on 160 random problems', async () => {
    const { feasible, split } = await agreeOnRandom(424242, 160, { maxS: 4, maxLayersPerStage: 4, maxOptions: 4, emptyRate: 0.1, maxG: 8, splitRate: 0.5 });
    assert.ok(feasible >= 100 && split >= 50, `${feasible} feasible, ${split} with a split optimum: the generator drifted`);
  });

  it('the same pruning decision under incumbents 10% below and above the optimum', async () => {
    const rand = prng(7);
    let checked = 0;
    while (checked < 40) {
      const p = randomProblem(rand, { maxS: 4, maxLayersPerStage: 3, maxOptions: 4, emptyRate: 0.1, maxG: 8 });
      const opt = bruteForce(p).objective;
      if (opt === Infinity || opt <= 0) continue;
      checked++;
      for (const [incumbent, expected] of [[opt * 0.9, 'pruned'], [opt * 1.1, 'optimal']] as const) {
        const q: InterStageProblem = { ...p, incumbent };
        for (const s of [await dp.solve(q, EXACT), await glpk.solve(q, EXACT)]) {
          assertWellFormed(q, s, s.solver);
          assert.equal(s.status, expected, `${s.solver}, incumbent ${incumbent}, optimum ${opt}`);
          if (expected === 'optimal') assert.ok(closeRel(s.objective, opt));
        }
      }
    }
  });

  it('the same optimum on mid-size problems (S = 6, L = 24, 5 layer choices, 8 options)', async () => {
    const rand = prng(99);
    for (let n = 0; n < 6; n++) {
      const S = 6;
      const L = 24;
      const layerChoices = mistLayerChoices(L, S);
      const options = Array.from({ length: S }, (_, i) =>
        layerChoices.map((c) =>
          Array.from({ length: 8 }, () => ({ stable: c * (0.8 + 0.4 * rand()) + (i === S - 1 ? 1 : 0), delta: 3 * rand() })),
        ),
      );
      const p: InterStageProblem = { L, S, G: 1 + Math.floor(rand() * 12), layerChoices, options };
      const a = await dp.solve(p, EXACT);
      const b = await glpk.solve(p, EXACT);
      assertWellFormed(p, a, 'dp');
      assertWellFormed(p, b, 'glpk');
      assert.equal(a.status, 'optimal');
      assert.equal(b.status, 'optimal');
      assert.ok(closeRel(a.objective, b.objective), `dp ${a.objective} vs glpk ${b.objective}`);
    }
  });
});
