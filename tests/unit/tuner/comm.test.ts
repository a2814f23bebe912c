import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MistError } from '../../../protocol/src/errors.js';
import { CATALOG, GIB, GPU_TYPES, hardwareFor } from '../../../controller/src/tuner/hardware.js';
import {
  TINY_COLLECTIVE_BYTES,
  collectiveColumn,
  collectiveLink,
  collectiveSeconds,
  d2hColumn,
  d2hSeconds,
  dpLayout,
  gemmEfficiency,
  gemmEfficiencyColumn,
  gemmSeconds,
  gemmSecondsColumn,
  h2dColumn,
  h2dSeconds,
  linkTable,
  p2pColumn,
  p2pSeconds,
  tpLayout,
  type CollectiveOp,
} from '../../../controller/src/tuner/comm.js';

const a100 = hardwareFor('a100-40gb');
const l4 = hardwareFor('l4-24gb');
const h100 = hardwareFor('h100-80gb');

function close(actual: number, expected: number, rel = 1e-12): void {
  if (actual === expected) return;
  assert.ok(Math.abs(actual - expected) <= rel * Math.abs(expected) + 1e-300, `${actual} ≉ ${expected}`);
}

describe('tuner/comm collectives', () => {
  const cases: Array<{ name: string; got: () => number; want: number }> = [
    {
      name: 'A100: 8-GPU intra-node all-reduce of 1 GiB = 2.1·(1/210.306·7/8 + 0.4 ms) ≈ 2.1·(1/210)·7/8 s plus latency',
      got: () => collectiveSeconds(a100, 'allReduce', GIB, 1, 8),
      want: 2.1 * ((1 / 210.306) * (7 / 8) + 0.0004),
    },
    { name: 'A100: 2-GPU all-gather of 512 MiB', got: () => collectiveSeconds(a100, 'allGather', GIB / 2, 1, 2), want: (0.5 / 139.0363) * 0.5 + 0.0001 },
    { name: 'A100: 16-GPU (2 nodes × 8) reduce-scatter of 1 GiB', got: () => collectiveSeconds(a100, 'reduceScatter', GIB, 2, 8), want: 1.1 * ((1 / 10.7032) * (15 / 16) + 0.001) },
    { name: 'L4: 2-GPU all-reduce of 1 GiB over PCIe', got: () => collectiveSeconds(l4, 'allReduce', GIB, 1, 2), want: 2.1 * ((1 / 2.964) * 0.5 + 0.0001) },
    { name: 'L4: 4 nodes × 8 all-gather of 2 GiB', got: () => collectiveSeconds(l4, 'allGather', 2 * GIB, 4, 8), want: (2 / 2.9659) * (31 / 32) + 0.003 },
    { name: 'L4: 8 nodes × 1 falls back to the fitted 4x1 row', got: () => collectiveSeconds(l4, 'allGather', GIB, 8, 1), want: (1 / 0.4609) * (7 / 8) + 0.0102 },
    { name: 'L4: 16 nodes × 16 GPUs uses the 8 columns (→ fallback 4x8)', got: () => collectiveSeconds(l4, 'allGather', GIB, 16, 16), want: (1 / 2.9659) * (255 / 256) + 0.003 },
    { name: 'H100: 6 nodes (rounded up to the 8 row) × 8', got: () => collectiveSeconds(h100, 'allGather', GIB, 6, 8), want: (1 / 240) * (47 / 48) + 0.0001 },
    { name: 'H100: 3 GPUs use the 4 column', got: () => collectiveSeconds(h100, 'allGather', GIB, 1, 3), want: (1 / 288.9326) * (2 / 3) + 0.00002 },
    { name: 'one member: free', got: () => collectiveSeconds(a100, 'allReduce', GIB, 1, 1), want: 0 },
    { name: 'tiny message (< 1e-5 GiB): free', got: () => collectiveSeconds(a100, 'allReduce', TINY_COLLECTIVE_BYTES * 0.99, 1, 8), want: 0 },
    { name: 'zero bytes: free', got: () => collectiveSeconds(a100, 'allReduce', 0, 2, 8), want: 0 },
  ];
  for (const c of cases) it(c.name, () => close(c.got(), c.want));

  it('the brief\'s A100 example is within 10% of the latency-free approximation', () => {
    const t = collectiveSeconds(a100, 'allReduce', GIB, 1, 8);
    const approx = 2.1 * (1 / 210) * (7 / 8);
    assert.ok(Math.abs(t - approx) / approx < 0.1);
  });

  it('op factors order all-gather < reduce-scatter < all-reduce on every device', () => {
    for (const t of GPU_TYPES) {
      const hw = CATALOG[t];
      const ag = collectiveSeconds(hw, 'allGather', GIB, 2, 4);
      const rs = collectiveSeconds(hw, 'reduceScatter', GIB, 2, 4);
      const ar = collectiveSeconds(hw, 'allReduce', GIB, 2, 4);
      assert.ok(ag > 0 && ag < rs && rs < ar, t);
      close(ar / ag, 2.1);
    }
  });

  it('refuses an unknown op', () => {
    assert.throws(() => collectiveSeconds(a100, 'broadcast' as CollectiveOp, GIB, 1, 8), (e: unknown) => e instanceof MistError && e.code === 'BAD_INPUT');
  });

  it('falls back to the nearest smaller layout, staying cross-node, and fails only without 1x2/2x1', () => {
    const hw = { ...h100, collective: { '1x2': h100.collective['1x2'], '2x1': h100.collective['2x1'], '2x4': h100.collective['2x4'] } };
    assert.equal(collectiveLink(hw, 8, 8), h100.collective['2x4']);
    assert.equal(collectiveLink(hw, 4, 2), h100.collective['2x1']);
    assert.equal(collectiveLink(hw, 1, 8), h100.collective['1x2']);
    assert.throws(() => collectiveLink({ ...h100, collective: { '2x1': h100.collective['2x1'] } }, 1, 8), (e: unknown) => e instanceof MistError && e.code === 'BAD_INPUT');
  });

  it('linkTable resolves all 16 layouts in Mist\'s flat order', () => {
    const t = linkTable(l4);
    assert.equal(t.length, 32);
    assert.equal(t[0], Infinity);
    assert.equal(t[2 * 1], 2.964 * GIB); // inter 1, intra 2
    assert.equal(t[2 * (1 * 4 + 3)], 3.3215 * GIB); // inter 2, intra 8
    assert.equal(t[2 * (3 * 4 + 3)], 2.9659 * GIB); // inter 8 → fallback 4, intra 8
    assert.equal(t[2 * (3 * 4 + 3) + 1], 0.003);
  });

  it('is monotone: more bytes never take less time (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...GPU_TYPES),
        fc.constantFrom<CollectiveOp>('allReduce', 'allGather', 'reduceScatter'),
        fc.double({ min: 0, max: 1e11, noNaN: true }),
        fc.double({ min: 0, max: 1e11, noNaN: true }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 16 }),
        (t, op, x, y, inter, intra) => {
          const [lo, hi] = x <= y ? [x, y] : [y, x];
          const hw = CATALOG[t];
          return collectiveSeconds(hw, op, lo, inter, intra) <= collectiveSeconds(hw, op, hi, inter, intra);
        },
      ),
    );
  });

  it('column form equals the scalar form, with scalar or per-row layouts (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...GPU_TYPES),
        fc.constantFrom<CollectiveOp>('allReduce', 'allGather', 'reduceScatter'),
        fc.array(fc.tuple(fc.double({ min: 0, max: 1e10, noNaN: true }), fc.integer({ min: 1, max: 32 }), fc.integer({ min: 1, max: 16 })), { minLength: 0, maxLength: 40 }),
        (t, op, rows) => {
          const hw = CATALOG[t];
          const bytes = Float64Array.from(rows.map((r) => r[0]));
          const inter = Float64Array.from(rows.map((r) => r[1]));
          const intra = Int32Array.from(rows.map((r) => r[2]));
          const perRow = collectiveColumn(hw, op, bytes, inter, intra);
          const fixed = collectiveColumn(hw, op, bytes, 2, 4, new Float64Array(rows.length));
          const mixed = collectiveColumn(hw, op, bytes, 1, intra);
          rows.forEach((r, i) => {
            close(perRow[i], collectiveSeconds(hw, op, r[0], r[1], r[2]));
            close(fixed[i], collectiveSeconds(hw, op, r[0], 2, 4));
            close(mixed[i], collectiveSeconds(hw, op, r[0], 1, r[2]));
          });
        },
      ),
    );
  });

  it('column form writes in place and checks lengths', () => {
    const bytes = Float64Array.from([GIB, 0, 5]);
    const out = collectiveColumn(a100, 'allReduce', bytes, 1, 8, bytes);
    assert.equal(out, bytes);
    close(out[0], 2.1 * ((1 / 210.306) * (7 / 8) + 0.0004));
    assert.deepEqual([out[1], out[2]], [0, 0]);
    assert.throws(() => collectiveColumn(a100, 'allReduce', bytes, Float64Array.from([1]), 8), (e: unknown) => e instanceof MistError && e.code === 'BAD_INPUT');
    assert.throws(() => collectiveColumn(a100, 'allReduce', bytes, 1, 8, new Float64Array(2)), (e: unknown) => e instanceof MistError && e.code === 'BAD_INPUT');
    assert.deepEqual([...collectiveColumn(a100, 'allReduce', bytes, 1, 1)], [0, 0, 0]);
  });
});

describe('tuner/comm p2p and host copies', () => {
  const cases: Array<{ name: string; got: () => number; want: number }> = [
    { name: 'P2P inside a node uses the 1x2 bandwidth, no latency', got: () => p2pSeconds(l4, GIB, false), want: 1 / 2.964 },
    { name: 'P2P across nodes uses the 2x1 bandwidth', got: () => p2pSeconds(a100, GIB, true), want: 1 / 1.2972 },
    { name: 'P2P of nothing is free', got: () => p2pSeconds(a100, 0, true), want: 0 },
    { name: 'L4 H2D of 1 GiB: 1/5.7546 + 0.4 ms', got: () => h2dSeconds(l4, GIB), want: 1 / 5.7546 + 0.0004 },
    { name: 'L4 D2H of 1 GiB: 1/6.1252 + 0.4 ms', got: () => d2hSeconds(l4, GIB), want: 1 / 6.1252 + 0.0004 },
    { name: 'A100 H2D of 2 GiB', got: () => h2dSeconds(a100, 2 * GIB), want: 2 / 5.3645 + 0.0003 },
    { name: 'A100 D2H of 512 MiB', got: () => d2hSeconds(a100, GIB / 2), want: 0.5 / 5.8471 + 0.0002 },
    { name: 'a copy of nothing is free (no latency)', got: () => h2dSeconds(l4, 0), want: 0 },
  ];
  for (const c of cases) it(c.name, () => close(c.got(), c.want));

  it('column forms equal the scalar forms (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...GPU_TYPES), fc.array(fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1e11, noNaN: true })), { maxLength: 30 }), fc.boolean(), (t, xs, cross) => {
        const hw = CATALOG[t];
        const bytes = Float64Array.from(xs);
        const h = h2dColumn(hw, bytes);
        const d = d2hColumn(hw, bytes);
        const p = p2pColumn(hw, bytes, cross);
        xs.forEach((x, i) => {
          close(h[i], h2dSeconds(hw, x));
          close(d[i], d2hSeconds(hw, x));
          close(p[i], p2pSeconds(hw, x, cross));
        });
      }),
    );
  });
});

describe('tuner/comm GEMM efficiency', () => {
  it('is 0 for no work, half the maximum at halfFlops, and approaches the maximum', () => {
    for (const t of GPU_TYPES) {
      const hw = CATALOG[t];
      assert.equal(gemmEfficiency(hw, 0), 0);
      close(gemmEfficiency(hw, hw.gemm.halfFlops), hw.gemm.maxEfficiency / 2);
      assert.ok(gemmEfficiency(hw, 1e6 * hw.gemm.halfFlops) > 0.999 * hw.gemm.maxEfficiency, t);
    }
  });

  it('a large A100 GEMM (b=4, s=2048, h=4096 → 4h) runs near 85% of peak; a tiny one far below', () => {
    const big = 2 * 4 * 2048 * 4096 * 16384;
    assert.ok(gemmEfficiency(a100, big) > 0.84);
    assert.ok(gemmEfficiency(a100, 2 * 64 * 256 * 256) < 0.05);
  });

  it('gemmSeconds = F / (peak · eff(F)): fixed per-kernel cost plus F at the best rate', () => {
    const f = 1e12;
    close(gemmSeconds(a100, f), f / (a100.peakFlops * gemmEfficiency(a100, f)));
    close(gemmSeconds(a100, f), f / (312e12 * 0.85) + 5e-6, 1e-9);
    assert.equal(gemmSeconds(a100, 0), 0);
  });

  it('is monotone in size, and the column forms equal the scalar ones (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...GPU_TYPES),
        fc.array(fc.double({ min: 0, max: 1e15, noNaN: true }), { minLength: 2, maxLength: 30 }),
        fc.option(fc.double({ min: 0.5, max: 3, noNaN: true }), { nil: undefined }),
        (t, xs, shape) => {
          const hw = shape === undefined ? CATALOG[t] : hardwareFor(t, { gemm: { shape } });
          const flops = Float64Array.from(xs);
          const e = gemmEfficiencyColumn(hw, flops);
          const s = gemmSecondsColumn(hw, flops);
          xs.forEach((x, i) => {
            close(e[i], gemmEfficiency(hw, x), 1e-12);
            close(s[i], gemmSeconds(hw, x), 1e-12);
          });
          const sorted = [...xs].sort((a, b) => a - b);
          for (let i = 1; i < sorted.length; i++) assert.ok(gemmEfficiency(hw, sorted[i - 1]) <= gemmEfficiency(hw, sorted[i]));
        },
      ),
    );
  });
});

describe('tuner/comm group layouts', () => {
  const dp: Array<{ name: string; args: [number, number, number]; want: { inter: number; intra: number } }> = [
    { name: 'DP 2 on a 1-node stage stays inside the node', args: [2, 1, 8], want: { inter: 1, intra: 2 } },
    { name: 'DP 4 on a 4-node stage: one rank per node (across nodes first)', args: [4, 4, 8], want: { inter: 4, intra: 1 } },
    { name: 'DP 2 on a 4-node stage: 2 nodes, 1 per node', args: [2, 4, 8], want: { inter: 2, intra: 1 } },
    { name: 'DP 16 on a 2-node stage: 2 nodes × 8', args: [16, 2, 8], want: { inter: 2, intra: 8 } },
    { name: 'DP 48 on a 6-node stage (Megatron 1.7B row): 6 × 8', args: [48, 6, 8], want: { inter: 6, intra: 8 } },
    { name: 'DP 1: one member', args: [1, 4, 8], want: { inter: 1, intra: 1 } },
  ];
  for (const c of dp) it(c.name, () => assert.deepEqual(dpLayout(...c.args), c.want));

  const tp: Array<{ name: string; args: [number, number]; want: { inter: number; intra: number } }> = [
    { name: 'TP 8 on 8-GPU nodes stays in the node', args: [8, 8], want: { inter: 1, intra: 8 } },
    { name: 'TP 2', args: [2, 8], want: { inter: 1, intra: 2 } },
    { name: 'TP 16 on 8-GPU nodes spans 2 nodes', args: [16, 8], want: { inter: 2, intra: 8 } },
    { name: 'TP 4 on 2-GPU nodes spans 2 nodes', args: [4, 2], want: { inter: 2, intra: 2 } },
  ];
  for (const c of tp) it(c.name, () => assert.deepEqual(tpLayout(...c.args), c.want));

  it('refuses impossible layouts', () => {
    const bad = (f: () => unknown) => assert.throws(f, (e: unknown) => e instanceof MistError && e.code === 'BAD_INPUT');
    bad(() => dpLayout(0, 1, 8));
    bad(() => dpLayout(17, 2, 8));
    bad(() => dpLayout(2, 1.5, 8));
    bad(() => tpLayout(0, 8));
    bad(() => tpLayout(2, 0));
  });

  it('every layout keeps inter·intra ≥ the group size and intra ≤ gpusPerNode (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 256 }), (nodes, m, g) => {
        const dpSize = 1 + (g % (nodes * m));
        const l = dpLayout(dpSize, nodes, m);
        assert.ok(l.inter * l.intra >= dpSize && l.inter <= nodes && l.intra <= m);
        const t = tpLayout(g, m);
        assert.ok(t.inter * t.intra >= g && t.intra <= m);
      }),
    );
  });
});
