import assert from 'node:assert/strict';
import fc from 'fast-check';
import { levenbergMarquardt, solveLinear } from '../../../controller/src/calibration/solver.js';
import { checkSource } from '../../support/architecture.js';

describe('calibration/solver: small dense linear solve', () => {
  it('solves a 3×3 system exactly', () => {
    const x = solveLinear([[4, 1, 0], [1, 3, 1], [0, 1, 2]], [6, 10, 8]);
    // [1, 2, 3]: 4+2 = 6, 1+6+3 = 10, 2+6 = 8
    [1, 2, 3].forEach((v, i) => assert.ok(Math.abs(x[i]! - v) < 1e-12, `x[${i}] = ${x[i]}`));
  });

  it('needs pivoting: a zero leading entry', () => {
    const x = solveLinear([[0, 1], [1, 0]], [2, 3]);
    assert.deepEqual([...x], [3, 2]);
  });

  it('property: recovers x from (MᵀM + I)·x for random M and x', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }).chain((n) =>
          fc.tuple(
            fc.array(fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: n, maxLength: n }), { minLength: n, maxLength: n }),
            fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: n, maxLength: n }),
          ),
        ),
        ([M, x]) => {
          const n = x.length;
          const A = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => M.reduce((s, row) => s + row[i]! * row[j]!, 0) + (i === j ? 1 : 0)));
          const b = A.map((row) => row.reduce((s, v, j) => s + v * x[j]!, 0));
          const got = solveLinear(A, b);
          x.forEach((v, i) => assert.ok(Math.abs(got[i]! - v) <= 1e-6 * (1 + Math.abs(v)), `x[${i}]: ${got[i]} vs ${v}`));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('calibration/solver: bounded Levenberg–Marquardt', () => {
  const ts = [0, 0.5, 1, 1.5, 2, 3, 4];
  const model = (a: number, k: number) => ts.map((t) => a * Math.exp(-k * t));

  it('fits y = a·exp(−k t) from exact data (a = 2.5, k = 0.7) starting far away', () => {
    const y = model(2.5, 0.7);
    const res = levenbergMarquardt((x) => Float64Array.from(model(x[0]!, x[1]!).map((v, i) => v - y[i]!)), [1, 0.1], [0, 0], [10, 10]);
    assert.ok(Math.abs(res.x[0]! - 2.5) < 1e-6, `a = ${res.x[0]}`);
    assert.ok(Math.abs(res.x[1]! - 0.7) < 1e-6, `k = ${res.x[1]}`);
    assert.ok(res.cost < 1e-12);
  });

  it('stays inside the box: an optimum outside it ends on the bound', () => {
    const y = model(2.5, 0.7);
    const res = levenbergMarquardt((x) => Float64Array.from(model(x[0]!, x[1]!).map((v, i) => v - y[i]!)), [1, 0.1], [0, 0], [2, 10]);
    assert.equal(res.x[0], 2);
    assert.ok(res.x[1]! >= 0 && res.x[1]! <= 10);
  });

  it('is deterministic: the same inputs give bit-identical results', () => {
    const y = model(1.3, 0.2).map((v, i) => v * (1 + 0.01 * Math.sin(i)));
    const f = (x: Float64Array) => Float64Array.from(model(x[0]!, x[1]!).map((v, i) => v - y[i]!));
    const a = levenbergMarquardt(f, [1, 1], [0, 0], [5, 5]);
    const b = levenbergMarquardt(f, [1, 1], [0, 0], [5, 5]);
    assert.deepEqual([...a.x], [...b.x]);
    assert.equal(a.cost, b.cost);
  });

  it('property: recovers random (a, k) from exact data', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.2, max: 5, noNaN: true }), fc.double({ min: 0.05, max: 2, noNaN: true }), (a, k) => {
        const y = model(a, k);
        const res = levenbergMarquardt((x) => Float64Array.from(model(x[0]!, x[1]!).map((v, i) => v - y[i]!)), [1, 0.5], [0, 0], [10, 10]);
        assert.ok(Math.abs(res.x[0]! - a) < 1e-4 * a, `a ${res.x[0]} vs ${a}`);
        assert.ok(Math.abs(res.x[1]! - k) < 1e-4 * k + 1e-6, `k ${res.x[1]} vs ${k}`);
      }),
      { numRuns: 100 },
    );
  });
});

describe('calibration/ is a pure module (tests/support/architecture.ts)', () => {
  const cases: Array<{ name: string; text: string; rule: string | null }> = [
    { name: 'reading the clock', text: 'export const t = Date.now();', rule: 'pure-modules' },
    { name: 'randomness', text: 'export const r = Math.random();', rule: 'pure-modules' },
    { name: 'a Node built-in', text: "import { readFileSync } from 'node:fs';", rule: 'pure-modules' },
    { name: 'an adapter (plans store)', text: "import { x } from '../plans/store.js';", rule: 'pure-modules' },
    { name: 'tuner, domain, its own files and protocol errors', text: "import { predictPlan } from '../tuner/predict.js';\nimport type { Plan } from '../domain/plan.js';\nimport { solveLinear } from './solver.js';\nimport { badInput } from '../../../protocol/src/errors.js';", rule: null },
  ];
  for (const c of cases) {
    it(`${c.rule ? 'rejects' : 'allows'} ${c.name}`, () => {
      const rules = checkSource('controller/src/calibration/x.ts', c.text).map((v) => v.rule);
      if (c.rule) assert.ok(rules.includes(c.rule), `expected ${c.rule}, got ${JSON.stringify(rules)}`);
      else assert.deepEqual(rules, []);
    });
  }
});
