import assert from 'node:assert/strict';
import { VALIDATION_CASES } from '../../../bench/validation-cases.js';
import { GPU_TYPES } from '../../../controller/src/tuner/hardware.js';

describe('bench/validation-cases', () => {
  it('holds the 11 Mist L4 cases and the 9 Megatron-Core H100 rows, with unique names', () => {
    assert.equal(VALIDATION_CASES.filter((c) => c.set === 'mist-l4').length, 11);
    assert.equal(VALIDATION_CASES.filter((c) => c.set === 'megatron-h100').length, 9);
    assert.equal(new Set(VALIDATION_CASES.map((c) => c.name)).size, VALIDATION_CASES.length);
  });

  for (const c of VALIDATION_CASES) {
    it(`${c.name}: a consistent plan with a published time`, () => {
      const p = c.plan;
      const m = p.model;
      assert.ok((GPU_TYPES as readonly string[]).includes(p.cluster.gpu));
      assert.equal(p.seqLen, m.seqLen);
      // layers: contiguous, inclusive, covering the model
      let next = 0;
      for (const s of p.stages) {
        assert.equal(s.layers[0], next);
        assert.ok(s.layers[1] >= s.layers[0]);
        next = s.layers[1] + 1;
        const n = s.layers[1] - s.layers[0] + 1;
        if (s.ckpt.mode === 'layers') assert.ok(s.ckpt.count !== undefined && s.ckpt.count > 0 && s.ckpt.count < n);
        // dp × tp = the stage's GPUs; dp × b × G = global batch (Mist's verify_with_other_config)
        assert.equal(s.dp * s.tp, s.nodes * s.gpusPerNode);
        assert.equal(s.dp * s.microBatch * p.gradAccum, p.globalBatch);
        assert.equal(m.heads % s.tp, 0);
        for (const r of Object.values(s.offload)) assert.ok(r >= 0 && r <= 1);
      }
      assert.equal(next, m.layers);
      assert.equal(p.stages.reduce((a, s) => a + s.nodes * s.gpusPerNode, 0), p.cluster.nodes * p.cluster.gpusPerNode);
      assert.ok(p.gradAccum >= p.stages.length, '1F1B needs G ≥ S');
      assert.equal(p.prePost.dp, p.stages[p.stages.length - 1].dp);
      assert.ok(c.published.iterationSeconds > 0);
      if (c.published.tokensPerSecond !== undefined) {
        assert.ok(Math.abs(c.published.tokensPerSecond * c.published.iterationSeconds - p.globalBatch * p.seqLen) < 1e-6 * p.globalBatch * p.seqLen);
      }
      assert.ok(c.source.length > 0);
      assert.equal(p.model.tiedEmbeddings, false);
    });
  }

  it('Mist cases carry Mist\'s measured times and tokens/s (mist.md §9.1)', () => {
    const byName = new Map(VALIDATION_CASES.map((c) => [c.name, c]));
    assert.equal(byName.get('mist-l4/gpt-1.3b-noflash')?.published.iterationSeconds, 9.6776);
    assert.equal(Math.round(byName.get('mist-l4/gpt-1.3b-noflash')?.published.tokensPerSecond ?? 0), 6772);
    assert.equal(Math.round(byName.get('mist-l4/gpt-7b-flash')?.published.tokensPerSecond ?? 0), 6677);
    assert.equal(byName.get('mist-l4/gpt-1.3b-noflash-smoke-mist')?.published.iterationSeconds, 9.9345);
    const gpt7 = byName.get('mist-l4/gpt-7b-noflash')!.plan;
    assert.deepEqual(gpt7.stages.map((s) => s.offload.optimizer), [0.125, 0.875, 0.875, 0.375]);
    assert.deepEqual(gpt7.stages.map((s) => s.ckpt), [{ mode: 'layers', count: 5 }, { mode: 'layers', count: 1 }, { mode: 'none' }, { mode: 'none' }]);
    for (const c of VALIDATION_CASES.filter((x) => x.set === 'mist-l4')) {
      assert.equal(c.plan.workload.gradDtype, 'bf16');
      assert.equal(c.plan.workload.dropout, 0);
    }
  });

  it("Megatron rows reproduce validation.md's derived iteration times and tokens/s/GPU", () => {
    const want: Record<string, [number, number]> = {
      '1.7b': [0.45, 36.3e3], '7.1b': [0.8, 10.2e3], '16b': [0.85, 4.8e3], '32b': [0.89, 2.3e3], '70b': [2.18, 941],
      '119b': [3.65, 562], '177b': [5.26, 389], '314b': [8.4, 244], '462b': [12.72, 161],
    };
    for (const c of VALIDATION_CASES.filter((x) => x.set === 'megatron-h100')) {
      const label = c.name.replace('megatron-h100/gpt-', '');
      const [t, tokPerGpu] = want[label];
      const gpus = c.plan.cluster.nodes * c.plan.cluster.gpusPerNode;
      assert.ok(Math.abs(c.published.iterationSeconds - t) < 0.01, `${label}: ${c.published.iterationSeconds}`);
      assert.ok(Math.abs(c.published.tokensPerSecond! / gpus - tokPerGpu) / tokPerGpu < 0.01, label);
      assert.equal(c.plan.workload.gradDtype, 'fp32');
      assert.equal(c.plan.workload.flash, true);
      assert.ok(c.assumptions.some((a) => a.startsWith('micro-batch 1')));
    }
  });

  it('Megatron rows carry the published --tp-comm-overlap and the sequence parallelism it requires; Mist rows neither (mist.md §2.3)', () => {
    for (const c of VALIDATION_CASES) {
      const w = c.plan.workload;
      if (c.set === 'megatron-h100') {
        assert.equal(w.sequenceParallel, true, c.name);
        assert.equal(w.tpCommOverlap, true, c.name);
        assert.ok(!c.assumptions.some((a) => /cannot express|no knob/.test(a)), `${c.name}: stale assumption`);
      } else {
        assert.equal(w.sequenceParallel ?? false, false, c.name);
        assert.equal(w.tpCommOverlap ?? false, false, c.name);
      }
    }
  });
});
