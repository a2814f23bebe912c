import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  candidateRows,
  compileStageModel,
  hardwareFns,
  iterationSeconds,
  layerTimes,
  outputArrays,
  residentStates,
  zeroFlags,
  type Cell,
  type Row,
  type RowScalars,
  type StagePosition,
} from '../../../controller/src/tuner/cost.js';
import { gemmSeconds, p2pSeconds } from '../../../controller/src/tuner/comm.js';
import { hardwareFor } from '../../../controller/src/tuner/hardware.js';
import { blockQuantities, postQuantities, resolveModel } from '../../../controller/src/tuner/model.js';
import { overlapSeconds } from '../../../controller/src/tuner/interference.js';
import { interpret } from '../../../controller/src/tuner/symbolic/compile.js';
import { num, sym } from '../../../controller/src/tuner/symbolic/expr.js';
import { collectiveSeconds } from '../../../controller/src/tuner/comm.js';
import type { Workload } from '../../../controller/src/domain/plan.js';
import { order1F1B, simulate, simulate1F1B, type Op } from '../../support/pipeline-sim.js';

const GB = 1e9;

describe('tuner/cost: ZeRO model-state bytes (validation.md §5.1, 7.5B on 64 GPUs)', () => {
  const psi = 7.5e9;
  const table: Array<{ zero: 0 | 1 | 2 | 3; want: number; label: string }> = [
    { zero: 0, want: 16 * psi, label: 'baseline DP 16Ψ = 120 GB' },
    { zero: 1, want: 4 * psi + (12 * psi) / 64, label: 'P_os 4Ψ + KΨ/N_d = 31.4 GB' },
    { zero: 2, want: 2 * psi + (14 * psi) / 64, label: 'P_os+g 2Ψ + 14Ψ/N_d = 16.6 GB' },
    { zero: 3, want: (16 * psi) / 64, label: 'P_os+g+p 16Ψ/N_d = 1.9 GB' },
  ];
  for (const c of table) {
    it(`ZeRO-${c.zero}: ${c.label}`, () => {
      const f = zeroFlags(c.zero);
      const e = residentStates(psi, { dp: 64, ...f, wo: 0, go: 0, oo: 0 }, 2).total;
      const got = interpret(e, {});
      assert.ok(Math.abs(got - c.want) < 1, `${got} vs ${c.want}`);
    });
  }
  it('the published rounded figures: 31.4 GB and 16.6 GB', () => {
    const at = (z: 1 | 2): number => interpret(residentStates(psi, { dp: 64, ...zeroFlags(z), wo: 0, go: 0, oo: 0 }, 2).total, {});
    assert.equal((at(1) / GB).toFixed(1), '31.4');
    assert.equal((at(2) / GB).toFixed(1), '16.6');
  });
  it('fp32 main grads: 18 B/param without sharding; offload removes the offloaded fraction', () => {
    assert.equal(interpret(residentStates(num(1), { dp: 8, wre: 0, gre: 0, ore: 0, wo: 0, go: 0, oo: 0 }, 4).total, {}), 18);
    assert.equal(interpret(residentStates(num(1), { dp: 1, wre: 0, gre: 0, ore: 1, wo: 0, go: 0, oo: 0.5 }, 2).total, {}), 2 + 2 + 6);
  });
});

describe('tuner/cost: iteration time T = Σ S + (G−1)·max S + max(0, max_i(D_i − Σ_{j<i} S_j))', () => {
  const table = [
    { name: 'one stage is G·(S + D/G)', S: [2], D: [1], G: 5, want: 11 },
    { name: 'three stages, the middle delta is exposed past the first stage', S: [1, 2, 3], D: [0.5, 4, 1], G: 4, want: 6 + 9 + 3 },
    { name: 'deltas fully hidden by the earlier stages', S: [3, 3, 3], D: [0, 2, 5], G: 2, want: 9 + 3 + 0 },
    { name: 'the first stage delta is never hidden', S: [1, 1], D: [2, 0], G: 8, want: 2 + 7 + 2 },
    { name: 'no deltas', S: [1, 4], D: [0, 0], G: 3, want: 5 + 8 },
  ];
  for (const c of table) it(c.name, () => assert.equal(iterationSeconds(c.S, c.D, c.G), c.want));

  // Mist's closed form against a discrete-event simulation of 1F1B (no deltas, no transfers): never below the
  // schedule, exact for uniform stages, and close for the near-balanced stages the solvers pick (with G = S, the
  // bubble's share, it over-estimates by up to ~3% at ±5% and ~27% at 3× imbalance; at G = 2S, S = 8, by 3.5%).
  const stages = (S: number, spread: number) =>
    fc.array(fc.record({ f: fc.double({ min: 1 - spread, max: 1 + spread, noNaN: true }), r: fc.double({ min: 1.5, max: 2.5, noNaN: true }) }), { minLength: S, maxLength: S });
  const caseArb = (spread: number, minK = 1) =>
    fc.constantFrom(2, 3, 4, 8).chain((S) => fc.tuple(fc.constant(S), fc.constantFrom(1, 2, 4, 8, 16).filter((k) => k >= minK).map((k) => k * S), stages(S, spread)));
  const closedForm = (f: number[], b: number[], G: number) => iterationSeconds(f.map((x, i) => x + b[i]!), f.map(() => 0), G);

  it('is an upper bound on the simulated 1F1B schedule for any stage times', () => {
    fc.assert(
      fc.property(caseArb(0.5), ([S, G, st]) => {
        const f = st.map((x) => x.f);
        const b = st.map((x) => x.f * x.r);
        const sim = simulate1F1B(f, b, G);
        assert.ok(closedForm(f, b, G) >= sim * (1 - 1e-12), `S ${S} G ${G}: ${closedForm(f, b, G)} < ${sim}`);
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  it('equals the simulation for uniform stages and is within 4% of it for stages within ±5% and G ≥ 2S', () => {
    assert.ok(Math.abs(closedForm([1, 1, 1, 1], [2, 2, 2, 2], 32) - simulate1F1B([1, 1, 1, 1], [2, 2, 2, 2], 32)) < 1e-9);
    fc.assert(
      fc.property(caseArb(0.05, 2), ([, G, st]) => {
        const f = st.map((x) => x.f);
        const b = st.map((x) => 2 * x.f * (0.97 + 0.02 * (x.r - 1.5)));
        const sim = simulate1F1B(f, b, G);
        assert.ok(closedForm(f, b, G) <= sim * 1.04, `G ${G}: ${closedForm(f, b, G)} vs ${sim}`);
      }),
      { seed: 11, numRuns: 300 },
    );
  });
});

describe('tuner/cost: split backward, (G−1)·max (T − H) + Σ (T − W + H) + max (W + H) against the simulated schedule', () => {
  // 1F1B where a split stage's backward is B then W, its input gradient leaving after B; a stage that does not
  // split runs B and W as one op (its gradient leaves after both). Transfers are asynchronous; T charges each stage
  // 2× its outgoing transfer, and a split stage hides H = min(2·transfer, W) of it behind its weight pass.
  const orders = (S: number, G: number, split: boolean[]): Op[][] => Array.from({ length: S }, (_, s) => order1F1B(S, s, G, split[s]));
  const stageArb = fc.record({
    f: fc.double({ min: 0.5, max: 1.5, noNaN: true }),
    b: fc.double({ min: 0.5, max: 3, noNaN: true }),
    w: fc.double({ min: 0.2, max: 1.5, noNaN: true }),
    split: fc.boolean(),
  });
  const caseArb = (maxTransfer: number) =>
    fc
      .integer({ min: 2, max: 10 })
      .chain((S) =>
        fc.tuple(
          fc.constant(S),
          fc.integer({ min: S, max: 4 * S }),
          fc.array(stageArb, { minLength: S, maxLength: S }),
          fc.array(fc.oneof(fc.constant(0), fc.double({ min: 0, max: maxTransfer, noNaN: true })), { minLength: S - 1, maxLength: S - 1 }),
        ),
      );
  const closedForm = (S: number, G: number, st: Array<{ f: number; b: number; w: number; split: boolean }>, tr: number[]): number => {
    const p2p = (i: number) => (i < S - 1 ? 2 * tr[i]! : 0);
    const W = st.map((x) => (x.split ? x.w : 0));
    return iterationSeconds(st.map((x, i) => x.f + x.b + x.w + p2p(i)), st.map(() => 0), G, W, W.map((w, i) => Math.min(w, p2p(i))));
  };

  for (const maxTransfer of [0, 0.3, 2]) {
    it(`is an upper bound on the schedule for any stage times and any set of split stages (transfers up to ${maxTransfer})`, () => {
      fc.assert(
        fc.property(caseArb(maxTransfer), ([S, G, st, tr]) => {
          const split = st.map((x) => x.split);
          const sim = simulate(orders(S, G, split), { forward: st.map((x) => x.f), backward: st.map((x) => x.b), weight: st.map((x) => x.w), transfer: tr }, G);
          const closed = closedForm(S, G, st, tr);
          assert.ok(closed >= sim * (1 - 1e-12), `S ${S} G ${G}: ${closed} < ${sim}`);
        }),
        { seed: 17, numRuns: 400 },
      );
    });
  }

  it('with every stage split and weight passes longer than the transfers, the steady state hides the transfers', () => {
    const S = 8;
    const G = 64;
    const st = Array.from({ length: S }, () => ({ f: 1, b: 1.3, w: 0.9, split: true }));
    const tr = new Array<number>(S - 1).fill(0.3);
    const sim = simulate(orders(S, G, st.map(() => true)), { forward: st.map((x) => x.f), backward: st.map((x) => x.b), weight: st.map((x) => x.w), transfer: tr }, G);
    const whole = simulate(orders(S, G, st.map(() => false)), { forward: st.map((x) => x.f), backward: st.map((x) => x.b), weight: st.map((x) => x.w), transfer: tr }, G);
    // period 3.2 = F + B + W: no transfer in the steady state, against 3.2 + 2·0.3·(S − 1)/S without the split
    assert.ok(sim < G * 3.2 + 2 * (S - 1) * 3.2, `${sim}`);
    assert.ok(whole > G * (3.2 + 0.6 * (S - 1) / S) - 1e-9, `${whole}`);
    assert.ok(closedForm(S, G, st, tr) >= sim && closedForm(S, G, st, tr) < G * (3.2 + 0.6 * (S - 1) / S));
  });

  it('is exact for uniform stages that all split: the bubble shrinks from (S − 1)(F + B + W) to (S − 1)(F + B)', () => {
    for (const [S, G] of [[2, 2], [4, 8], [8, 32], [16, 64]] as const) {
      const f = 1;
      const b = 1.3;
      const w = 0.9;
      const sim = simulate(orders(S, G, new Array<boolean>(S).fill(true)), { forward: new Array(S).fill(f), backward: new Array(S).fill(b), weight: new Array(S).fill(w) }, G);
      const T = new Array<number>(S).fill(f + b + w);
      const closed = iterationSeconds(T, T.map(() => 0), G, T.map(() => w));
      assert.ok(Math.abs(closed - sim) < 1e-9, `S ${S} G ${G}: ${closed} vs ${sim}`);
      assert.ok(Math.abs(sim - (G * (f + b + w) + (S - 1) * (f + b))) < 1e-9);
      assert.ok(sim < simulate1F1B(new Array(S).fill(f), new Array(S).fill(b + w), G));
    }
  });
});

const l4 = hardwareFor('l4-24gb');
const a100 = hardwareFor('a100-80gb');
const workloadNoFlash: Workload = { flash: false, dropout: 0, gradDtype: 'bf16' };
const mist13 = resolveModel({ preset: 'gpt3-1.3b', heads: 16, vocab: 50304 } as never);

function one(position: StagePosition, row: Partial<Row>, scalars: RowScalars, cell: Cell, hw = l4, model = mist13, workload = workloadNoFlash) {
  const sm = compileStageModel({ model, seqLen: 2048, workload, hw, position });
  const out = outputArrays(1);
  sm.evalCell(sm.prepare(candidateRows(1, row), scalars, 1), cell, out);
  return { stable: out.stable[0]!, delta: out.delta[0]!, peak: out.peak[0]!, required: out.required[0]!, sm };
}

describe('tuner/cost: stage time by hand', () => {
  it('a single-layer middle stage with nothing to overlap: stable = forward + backward + optimizer step + 2·p2p(out)', () => {
    const scalars = { G: 1, nodes: 1, gpn: 1, cross: 0 };
    const r = one('middle', { b: 2 }, scalars, { l: 1, c: 0, p: 0 });
    const q = blockQuantities(mist13, { seqLen: 2048, flash: false, dropout: 0 });
    const env = { b: 2, tp: 1 };
    const gemm = q.gemms.map((g) => gemmSeconds(l4, interpret(g.flops, env)));
    const fwd = gemm.reduce((a, x) => a + x, 0) + interpret(q.memFwd, env) / l4.hbmBandwidth;
    const bwd = 2 * gemm.reduce((a, x) => a + x, 0) + interpret(q.memBwd, env) / l4.hbmBandwidth;
    const step = ((24 + 2 + 2) * interpret(q.params, env)) / l4.hbmBandwidth;
    const p2p = 2 * p2pSeconds(l4, interpret(q.out, env), false);
    const want = fwd + bwd + step + p2p;
    assert.ok(Math.abs(r.stable - want) / want < 1e-9, `${r.stable} vs ${want}`);
    assert.equal(r.delta, 0, 'one micro-batch has no delta');
  });

  it('full recomputation re-runs the forward and its TP collectives: at tp = 2 a checkpointed layer costs fwd + tpFwd more', () => {
    const scalars = { G: 1, nodes: 1, gpn: 2, cross: 0 };
    const plain = one('middle', { b: 1, tp: 2 }, scalars, { l: 1, c: 0, p: 0 });
    const ck = one('middle', { b: 1, tp: 2 }, scalars, { l: 1, c: 1, p: 0 });
    const q = blockQuantities(mist13, { seqLen: 2048, flash: false, dropout: 0 });
    const t = layerTimes(q, l4, num(1), num(2), sym('tp'), false);
    const env = { b: 1, tp: 2 };
    const fns = hardwareFns(l4);
    const tpFwd = interpret(t.tpFwd, env, fns);
    const want = interpret(t.fwd, env, fns) + tpFwd;
    assert.ok(tpFwd > 0, 'two all-reduces per forward at tp = 2');
    assert.ok(Math.abs(ck.stable - plain.stable - want) / want < 1e-9, `${ck.stable - plain.stable} vs ${want}`);
  });

  it('pipeline send/receive is included: crossing nodes costs 2·(p2p over 2x1 − p2p over 1x2) more per micro-batch', () => {
    const cell = { l: 4, c: 0, p: 1 };
    const near = one('middle', { b: 1 }, { G: 8, nodes: 1, gpn: 1, cross: 0 }, cell);
    const far = one('middle', { b: 1 }, { G: 8, nodes: 1, gpn: 1, cross: 1 }, cell);
    const out = 2 * 1 * 2048 * mist13.hidden;
    const want = 2 * (p2pSeconds(l4, out, true) - p2pSeconds(l4, out, false));
    assert.ok(Math.abs(far.stable - near.stable - want) < 1e-12);
    assert.ok(want > 0);
  });

  it('with G > 1 the first/last micro-batch extras land in delta (optimizer step, ZeRO-1 gather and reduce-scatter)', () => {
    const r = one('middle', { b: 1, dp: 2, ...zeroFlags(1) }, { G: 8, nodes: 1, gpn: 2, cross: 0 }, { l: 4, c: 0, p: 1 });
    assert.ok(r.delta > 0);
    const single = one('middle', { b: 1, dp: 2, ...zeroFlags(1) }, { G: 1, nodes: 1, gpn: 2, cross: 0 }, { l: 4, c: 0, p: 0 });
    assert.equal(single.delta, 0);
    assert.ok(single.stable > r.stable, 'with G = 1 the stable rows are the first/last micro-batch rows');
  });

  it('the interpreter and the compiled evaluator agree on a stage', () => {
    const row: Row = { b: 2, dp: 2, tp: 2, wre: 0, gre: 1, ore: 1, wo: 0, go: 0.25, oo: 0.5, ao: 0.375, sel: 1, ppdp: 2, pptp: 2, ppzero: 1 };
    const scalars = { G: 16, nodes: 1, gpn: 4, cross: 0 };
    const cell = { l: 6, c: 2, p: 3 };
    for (const position of ['first', 'middle', 'last', 'only'] as const) {
      const r = one(position, row, scalars, cell, a100, resolveModel('llama2-7b'), { flash: true, dropout: 0, gradDtype: 'fp32' });
      const i = r.sm.interpret(row, scalars, cell);
      for (const k of ['stable', 'delta', 'peak', 'required'] as const) assert.ok(Math.abs(i[k] - r[k]) <= 1e-9 * Math.abs(i[k]), `${position} ${k}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Memory properties over random candidates

const llama = resolveModel('llama2-7b');
const positions = fc.constantFrom<StagePosition>('first', 'middle', 'last', 'only');
const ratio = fc.constantFrom(0, 0.25, 0.5, 0.75, 1);
const candidate = fc.record({
  position: positions,
  b: fc.constantFrom(1, 2, 4),
  dpExp: fc.integer({ min: 0, max: 3 }),
  zero: fc.constantFrom<0 | 1 | 2 | 3>(0, 1, 2, 3),
  wo: ratio,
  go: ratio,
  oo: ratio,
  ao: ratio,
  sel: fc.constantFrom(0, 1),
  flash: fc.boolean(),
  l: fc.integer({ min: 2, max: 16 }),
  cFrac: fc.double({ min: 0, max: 1, noNaN: true }),
  p: fc.integer({ min: 0, max: 7 }),
});
type Cand = typeof candidate extends fc.Arbitrary<infer T> ? T : never;

function evalCand(k: Cand, over: Partial<Cand> = {}) {
  const x = { ...k, ...over };
  const dp = 2 ** x.dpExp;
  const tp = 8 / dp;
  const c = Math.min(x.l, Math.round(x.cFrac * x.l));
  const p = x.position === 'last' || x.position === 'only' ? 0 : x.p;
  const row: Partial<Row> = { b: x.b, dp, tp, ...zeroFlags(x.zero), wo: x.wo, go: x.go, oo: x.oo, ao: x.ao, sel: x.sel, ppdp: dp, pptp: tp, ppzero: 1 };
  return one(x.position, row, { G: 16, nodes: 1, gpn: 8, cross: 0 }, { l: x.l, c, p }, a100, llama, { flash: x.flash, dropout: 0, gradDtype: 'bf16' });
}

describe('tuner/cost: memory properties', () => {
  it('peak and required memory never decrease with the micro-batch', () => {
    fc.assert(
      fc.property(candidate, (k) => {
        const small = evalCand(k, { b: 1 });
        const big = evalCand(k, { b: 2 });
        const bigger = evalCand(k, { b: 4 });
        return small.peak <= big.peak && big.peak <= bigger.peak && small.required <= big.required && big.required <= bigger.required;
      }),
      { numRuns: 150 },
    );
  });

  it('more checkpointed layers never raise the peak', () => {
    fc.assert(
      fc.property(candidate, (k) => {
        let prev = Infinity;
        for (let c = 0; c <= k.l; c++) {
          const r = evalCand(k, { cFrac: c / k.l });
          if (r.peak > prev + 1e-6) return false;
          prev = r.peak;
        }
        return true;
      }),
      { numRuns: 80 },
    );
  });

  it('a higher ZeRO level never raises the peak when dp > 1 and the stage holds ≥ 8 layers', () => {
    fc.assert(
      fc.property(candidate, fc.integer({ min: 8, max: 16 }), fc.integer({ min: 1, max: 3 }), (k, l, dpExp) => {
        let prev = Infinity;
        for (const zero of [0, 1, 2, 3] as const) {
          const r = evalCand(k, { zero, l, dpExp });
          if (r.peak > prev + 1e-6) return false;
          prev = r.peak;
        }
        return true;
      }),
      { numRuns: 100 },
    );
  });

  it('a larger (non-zero) offload ratio of weights, grads, optimizer states or activations never raises peak or required memory', () => {
    fc.assert(
      fc.property(candidate, fc.constantFrom('wo', 'go', 'oo', 'ao'), fc.constantFrom(0.25, 0.5), (k, key, lo) => {
        const a = evalCand(k, { [key]: lo } as Partial<Cand>);
        const b = evalCand(k, { [key]: lo + 0.5 } as Partial<Cand>);
        return b.peak <= a.peak + 1e-6 && b.required <= a.required + 1e-6;
      }),
      { numRuns: 200 },
    );
  });

  it('flash attention never needs more memory than the materialised score matrix', () => {
    fc.assert(
      fc.property(candidate, (k) => evalCand(k, { flash: true }).peak <= evalCand(k, { flash: false }).peak),
      { numRuns: 100 },
    );
  });

  it('earlier stages (more in-flight micro-batches p) need more memory', () => {
    fc.assert(
      fc.property(candidate, (k) => {
        const x = { ...k, position: 'middle' as const };
        return evalCand(x, { p: 1 }).peak <= evalCand(x, { p: 4 }).peak;
      }),
      { numRuns: 100 },
    );
  });
});

describe('tuner/cost: sequence parallelism and TP communication overlap', () => {
  const h100 = hardwareFor('h100-80gb');
  const gpt32 = resolveModel({ arch: 'gpt', layers: 48, hidden: 7168, heads: 56, vocab: 131072, seqLen: 4096, tiedEmbeddings: false });
  const seqLen = 4096;
  /** Interpret a block's layer times at (b, tp) inside one 8-GPU node. */
  function times(opts: { sp: boolean; overlap: boolean; tp: number; b?: number; hw?: typeof h100 }) {
    const hw = opts.hw ?? h100;
    const q = blockQuantities(gpt32, { seqLen, flash: true, dropout: 0.1, sequenceParallel: opts.sp });
    const t = layerTimes(q, hw, num(1), num(opts.tp), sym('tp'), opts.overlap);
    const fns = hardwareFns(hw);
    const env = { b: opts.b ?? 1, tp: opts.tp };
    const fed = ['qkv', 'proj', 'fc1', 'fc2'].reduce((a, n) => a + gemmSeconds(hw, interpret(q.gemms.find((g) => g.name === n)!.flops, env)), 0);
    const coll = (op: 'allReduce' | 'allGather' | 'reduceScatter', n: number) => n * collectiveSeconds(hw, op, 2 * seqLen * env.b * gpt32.hidden, 1, opts.tp);
    return { tpFwd: interpret(t.tpFwd, env, fns), tpBwd: interpret(t.tpBwd, env, fns), fwd: interpret(t.fwd, env, fns), fed, coll };
  }
  const near = (got: number, want: number, rel = 1e-12): void => assert.ok(Math.abs(got - want) <= rel * Math.abs(want) + 1e-15, `${got} vs ${want}`);

  it('SP forward: 2 all-gathers + 2 reduce-scatters cost exactly plain TP\'s 2 all-reduces (op factors 1.0 + 1.1 = 2.1)', () => {
    const plain = times({ sp: false, overlap: false, tp: 8 });
    const sp = times({ sp: true, overlap: false, tp: 8 });
    near(plain.tpFwd, plain.coll('allReduce', 2));
    near(sp.tpFwd, sp.coll('allGather', 2) + sp.coll('reduceScatter', 2));
    near(sp.tpFwd, plain.tpFwd);
  });

  it('SP backward adds the input re-gather, raced against the input-gradient GEMMs: plain ≤ SP ≤ plain + the re-gather', () => {
    const plain = times({ sp: false, overlap: false, tp: 8 });
    const sp = times({ sp: true, overlap: false, tp: 8 });
    const regather = sp.coll('allGather', 2);
    near(sp.tpBwd, plain.tpBwd + overlapSeconds(h100.interference, sp.fed, regather, 0, 0) - sp.fed);
    assert.ok(sp.tpBwd > plain.tpBwd && sp.tpBwd <= plain.tpBwd + regather, `${sp.tpBwd} vs ${plain.tpBwd} + ${regather}`);
  });

  it('SP shrinks the forward compute at tp > 1 (norms, residual adds and dropouts on s/tp tokens)', () => {
    assert.ok(times({ sp: true, overlap: false, tp: 8 }).fwd < times({ sp: false, overlap: false, tp: 8 }).fwd);
  });

  const ideal = hardwareFor('h100-80gb', { interference: new Array(28).fill(1) });
  it('overlap with ideal interference (all factors 1) and GEMMs longer than the collectives exposes exactly one chunk, T/tp', () => {
    const r = times({ sp: true, overlap: true, tp: 8, hw: ideal, b: 4 });
    const T = r.coll('allGather', 2) + r.coll('reduceScatter', 2);
    assert.ok(r.fed >= T, 'precondition: the fed GEMMs outlast the forward collectives');
    near(r.tpFwd, T / 8, 1e-9);
  });

  it('overlap with ideal interference and collectives longer than the GEMMs exposes the excess: T − C', () => {
    const slow = hardwareFor('h100-80gb', { interference: new Array(28).fill(1), collective: { '1x8': { bandwidth: 2 * GB } } });
    const r = times({ sp: true, overlap: true, tp: 8, hw: slow });
    const T = r.coll('allGather', 2) + r.coll('reduceScatter', 2);
    assert.ok(T * (7 / 8) > r.fed, 'precondition: the hidden part outlasts the GEMMs');
    near(r.tpFwd, T - r.fed, 1e-9);
  });

  it('overlap on the H100 factors lies between perfect overlap and no overlap, forward and backward', () => {
    const ov = times({ sp: true, overlap: true, tp: 8 });
    const no = times({ sp: true, overlap: false, tp: 8 });
    const Tf = ov.coll('allGather', 2) + ov.coll('reduceScatter', 2);
    assert.ok(ov.tpFwd > Tf / 8 && ov.tpFwd < no.tpFwd, `${ov.tpFwd} in (${Tf / 8}, ${no.tpFwd})`);
    assert.ok(ov.tpBwd > 0 && ov.tpBwd < no.tpBwd, `${ov.tpBwd} < ${no.tpBwd}`);
  });

  it('both flags are no-ops at tp = 1', () => {
    for (const position of ['first', 'middle', 'last', 'only'] as const) {
      const row = { b: 2, dp: 8, tp: 1, ...zeroFlags(1), ppdp: 8, pptp: 1, ppzero: 1 };
      const scalars = { G: 8, nodes: 1, gpn: 8, cross: 0 };
      const cell = { l: 4, c: 1, p: position === 'first' || position === 'middle' ? 2 : 0 };
      const w: Workload = { flash: true, dropout: 0.1, gradDtype: 'fp32' };
      const plain = one(position, row, scalars, cell, h100, gpt32, w);
      const flags = one(position, row, scalars, cell, h100, gpt32, { ...w, sequenceParallel: true, tpCommOverlap: true });
      // equal up to the summation order of the compiled code (a few ulps)
      for (const k of ['stable', 'delta', 'peak', 'required'] as const) near(flags[k], plain[k], 1e-14);
    }
  });

  it('absent flags and explicit false flags give identical stage models', () => {
    const row = { b: 1, dp: 2, tp: 4, ...zeroFlags(1), ppdp: 2, pptp: 4, ppzero: 1 };
    const scalars = { G: 8, nodes: 1, gpn: 8, cross: 0 };
    const w: Workload = { flash: false, dropout: 0.1, gradDtype: 'bf16' };
    const a = one('first', row, scalars, { l: 6, c: 2, p: 3 }, h100, gpt32, w);
    const b = one('first', row, scalars, { l: 6, c: 2, p: 3 }, h100, gpt32, { ...w, sequenceParallel: false, tpCommOverlap: false });
    for (const k of ['stable', 'delta', 'peak', 'required'] as const) assert.equal(b[k], a[k], k);
  });

  it('SP lowers the stage peak at tp > 1 and the first stage most (its in-flight micro-batches hold sharded activations)', () => {
    const row = { b: 1, dp: 1, tp: 8, ...zeroFlags(1), ppdp: 1, pptp: 8, ppzero: 1 };
    const scalars = { G: 16, nodes: 1, gpn: 8, cross: 0 };
    const w: Workload = { flash: true, dropout: 0.1, gradDtype: 'fp32' };
    const cell = { l: 12, c: 0, p: 3 };
    const plain = one('first', row, scalars, cell, h100, gpt32, w);
    const sp = one('first', row, scalars, cell, h100, gpt32, { ...w, sequenceParallel: true });
    // (`one` compiles at seqLen 2048)
    const q = blockQuantities(gpt32, { seqLen: 2048, flash: true, dropout: 0.1 });
    const qs = blockQuantities(gpt32, { seqLen: 2048, flash: true, dropout: 0.1, sequenceParallel: true });
    const saving = interpret(q.saved.none, { b: 1, tp: 8 }) - interpret(qs.saved.none, { b: 1, tp: 8 });
    // p·l earlier micro-batches + (l − 1) layers of the current one + the running layer = 3·12 + 11 + 1 layer sets
    assert.ok(plain.peak - sp.peak >= 48 * saving * 0.999, `${(plain.peak - sp.peak) / 2 ** 30} GiB`);
  });

  it("SP in the head: the final norm's and the head's saved inputs are sequence shards", () => {
    const plain = postQuantities(gpt32, { seqLen, flash: true, dropout: 0 }, true);
    const sp = postQuantities(gpt32, { seqLen, flash: true, dropout: 0, sequenceParallel: true }, true);
    const sbh = seqLen * gpt32.hidden;
    near(interpret(plain.saved.none, { b: 1, tp: 8 }) - interpret(sp.saved.none, { b: 1, tp: 8 }), 4 * sbh * (1 - 1 / 8));
    assert.deepEqual(sp.tpComm.fedGemms, ['logits']);
  });
});
