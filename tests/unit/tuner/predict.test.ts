import assert from 'node:assert/strict';
import { isMistError } from '../../../protocol/src/errors.js';
import type { Plan, Stage } from '../../../controller/src/domain/plan.js';
import { hardwareFor } from '../../../controller/src/tuner/hardware.js';
import { modelFlopsPerIteration, resolveModel } from '../../../controller/src/tuner/model.js';
import { predictPlan, uniformPlan, uniformSplit, validatePlan } from '../../../controller/src/tuner/predict.js';
import { VALIDATION_CASES } from '../../../bench/validation-cases.js';

const off = { weights: 0, grads: 0, optimizer: 0, activations: 0 };

/** Mist's GPT-1.3B (gpt2 config: 16 heads, vocab 50304), research/mist.md §8.1. */
const gpt13 = resolveModel({ preset: 'gpt3-1.3b', heads: 16, vocab: 50304 } as never);

function stage(layers: [number, number], count: number, b: number): Stage {
  return { layers, nodes: 1, gpusPerNode: 1, dp: 1, tp: 1, microBatch: b, zero: 1, ckpt: { mode: 'layers', count }, offload: { ...off } };
}

/** The Mist-tuned smoke plan (mist.md §9.1): G=16, 2 stages × 12 layers, ckpt [5, 0], b=2, dp=tp=1, no flash. */
function smokePlan(): Plan {
  return {
    version: 1,
    id: 'mist-smoke',
    space: 'mist',
    model: gpt13,
    cluster: { gpu: 'l4-24gb', nodes: 1, gpusPerNode: 2 },
    globalBatch: 32,
    seqLen: 2048,
    gradAccum: 16,
    workload: { flash: false, dropout: 0, gradDtype: 'bf16' },
    stages: [stage([0, 11], 5, 2), stage([12, 23], 0, 2)],
    prePost: { dp: 1, tp: 1, zero: 1 },
  };
}

describe('tuner/predict: validatePlan rejects bad plans, naming the field', () => {
  const table: Array<{ name: string; mutate: (p: Plan) => void; field: string }> = [
    { name: 'G < pp under 1F1B', mutate: (p) => { p.gradAccum = 1; p.globalBatch = 2; }, field: 'gradAccum' },
    { name: 'dp·tp·pp ≠ GPUs', mutate: (p) => { p.cluster.gpusPerNode = 4; }, field: 'stages' },
    { name: 'a gap between stage layer ranges', mutate: (p) => { p.stages[1]!.layers = [13, 23]; }, field: 'stages[1].layers' },
    { name: 'layers not reaching L−1', mutate: (p) => { p.stages[1]!.layers = [12, 22]; }, field: 'stages' },
    { name: 'layers past L−1', mutate: (p) => { p.stages[1]!.layers = [12, 24]; }, field: 'stages[1].layers' },
    { name: 'a first stage not starting at 0', mutate: (p) => { p.stages[0]!.layers = [1, 11]; }, field: 'stages[0].layers' },
    { name: 'heads not divisible by tp', mutate: (p) => { p.model = { ...p.model, heads: 16 }; for (const s of p.stages) { s.tp = 3; s.gpusPerNode = 3; } p.cluster.gpusPerNode = 6; }, field: 'stages[0].tp' },
    { name: 'kvHeads not divisible by tp', mutate: (p) => { p.model = resolveModel({ arch: 'llama', layers: 24, hidden: 2048, heads: 16, kvHeads: 2, vocab: 100, seqLen: 2048 }); for (const s of p.stages) { s.tp = 4; s.gpusPerNode = 4; } p.cluster.gpusPerNode = 8; p.prePost.tp = 4; }, field: 'stages[0].tp' },
    { name: 'batch not equal to dp × microBatch × gradAccum', mutate: (p) => { p.globalBatch = 30; }, field: 'globalBatch' },
    { name: 'zero GPUs in the cluster', mutate: (p) => { p.cluster.nodes = 0; }, field: 'cluster.nodes' },
    { name: 'zero GPUs in a stage', mutate: (p) => { p.stages[0]!.gpusPerNode = 0; }, field: 'stages[0].gpusPerNode' },
    { name: 'an offload ratio above 1', mutate: (p) => { p.stages[0]!.offload.optimizer = 1.5; }, field: 'stages[0].offload.optimizer' },
    { name: 'a negative offload ratio', mutate: (p) => { p.stages[1]!.offload.activations = -0.1; }, field: 'stages[1].offload.activations' },
    { name: 'a ckpt count above the stage layers', mutate: (p) => { p.stages[0]!.ckpt = { mode: 'layers', count: 13 }; }, field: 'stages[0].ckpt.count' },
    { name: 'an unknown ckpt mode', mutate: (p) => { p.stages[0]!.ckpt = { mode: 'most' as never }; }, field: 'stages[0].ckpt.mode' },
    { name: 'an unknown ZeRO level', mutate: (p) => { p.stages[0]!.zero = 4 as never; }, field: 'stages[0].zero' },
    { name: 'dp × tp not matching the stage GPUs', mutate: (p) => { p.stages[0]!.dp = 2; }, field: 'stages[0].dp' },
    { name: 'stages with different micro-batches (v1: one mesh)', mutate: (p) => { p.stages[1]!.microBatch = 1; }, field: 'stages[1].microBatch' },
    { name: 'an unknown gradient dtype', mutate: (p) => { p.workload.gradDtype = 'fp8' as never; }, field: 'workload.gradDtype' },
    { name: 'a dropout of 1', mutate: (p) => { p.workload.dropout = 1; }, field: 'workload.dropout' },
    { name: 'a GPT sequence longer than its positions', mutate: (p) => { p.seqLen = 4096; }, field: 'seqLen' },
    { name: 'prePost not matching the stage GPUs', mutate: (p) => { p.prePost.dp = 2; }, field: 'prePost.dp' },
    { name: 'no stages', mutate: (p) => { p.stages = []; }, field: 'stages' },
    { name: 'an unknown plan version', mutate: (p) => { p.version = 2; }, field: 'version' },
    { name: 'a non-boolean sequenceParallel', mutate: (p) => { p.workload.sequenceParallel = 'yes' as never; }, field: 'workload.sequenceParallel' },
    { name: 'a non-boolean tpCommOverlap', mutate: (p) => { p.workload.sequenceParallel = true; p.workload.tpCommOverlap = 1 as never; }, field: 'workload.tpCommOverlap' },
    { name: 'tpCommOverlap without sequenceParallel (Megatron rejects it)', mutate: (p) => { p.workload.tpCommOverlap = true; }, field: 'workload.tpCommOverlap' },
  ];
  it('accepts the smoke plan', () => validatePlan(smokePlan()));
  for (const c of table) {
    it(`rejects ${c.name} (field ${c.field})`, () => {
      const p = structuredClone(smokePlan());
      c.mutate(p);
      assert.throws(
        () => validatePlan(p),
        (e: unknown) => {
          assert.ok(isMistError(e) && e.code === 'BAD_INPUT', String(e));
          assert.ok(e.message.startsWith(`${c.field}:`), `message "${e.message}" should name ${c.field}`);
          return true;
        },
      );
    });
  }
});

describe('tuner/predict: predictions', () => {
  it('the Mist smoke case (GPT-1.3B no flash, 1×2 L4, G=16, [12,12], ckpt [5,0], b=2) is within 15% of the measured 9.93 s', () => {
    const r = predictPlan(smokePlan(), hardwareFor('l4-24gb'));
    assert.ok(r.fits, String(r.reason));
    const err = Math.abs(r.iterationSeconds - 9.9345) / 9.9345;
    assert.ok(err <= 0.15, `predicted ${r.iterationSeconds.toFixed(3)} s vs measured 9.93 s (${(100 * err).toFixed(1)}%)`);
    assert.equal(r.stages.length, 2);
    for (const s of r.stages) assert.ok(s.peakMemoryBytes > 10 * 2 ** 30 && s.peakMemoryBytes < 22.488 * 2 ** 30);
  });

  it("Megatron's best smoke plan (G=2, b=8, dp=2, full recompute) predicts its measured peak 19,255–19,503 MB within 5% and time within 15% of 11.33 s", () => {
    const p = smokePlan();
    p.gradAccum = 2;
    p.stages = [{ layers: [0, 23], nodes: 1, gpusPerNode: 2, dp: 2, tp: 1, microBatch: 8, zero: 1, ckpt: { mode: 'full' }, offload: { ...off } }];
    p.prePost = { dp: 2, tp: 1, zero: 1 };
    const r = predictPlan(p, hardwareFor('l4-24gb'));
    const mb = r.stages[0]!.peakMemoryBytes / 2 ** 20;
    assert.ok(Math.abs(mb - 19379) / 19379 < 0.05, `${mb.toFixed(0)} MB`);
    assert.ok(Math.abs(r.iterationSeconds - 11.329) / 11.329 < 0.15, `${r.iterationSeconds}`);
  });

  it('a tiny-gpt plan fits on cpu, with consistent reported metrics', () => {
    const plan = uniformPlan({ model: 'tiny-gpt', gpu: 'cpu', nodes: 1, gpusPerNode: 2, globalBatch: 8, tp: 1, pp: 2, dp: 1, microBatch: 2, zero: 1, ckpt: 'none', flash: false });
    const hw = hardwareFor('cpu');
    const r = predictPlan(plan, hw);
    assert.equal(r.fits, true);
    assert.equal(r.reason, null);
    assert.ok(r.iterationSeconds > 0 && Number.isFinite(r.iterationSeconds));
    assert.equal(r.tokensPerSecond, (8 * 64) / r.iterationSeconds);
    const mf = modelFlopsPerIteration(plan.model, 8, 64);
    assert.equal(r.modelFlopsPerIteration, mf);
    assert.equal(r.hardwareFlopsPerIteration, mf, 'no recompute → hardware = model FLOPs');
    assert.ok(Math.abs(r.mfu - mf / (r.iterationSeconds * 2 * hw.peakFlops)) < 1e-15);
    assert.match(String(r.flopsConvention), /72·B·s·L·h²/);
    assert.equal(r.memoryCapacityBytes, hw.memoryBytes * hw.usableMemoryFraction);
  });

  it('recompute shows in hardware FLOPs, not in model FLOPs', () => {
    const base = { model: 'tiny-llama', gpu: 'cpu', nodes: 1, gpusPerNode: 1, globalBatch: 4, tp: 1, pp: 1, dp: 1, microBatch: 1, flash: true } as const;
    const none = predictPlan(uniformPlan({ ...base, ckpt: 'none' }), hardwareFor('cpu'));
    const full = predictPlan(uniformPlan({ ...base, ckpt: 'full' }), hardwareFor('cpu'));
    const sel = predictPlan(uniformPlan({ ...base, ckpt: 'selective' }), hardwareFor('cpu'));
    assert.equal(none.modelFlopsPerIteration, full.modelFlopsPerIteration);
    assert.ok((full.hardwareFlopsPerIteration as number) > (sel.hardwareFlopsPerIteration as number));
    assert.ok((sel.hardwareFlopsPerIteration as number) > (none.hardwareFlopsPerIteration as number));
    assert.ok(full.iterationSeconds > none.iterationSeconds);
    assert.ok(full.stages[0]!.peakMemoryBytes < none.stages[0]!.peakMemoryBytes);
  });

  it('norms and pointwise recomputation: less memory than none, more than full; a little slower than none, much faster than full', () => {
    const hw = hardwareFor('a100-40gb');
    const base = { model: 'gpt3-1.3b', gpu: 'a100-40gb', nodes: 1, gpusPerNode: 1, globalBatch: 8, tp: 1, pp: 1, dp: 1, microBatch: 2, flash: true } as const;
    const p = (ckpt: 'none' | 'norms' | 'pointwise' | 'full') => predictPlan(uniformPlan({ ...base, ckpt }), hw);
    const [none, norms, pw, full] = [p('none'), p('norms'), p('pointwise'), p('full')];
    const peak = (r: typeof none) => r.stages[0]!.peakMemoryBytes;
    assert.ok(peak(pw) < peak(norms) && peak(norms) < peak(none) && peak(pw) > peak(full), `${peak(full)} < ${peak(pw)} < ${peak(norms)} < ${peak(none)}`);
    assert.ok(pw.iterationSeconds > norms.iterationSeconds && norms.iterationSeconds > none.iterationSeconds);
    assert.ok(pw.iterationSeconds - none.iterationSeconds < 0.1 * (full.iterationSeconds - none.iterationSeconds), 'norms and activation functions are a small part of a layer');
    // with flash the core is not recomputed: pointwise adds no FLOPs
    assert.equal(pw.hardwareFlopsPerIteration, none.hardwareFlopsPerIteration);
    // "layers" with "others": the last 12 layers fully, the other 12 pointwise
    const mixed = uniformPlan({ ...base, ckpt: 12 });
    const layersOnly = predictPlan(mixed, hw);
    mixed.stages[0]!.ckpt = { mode: 'layers', count: 12, others: 'pointwise' };
    const both = predictPlan(mixed, hw);
    assert.ok(peak(both) < peak(layersOnly) && both.iterationSeconds > layersOnly.iterationSeconds);
  });

  it('ckpt.others is checked: a known partial mode, and only with mode "layers"', () => {
    const plan = uniformPlan({ model: 'tiny-llama', gpu: 'cpu', nodes: 1, gpusPerNode: 1, globalBatch: 4, tp: 1, pp: 1, dp: 1, microBatch: 1, ckpt: 2 });
    plan.stages[0]!.ckpt = { mode: 'layers', count: 2, others: 'some' as 'pointwise' };
    assert.throws(() => predictPlan(plan, hardwareFor('cpu')), /stages\[0\]\.ckpt\.others: unknown "some"; valid: selective, norms, pointwise/);
    plan.stages[0]!.ckpt = { mode: 'full', others: 'pointwise' };
    assert.throws(() => predictPlan(plan, hardwareFor('cpu')), /stages\[0\]\.ckpt\.others: applies only to mode "layers"/);
  });

  it('an infeasible plan is a result whose reason names the stage and the shortfall', () => {
    const plan = uniformPlan({ model: 'gpt3-175b', gpu: 'a100-80gb', nodes: 1, gpusPerNode: 8, globalBatch: 16, tp: 8, pp: 1, dp: 1, microBatch: 1, zero: 1, ckpt: 'full', flash: true });
    const r = predictPlan(plan, hardwareFor('a100-80gb'));
    assert.equal(r.fits, false);
    assert.match(String(r.reason), /^stage 0 needs \d+\.\d GiB\/GPU, capacity 76\.0 GiB \(short by \d+\.\d GiB\)$/);
  });
});

describe('tuner/predict: uniformPlan', () => {
  const splits = [
    { L: 24, pp: 2, want: [[0, 11], [12, 23]] },
    { L: 10, pp: 4, want: [[0, 1], [2, 3], [4, 6], [7, 9]] },
    { L: 5, pp: 5, want: [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]] },
    { L: 7, pp: 1, want: [[0, 6]] },
  ];
  for (const c of splits) it(`splits ${c.L} layers over ${c.pp} stages with the remainder on the last stages`, () => assert.deepEqual(uniformSplit(c.L, c.pp), c.want));

  it('builds a valid plan from flags, deriving gradAccum and prePost from the stages', () => {
    const p = uniformPlan({ model: 'llama2-7b', gpu: 'a100-80gb', nodes: 2, gpusPerNode: 8, globalBatch: 64, tp: 2, pp: 2, dp: 4, microBatch: 2, zero: 1, ckpt: 3, flash: true });
    assert.equal(p.gradAccum, 8);
    assert.deepEqual(p.prePost, { dp: 4, tp: 2, zero: 1 });
    assert.deepEqual(p.stages.map((s) => [s.nodes, s.gpusPerNode]), [[1, 8], [1, 8]]);
    assert.deepEqual(p.stages[0]!.ckpt, { mode: 'layers', count: 3 });
    validatePlan(p);
  });

  it('rejects a mesh that does not multiply out, naming the field', () => {
    assert.throws(() => uniformPlan({ model: 'tiny-gpt', gpu: 'cpu', nodes: 1, gpusPerNode: 4, globalBatch: 8, tp: 1, pp: 2, dp: 1 }), (e: unknown) => isMistError(e) && e.message.startsWith('dp:'));
  });
});

describe('tuner/predict: memory feasibility (allocated peak × allocator margin ≤ 0.95 × device memory)', () => {
  for (const c of VALIDATION_CASES) {
    it(`${c.name} ran, so it fits`, () => {
      const r = predictPlan(c.plan, hardwareFor(c.plan.cluster.gpu));
      assert.equal(r.fits, true, String(r.reason));
    });
  }

  const noSp: Array<{ label: string; fits: boolean }> = [
    { label: '70b', fits: true },
    { label: '119b', fits: false },
    { label: '177b', fits: false },
    { label: '462b', fits: false },
  ];
  for (const c of noSp) {
    it(`Megatron-Core ${c.label} without sequence parallelism ${c.fits ? 'still fits' : 'does not fit (its activations are not sharded by tp)'}`, () => {
      const plan = structuredClone(VALIDATION_CASES.find((x) => x.name === `megatron-h100/gpt-${c.label}`)!.plan);
      plan.workload.sequenceParallel = false;
      plan.workload.tpCommOverlap = false;
      const r = predictPlan(plan, hardwareFor('h100-80gb'));
      assert.equal(r.fits, c.fits, String(r.reason));
    });
  }

  const impossible = [
    { name: 'GPT-7B on one L4 even with full recompute (16 B/param of state alone exceed 24 GB)', plan: () => uniformPlan({ model: { preset: 'gpt3-6.7b', heads: 32, vocab: 50304 } as never, gpu: 'l4-24gb', nodes: 1, gpusPerNode: 1, globalBatch: 8, tp: 1, pp: 1, dp: 1, microBatch: 1, zero: 1, ckpt: 'full', flash: true }) },
    { name: 'GPT-3 175B on 8 H100 at tp 8 with sequence parallelism', plan: () => uniformPlan({ model: 'gpt3-175b', gpu: 'h100-80gb', nodes: 1, gpusPerNode: 8, globalBatch: 8, tp: 8, pp: 1, dp: 1, microBatch: 1, zero: 1, ckpt: 'full', flash: true, sequenceParallel: true, tpCommOverlap: true }) },
    { name: 'Mist GPT-1.3B smoke plan at b = 16 without recompute', plan: () => uniformPlan({ model: gpt13, gpu: 'l4-24gb', nodes: 1, gpusPerNode: 2, globalBatch: 32, tp: 1, pp: 1, dp: 2, microBatch: 16, zero: 1, ckpt: 'none', flash: false }) },
  ];
  for (const c of impossible) {
    it(`still refuses ${c.name}`, () => {
      const r = predictPlan(c.plan(), hardwareFor(c.plan().cluster.gpu));
      assert.equal(r.fits, false);
      assert.match(String(r.reason), /^stage \d+ needs/);
    });
  }
});

describe('tuner/predict: sequence parallelism and TP overlap flags', () => {
  const base = { model: resolveModel({ arch: 'gpt', layers: 8, hidden: 4096, heads: 32, vocab: 50304, seqLen: 2048 }), gpu: 'h100-80gb', nodes: 1, gpusPerNode: 8, globalBatch: 16, tp: 8, pp: 1, dp: 1, microBatch: 1, zero: 1 as const, ckpt: 'none' as const, flash: true, dropout: 0.1 };
  it('uniformPlan writes the flags into the workload only when set', () => {
    assert.deepEqual(uniformPlan(base).workload, { flash: true, dropout: 0.1, gradDtype: 'bf16' });
    assert.deepEqual(uniformPlan({ ...base, sequenceParallel: true, tpCommOverlap: true }).workload, { flash: true, dropout: 0.1, gradDtype: 'bf16', sequenceParallel: true, tpCommOverlap: true });
  });
  it('at tp 8: SP lowers the peak; SP + overlap is faster than SP alone, which is faster than plain TP', () => {
    const hw = hardwareFor('h100-80gb');
    const plain = predictPlan(uniformPlan(base), hw);
    const sp = predictPlan(uniformPlan({ ...base, sequenceParallel: true }), hw);
    const both = predictPlan(uniformPlan({ ...base, sequenceParallel: true, tpCommOverlap: true }), hw);
    assert.ok(sp.stages[0]!.peakMemoryBytes < plain.stages[0]!.peakMemoryBytes);
    assert.ok(sp.iterationSeconds < plain.iterationSeconds, `${sp.iterationSeconds} < ${plain.iterationSeconds}`);
    assert.ok(both.iterationSeconds < sp.iterationSeconds, `${both.iterationSeconds} < ${sp.iterationSeconds}`);
  });
  it('explicit false flags predict exactly as absent ones', () => {
    const hw = hardwareFor('h100-80gb');
    const p = uniformPlan(base);
    const q = structuredClone(p);
    q.workload.sequenceParallel = false;
    q.workload.tpCommOverlap = false;
    assert.deepEqual(predictPlan(q, hw), predictPlan(p, hw));
  });
});
