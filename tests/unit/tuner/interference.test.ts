import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MistError } from '../../../protocol/src/errors.js';
import { CATALOG, GPU_TYPES } from '../../../controller/src/tuner/hardware.js';
import {
  C,
  D,
  G,
  H,
  INTERFERENCE_SETS,
  ZERO_SECONDS,
  additiveInterference,
  interferenceFactor,
  isSupersetMonotone,
  noWorseThanSerial,
  overlapColumn,
  overlapSeconds,
} from '../../../controller/src/tuner/interference.js';

const L4 = CATALOG['l4-24gb'].interference;
const A100 = CATALOG['a100-40gb'].interference;
const ONES = Array<number>(28).fill(1);

function close(actual: number, expected: number, rel = 1e-12): void {
  assert.ok(Math.abs(actual - expected) <= rel * Math.max(1, Math.abs(expected)), `${actual} ≉ ${expected}`);
}

const mask = (...s: number[]) => s.reduce((m, i) => m | (1 << i), 0);

/** Any 28 factors in [1, hi]. */
const factorsArb = (hi: number) => fc.array(fc.double({ min: 1, max: hi, noNaN: true }), { minLength: 28, maxLength: 28 });
/** Factors where every set does at least serial work: per set, rates 1/f with Σ rates ≥ 1 (scaled up when short). */
const serialSafeFactorsArb = fc.array(fc.double({ min: 0.02, max: 1, noNaN: true }), { minLength: 28, maxLength: 28 }).map((u) => {
  const f = Array<number>(28).fill(1);
  for (const s of INTERFERENCE_SETS) {
    const rates = s.streams.map((_, k) => u[s.offset + k]);
    const sum = rates.reduce((a, b) => a + b, 0);
    rates.forEach((r, k) => (f[s.offset + k] = 1 / (sum < 1 ? Math.min(1, (r / sum) * (1 + 1e-9)) : r)));
  }
  return f;
});
/** Superset-monotone factors, built additively from random two-way factors. */
const monotoneFactorsArb = fc.array(fc.double({ min: 1, max: 5, noNaN: true }), { minLength: 12, maxLength: 12 }).map(additiveInterference);
/** A duration: often exactly 0, sometimes below the 1e-8 threshold, otherwise up to 100 s. */
const durationArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.double({ min: 0, max: 1e-8, noNaN: true }) },
  { weight: 6, arbitrary: fc.double({ min: 0, max: 100, noNaN: true }) },
);
const inputsArb = fc.tuple(durationArb, durationArb, durationArb, durationArb);

/** Σ_i x_i · (the largest factor stream i has in any set): the general upper bound. */
function factorBound(f: ArrayLike<number>, x: number[]): number {
  return x.reduce((acc, xi, i) => {
    let m = 1;
    for (const s of INTERFERENCE_SETS) if (s.mask & (1 << i)) m = Math.max(m, interferenceFactor(f, s.mask, i));
    return acc + xi * m;
  }, 0);
}

describe('tuner/interference layout', () => {
  it('reads factors in Mist\'s order: 4-way, then 3-way, then 2-way sets, streams C, G, H, D inside a set', () => {
    assert.equal(interferenceFactor(L4, mask(C, G, H, D), C), 18.9356);
    assert.equal(interferenceFactor(L4, mask(C, G, H, D), D), 1.6046);
    assert.equal(interferenceFactor(L4, mask(C, G, H), H), 2.393);
    assert.equal(interferenceFactor(L4, mask(C, G, D), D), 2.6637);
    assert.equal(interferenceFactor(L4, mask(C, H, D), C), 1.9381);
    assert.equal(interferenceFactor(L4, mask(G, H, D), H), 50.0);
    assert.equal(interferenceFactor(L4, mask(C, G), C), 1.1676);
    assert.equal(interferenceFactor(L4, mask(G, H), H), 2.1383);
    assert.equal(interferenceFactor(L4, mask(H, D), D), 1.0974);
    assert.equal(interferenceFactor(L4, mask(H), H), 1, 'a stream alone runs at full speed');
    assert.equal(INTERFERENCE_SETS.length, 11);
    assert.equal(INTERFERENCE_SETS.reduce((n, s) => n + s.streams.length, 0), 28);
  });

  it('refuses a factor vector of the wrong length', () => {
    const bad = (e: unknown) => e instanceof MistError && e.code === 'BAD_INPUT';
    assert.throws(() => overlapSeconds([1, 2, 3], 1, 1, 0, 0), bad);
    assert.throws(() => overlapColumn(ONES, new Float64Array(2), new Float64Array(2), new Float64Array(1), new Float64Array(2)), bad);
    assert.throws(() => additiveInterference([1, 2]), bad);
  });
});

describe('tuner/interference race', () => {
  const cases: Array<{ name: string; got: () => number; want: number }> = [
    { name: 'nothing runs: 0', got: () => overlapSeconds(L4, 0, 0, 0, 0), want: 0 },
    { name: 'compute alone runs at full speed', got: () => overlapSeconds(L4, 3, 0, 0, 0), want: 3 },
    { name: 'a D2H copy alone runs at full speed', got: () => overlapSeconds(L4, 0, 0, 0, 2.5), want: 2.5 },
    {
      // {C,G} on L4: factors (1.1676, 1.0). G finishes at o = 1.0; C has 1 − 1/1.1676 left, alone.
      name: 'L4 compute 1 s with an all-gather 1 s: G first, then the rest of C alone',
      got: () => overlapSeconds(L4, 1, 1, 0, 0),
      want: 1 + (1 - 1 / 1.1676),
    },
    {
      // {C,H} on L4: (1.0152, 1.0005): C·f = 2.0304 < H·f = 3.0015 → o = 2.0304; H left 3 − 2.0304/1.0005.
      name: 'L4 compute 2 s with a 3 s prefetch: C first, then the copy alone',
      got: () => overlapSeconds(L4, 2, 0, 3, 0),
      want: 2 * 1.0152 + (3 - (2 * 1.0152) / 1.0005),
    },
    {
      // A100 all four: scaled (1.307, 2·2.6325, 3·2.4097, 4·2.5898) → C first at 1.307.
      // Left: G 2 − 1.307/2.6325, H 3 − 1.307/2.4097, D 4 − 1.307/2.5898; then the {G,H,D} race and so on.
      name: 'A100 all four streams: a three-phase race computed by hand',
      got: () => overlapSeconds(A100, 1, 2, 3, 4),
      want: (() => {
        let t = 1.307;
        let g = 2 - 1.307 / 2.6325;
        let h = 3 - 1.307 / 2.4097;
        let d = 4 - 1.307 / 2.5898;
        // {G,H,D}: (5.4986, 1.2915, 1.7303)
        const o2 = Math.min(g * 5.4986, h * 1.2915, d * 1.7303);
        t += o2;
        g = (g * 5.4986 - o2) / 5.4986;
        h = (h * 1.2915 - o2) / 1.2915;
        d = (d * 1.7303 - o2) / 1.7303;
        assert.ok(h < 1e-12 && g > 0 && d > 0, 'H finishes second');
        // {G,D}: (1.1336, 1.2723)
        const o3 = Math.min(g * 1.1336, d * 1.2723);
        t += o3;
        g = (g * 1.1336 - o3) / 1.1336;
        d = (d * 1.2723 - o3) / 1.2723;
        return t + g + d;
      })(),
    },
    { name: 'all factors 1: perfect overlap, the longest stream', got: () => overlapSeconds(ONES, 1, 7, 3, 2), want: 7 },
    { name: 'huge factors exceed the serial sum: {C,G} at 50× each, 1 s + 1 s → 50 s', got: () => overlapSeconds(Array<number>(28).fill(50), 1, 1, 0, 0), want: 50 },
    { name: 'a duration under 1e-8 s is not raced but added at the end', got: () => overlapSeconds(L4, 1, 5e-9, 0, 0), want: 1 + 5e-9 },
  ];
  for (const c of cases) it(c.name, () => close(c.got(), c.want));

  it("Mist's fitted A100 factors are not monotone: adding compute can shorten the phase", () => {
    const without = overlapSeconds(A100, 0, 0, 4.4, 8.3);
    const withCompute = overlapSeconds(A100, 4, 0, 4.4, 8.3);
    assert.ok(withCompute < without, `${withCompute} < ${without}`);
    assert.equal(isSupersetMonotone(A100), false);
  });

  it('property: ≥ max(inputs) for any factors ≥ 1', () => {
    fc.assert(
      fc.property(factorsArb(50), inputsArb, (f, x) => {
        const t = overlapSeconds(f, ...x);
        return t >= Math.max(...x) * (1 - 1e-12);
      }),
    );
  });

  it('property: ≤ Σ x_i · (stream i\'s largest factor) for any factors ≥ 1', () => {
    fc.assert(
      fc.property(factorsArb(50), inputsArb, (f, x) => overlapSeconds(f, ...x) <= factorBound(f, x) * (1 + 1e-12) + 1e-12),
    );
  });

  it('property: ≤ sum(inputs) when every set does at least serial work (Σ 1/f ≥ 1)', () => {
    fc.assert(
      fc.property(serialSafeFactorsArb, inputsArb, (f, x) => {
        assert.ok(noWorseThanSerial(f));
        return overlapSeconds(f, ...x) <= x.reduce((a, b) => a + b, 0) * (1 + 1e-12) + 1e-12;
      }),
    );
    // factors ≤ 2 always satisfy Σ 1/f ≥ 1
    fc.assert(fc.property(factorsArb(2), inputsArb, (f, x) => noWorseThanSerial(f) && overlapSeconds(f, ...x) <= x.reduce((a, b) => a + b, 0) * (1 + 1e-12) + 1e-12));
  });

  it('property: equals the single input when only one is non-zero', () => {
    fc.assert(
      fc.property(factorsArb(50), fc.integer({ min: 0, max: 3 }), fc.double({ min: 0, max: 1e4, noNaN: true }), (f, i, v) => {
        const x = [0, 0, 0, 0];
        x[i] = v;
        return overlapSeconds(f, x[0], x[1], x[2], x[3]) === v;
      }),
    );
  });

  it('property: equals max(inputs) when every factor is 1', () => {
    fc.assert(fc.property(inputsArb, (x) => Math.abs(overlapSeconds(ONES, ...x) - Math.max(...x)) <= 1e-12 * Math.max(1, ...x) + 4e-8));
  });

  it('property: monotone non-decreasing in each input when the factors are superset-monotone', () => {
    fc.assert(
      fc.property(monotoneFactorsArb, inputsArb, fc.integer({ min: 0, max: 3 }), fc.double({ min: 0, max: 50, noNaN: true }), (f, x, i, extra) => {
        assert.ok(isSupersetMonotone(f, 1e-12));
        const y: [number, number, number, number] = [...x];
        y[i] += extra;
        const a = overlapSeconds(f, ...x);
        const b = overlapSeconds(f, ...y);
        return b >= a - 1e-9 * Math.max(1, a);
      }),
    );
  });

  it('property: monotone in each input on the catalog types with superset-monotone factors', () => {
    const types = GPU_TYPES.filter((t) => isSupersetMonotone(CATALOG[t].interference));
    assert.deepEqual(types, ['h100-80gb', 'h200-141gb', 'cpu']);
    fc.assert(
      fc.property(fc.constantFrom(...types), inputsArb, fc.integer({ min: 0, max: 3 }), fc.double({ min: 0, max: 50, noNaN: true }), (t, x, i, extra) => {
        const y: [number, number, number, number] = [...x];
        y[i] += extra;
        const f = CATALOG[t].interference;
        return overlapSeconds(f, ...y) >= overlapSeconds(f, ...x) - 1e-9 * Math.max(1, overlapSeconds(f, ...x));
      }),
    );
  });

  it('property: the column form agrees exactly with the scalar form', () => {
    fc.assert(
      fc.property(fc.oneof(factorsArb(50), fc.constantFrom(L4, A100)), fc.array(inputsArb, { maxLength: 50 }), (f, rows) => {
        const col = (k: number) => Float64Array.from(rows.map((r) => r[k]));
        const out = overlapColumn(f, col(0), col(1), col(2), col(3));
        assert.equal(out.length, rows.length);
        rows.forEach((r, i) => assert.equal(out[i], overlapSeconds(f, ...r)));
      }),
    );
  });

  it('the column form may write into one of its inputs', () => {
    const cs = Float64Array.from([1, 0, 2]);
    const gs = Float64Array.from([1, 0, 0]);
    const hs = Float64Array.from([0, 4, 3]);
    const ds = Float64Array.from([0, 0, 0]);
    const want = [0, 1, 2].map((i) => overlapSeconds(L4, cs[i], gs[i], hs[i], ds[i]));
    const out = overlapColumn(L4, cs, gs, hs, ds, cs);
    assert.equal(out, cs);
    assert.deepEqual([...out], want);
  });

  it('additiveInterference keeps the two-way factors and adds slowdowns in larger sets', () => {
    const two = [1.2, 1.1, 1.05, 1.02, 1.3, 1.01, 1.5, 1.4, 1.25, 1.6, 1.7, 1.8];
    const f = additiveInterference(two);
    assert.deepEqual(f.slice(16), two);
    // C in {C,G,H,D}: 1 + 0.2 (G) + 0.05 (H) + 0.3 (D)
    close(interferenceFactor(f, mask(C, G, H, D), C), 1 + 0.2 + 0.05 + 0.3);
    // H in {G,H,D}: 1 + 0.4 (G on H) + 0.7 (D on H)
    close(interferenceFactor(f, mask(G, H, D), H), 1 + 0.4 + 0.7);
    assert.ok(isSupersetMonotone(f));
  });

  it('ZERO_SECONDS is Mist\'s np.isclose tolerance', () => {
    assert.equal(ZERO_SECONDS, 1e-8);
  });
});
