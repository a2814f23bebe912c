import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isMistError } from '../../../protocol/src/errors.js';
import type { ModelSpec } from '../../../controller/src/domain/model.js';
import type { Plan } from '../../../controller/src/domain/plan.js';
import { candidateRows, compileStageModel, outputArrays } from '../../../controller/src/tuner/cost.js';
import { DpSolver } from '../../../controller/src/tuner/dp-solver.js';
import { hardwareFor } from '../../../controller/src/tuner/hardware.js';
import { resolveModel } from '../../../controller/src/tuner/model.js';
import { predictPlan } from '../../../controller/src/tuner/predict.js';
import { tune, type TuneRequest, type TuneResult } from '../../../controller/src/tuner/search.js';
import { enumerateShapes, layerChoices, parsePins, uniformMesh } from '../../../controller/src/tuner/space.js';
import { sampleWeights, paretoFront } from '../../../controller/src/tuner/pareto.js';
import { VALIDATION_CASES } from '../../../bench/validation-cases.js';

let clock = 0;
const deps = () => ({ solver: new DpSolver(), now: () => clock });

function request(model: ModelSpec | string, gpu: string, nodes: number, gpusPerNode: number, globalBatch: number, over: Partial<TuneRequest> = {}): TuneRequest {
  const m = typeof model === 'string' ? resolveModel(model) : model;
  return {
    model: m,
    cluster: { gpu, nodes, gpusPerNode },
    hw: hardwareFor(gpu),
    globalBatch,
    seqLen: m.seqLen,
    workload: { flash: true, dropout: 0, gradDtype: 'bf16' },
    space: 'mist',
    baselines: false,
    ...over,
  };
}

function gpusOf(plan: Plan): number {
  return plan.stages.reduce((a, s) => a + s.nodes * s.gpusPerNode, 0);
}

function assertSound(plan: Plan, req: TuneRequest): void {
  const p = plan.predicted!;
  assert.ok(p.fits, `plan does not fit: ${p.reason}`);
  assert.equal(gpusOf(plan), req.cluster.nodes * req.cluster.gpusPerNode);
  const s0 = plan.stages[0]!;
  assert.equal(s0.dp * s0.microBatch * plan.gradAccum, req.globalBatch);
  const cap = req.hw.memoryBytes * req.hw.usableMemoryFraction;
  for (const st of p.stages) assert.ok((st as unknown as { requiredMemoryBytes: number }).requiredMemoryBytes <= cap);
}

describe('tuner search: space', () => {
  it('uniform_mesh follows mist.md §1', () => {
    assert.deepEqual(uniformMesh(2, 4, 8), { nodes: 2, gpusPerNode: 8 });
    assert.deepEqual(uniformMesh(8, 4, 8), { nodes: 1, gpusPerNode: 4 });
    assert.equal(uniformMesh(3, 4, 8), null);
    assert.equal(uniformMesh(3, 1, 4), null);
  });

  it('layer-count window is round(L/S) ± 2 within [1, L − S + 1]', () => {
    assert.deepEqual(layerChoices(24, 2, 16, false), [10, 11, 12, 13, 14]);
    assert.deepEqual(layerChoices(4, 4, 8, false), [1]);
    assert.deepEqual(layerChoices(24, 1, 1, false), [24]);
  });

  it('shapes: tp ≤ GPUs per node dividing heads, G a power of two ≥ S, dp · b · G = batch', () => {
    const m = resolveModel('gpt3-1.3b');
    const shapes = enumerateShapes(m, 2, 4, 64, { microBatches: [1, 2, 4, 8] }, {});
    assert.ok(shapes.length > 0);
    for (const s of shapes) {
      assert.ok(s.tp <= 4 && m.heads % s.tp === 0);
      assert.ok(s.G >= s.S && (s.G & (s.G - 1)) === 0);
      assert.equal(s.dp * s.b * s.G, 64);
      assert.equal(s.dp * s.tp * s.S, 8);
    }
  });

  it('pins parse as in the Plan, and bad keys or values name the pin and the valid values', () => {
    assert.deepEqual(parsePins('tp=2,pp=2,ckpt=full,layers=10+14,offloadOptimizer=0.5,zero=3'), { tp: 2, pp: 2, ckpt: 'full', layers: [10, 14], offloadOptimizer: 0.5, zero: 3 });
    assert.deepEqual(parsePins('ckpt=3'), { ckpt: 3 });
    for (const [text, re] of [
      ['foo=1', /--pin foo: unknown pin; valid keys: tp, pp/],
      ['zero=4', /--pin zero: invalid value "4"; valid: 0, 1, 2 or 3/],
      ['ckpt=some', /--pin ckpt: invalid value "some"; valid: none, selective, norms, pointwise, full/],
      ['offloadWeights=1.5', /--pin offloadWeights: invalid value "1.5"; valid: a ratio in \[0, 1\]/],
      ['layers=3+x', /--pin layers/],
      ['tp', /not key=value/],
    ] as const) {
      assert.throws(() => parsePins(text), (e: unknown) => isMistError(e) && e.code === 'BAD_INPUT' && re.test(e.message), text);
    }
  });

  it('Pareto helpers: weighted-sum weights include both extremes; the front is non-dominated', () => {
    const w = sampleWeights(30);
    assert.equal(w.length, 32);
    const xs = [3, 1, 2, 2, 4];
    const ys = [1, 3, 2, 1.5, 0.5];
    assert.deepEqual(paretoFront(xs, ys), [1, 3, 0, 4]);
  });

  it('stage memory is affine in the in-flight micro-batches p (the search interpolates it)', () => {
    const hw = hardwareFor('l4-24gb');
    for (const position of ['first', 'middle'] as const) {
      const sm = compileStageModel({ model: resolveModel('gpt3-2.7b'), seqLen: 2048, workload: { flash: false, dropout: 0, gradDtype: 'bf16' }, hw, position });
      const rows = candidateRows(3, { b: 2, dp: 2, tp: 1, ore: 1, ppdp: 2, ppzero: 1 });
      rows.ao[1] = 0.5;
      rows.sel[2] = 1;
      const prepared = sm.prepare(rows, { G: 16, nodes: 1, gpn: 2, cross: 0 }, 3);
      const at = (p: number): Float64Array => {
        const out = outputArrays(3);
        sm.evalCell(prepared, { l: 6, c: 2, p }, out);
        return out.required.slice();
      };
      const r0 = at(0);
      const r1 = at(1);
      const r7 = at(7);
      for (let i = 0; i < 3; i++) assert.ok(Math.abs(r0[i]! + 7 * (r1[i]! - r0[i]!) - r7[i]!) <= 1e-6 * r7[i]!, `${position} row ${i}`);
    }
  });
});

describe('tuner search: plans', function () {
  this.timeout(120_000);

  const mistL4 = VALIDATION_CASES.filter((c) => c.set === 'mist-l4' && c.plan.space === 'mist');
  for (const c of mistL4) {
    it(`${c.name}: our plan (TP pinned to 1) is predicted at least as fast as Mist's published plan`, async () => {
      const hw = hardwareFor(c.plan.cluster.gpu);
      const theirs = predictPlan(c.plan, hw);
      const r = await tune(
        { ...request(c.plan.model, c.plan.cluster.gpu, c.plan.cluster.nodes, c.plan.cluster.gpusPerNode, c.plan.globalBatch), seqLen: c.plan.seqLen, workload: c.plan.workload, pins: { tp: 1 } },
        deps(),
      );
      assert.ok(r.plan, r.infeasible?.reason);
      assertSound(r.plan, request(c.plan.model, c.plan.cluster.gpu, c.plan.cluster.nodes, c.plan.cluster.gpusPerNode, c.plan.globalBatch));
      const ours = r.plan.predicted!.iterationSeconds;
      const ref = theirs.fits ? theirs.iterationSeconds : Infinity;
      assert.ok(ours <= ref * (1 + 1e-9), `ours ${ours.toFixed(3)} s vs Mist's ${theirs.iterationSeconds.toFixed(3)} s (fits ${theirs.fits})`);
      assert.ok(r.plan.stages.every((s) => s.tp === 1));
    });
  }

  it('the Mist README smoke case (GPT-1.3B dims, 1×2 L4, batch 32, no flash): mist beats the best megatron-paper plan', async () => {
    const smoke = VALIDATION_CASES.find((c) => c.name === 'mist-l4/gpt-1.3b-noflash-smoke-mist')!;
    const base = { ...request(smoke.plan.model, 'l4-24gb', 1, 2, 32), seqLen: 2048, workload: { flash: false, dropout: 0, gradDtype: 'bf16' as const } };
    assert.equal(base.model.layers, 24);
    assert.equal(base.model.hidden, 2048);
    assert.equal(base.model.vocab, 50304);
    const mist = await tune(base, deps());
    const meg = await tune({ ...base, space: 'megatron-paper' }, deps());
    assert.ok(mist.plan && meg.plan);
    assert.equal(meg.plan.space, 'megatron-paper');
    assert.ok(meg.plan.stages.every((s) => s.ckpt.mode === 'full' && s.zero === 1));
    assert.ok(mist.plan.predicted!.iterationSeconds < meg.plan.predicted!.iterationSeconds);
  });

  it('ample memory: no offloading and no recomputation', async () => {
    const req = request('gpt3-1.3b', 'h100-80gb', 1, 8, 64);
    const r = await tune(req, deps());
    assert.ok(r.plan);
    assertSound(r.plan, req);
    for (const s of r.plan.stages) {
      assert.deepEqual(s.offload, { weights: 0, grads: 0, optimizer: 0, activations: 0 });
      assert.equal(s.ckpt.mode, 'none');
    }
  });

  it('a model that fits only with offloading gets offloading, and every stage stays under the cap', async () => {
    const req = request('gpt3-2.7b', 'l4-24gb', 1, 1, 8);
    const without = await tune({ ...req, pins: { offloadOptimizer: 0, offloadWeights: 0, offloadGrads: 0, offloadActivations: 0 } }, deps());
    assert.equal(without.plan, null, 'the case must not fit without offloading');
    const r = await tune(req, deps());
    assert.ok(r.plan, r.infeasible?.reason);
    assertSound(r.plan, req);
    assert.ok(r.plan.stages.some((s) => s.offload.optimizer + s.offload.weights + s.offload.grads + s.offload.activations > 0));
  });

  it('pins are honoured', async () => {
    const req = request('gpt3-1.3b', 'a100-40gb', 1, 4, 32, { pins: parsePins('tp=2,pp=2,zero=1,ckpt=full,layers=10+14,microBatch=2,offloadOptimizer=0.5') });
    const r = await tune(req, deps());
    assert.ok(r.plan, r.infeasible?.reason);
    assertSound(r.plan, req);
    assert.deepEqual(r.plan.stages.map((s) => s.layers), [[0, 9], [10, 23]]);
    for (const s of r.plan.stages) {
      assert.equal(s.tp, 2);
      assert.equal(s.zero, 1);
      assert.equal(s.microBatch, 2);
      assert.equal(s.ckpt.mode, 'full');
      assert.equal(s.offload.optimizer, 0.5);
    }
    const sel = await tune(request('gpt3-1.3b', 'a100-40gb', 1, 4, 32, { pins: { ckpt: 'selective', gradAccum: 8 } }), deps());
    assert.ok(sel.plan);
    assert.equal(sel.plan.gradAccum, 8);
    assert.ok(sel.plan.stages.every((s) => s.ckpt.mode === 'selective'));
  });

  it('bad requests are BAD_INPUT: inconsistent pins, and the exhaustive space beyond its limit', async () => {
    await assert.rejects(tune(request('gpt3-1.3b', 'l4-24gb', 1, 2, 32, { pins: { layers: [10, 10] } }), deps()), /--pin layers: 10\+10 sums to 20, the model has 24 layers/);
    await assert.rejects(tune(request('gpt3-1.3b', 'l4-24gb', 1, 8, 32, { pins: { tp: 3 } }), deps()), /--pin tp/);
    await assert.rejects(tune(request('gpt3-22b', 'l4-24gb', 4, 8, 512, { space: 'exhaustive' }), deps()), /exhaustive search is limited to ≤ 8 GPUs and ≤ 40 layers/);
  });

  it('infeasible is a result: the reason says what is missing, with the closest plan', async () => {
    const r: TuneResult = await tune(request('gpt3-175b', 'l4-24gb', 1, 2, 32), deps());
    assert.equal(r.plan, null);
    assert.match(r.infeasible!.reason, /needs \d+(\.\d)? GiB per GPU with every reduction on .*; capacity \d+(\.\d)? GiB/);
    assert.ok(r.infeasible!.closest);
    assert.equal(r.infeasible!.closest.predicted!.fits, false);
    assert.equal(r.record.status, 'infeasible');
  });

  it('the time budget stops the outer loop gracefully (status feasible)', async () => {
    let t = 0;
    const r = await tune(request('gpt3-6.7b', 'l4-24gb', 1, 8, 128, { timeBudgetSeconds: 1 }), { solver: new DpSolver(), now: () => (t += 0.4) });
    assert.ok(r.plan);
    assert.equal((r.plan.tuner as { status: string }).status, 'feasible');
    assert.ok(r.record.shapes.skippedByBudget > 0);
  });

  it('records the space, the solver status, candidates, seconds, baselines, frontiers and alternatives', async () => {
    const r = await tune(request('gpt3-1.3b', 'l4-24gb', 1, 2, 32, { baselines: true }), deps());
    assert.ok(r.plan);
    assert.equal(r.plan.space, 'mist');
    const t = r.plan.tuner as { seconds: number; candidates: number; solver: string; status: string; baselines: Record<string, { iterationSeconds: number }> };
    assert.equal(t.solver, 'dp');
    assert.equal(t.status, 'optimal');
    assert.ok(t.candidates > 0);
    assert.deepEqual(Object.keys(t.baselines).sort(), ['deepspeed', 'megatron', 'megatron-paper']);
    for (const b of Object.values(t.baselines)) assert.ok(b.iterationSeconds >= r.plan.predicted!.iterationSeconds * (1 - 1e-9));
    assert.equal(r.record.frontiers.length, r.plan.stages.length);
    assert.ok(r.record.frontiers.every((f) => f.points.some((p) => p.chosen)));
    assert.ok(r.record.alternatives.length > 0);
    assert.ok(Math.abs(r.record.alternatives[0]!.iterationSeconds - r.plan.predicted!.iterationSeconds) < 1e-9 * r.plan.predicted!.iterationSeconds);
  });

  it('the baseline spaces keep to their rules', async () => {
    const base = request('gpt3-2.7b', 'l4-24gb', 1, 4, 64);
    const ds = await tune({ ...base, space: 'deepspeed' }, deps());
    assert.ok(ds.plan);
    if (ds.plan.stages.length > 1) assert.ok(ds.plan.stages.every((s) => s.zero === 1 && s.offload.optimizer === 0));
    const mg = await tune({ ...base, space: 'megatron' }, deps());
    assert.ok(mg.plan);
    const s0 = mg.plan.stages[0]!;
    assert.ok(mg.plan.stages.every((s) => s.zero === s0.zero && s.zero <= 1 && s.offload.optimizer === 0 && s.offload.activations === 0));
  });

  it('where memory binds, the mist space recomputes pointwise ops; baseline spaces never do; ckpt=pointwise pins it', async () => {
    const req = { ...request('gpt3-13b', 'l4-24gb', 2, 8, 256, { baselines: true }), workload: { flash: true, dropout: 0, gradDtype: 'bf16' as const } };
    const r = await tune(req, deps());
    assert.ok(r.plan, r.infeasible?.reason);
    assertSound(r.plan, req);
    const pointwise = (ck: { mode: string; others?: string }) => ck.mode === 'pointwise' || ck.others === 'pointwise';
    assert.ok(r.plan.stages.some((s) => pointwise(s.ckpt)), JSON.stringify(r.plan.stages.map((s) => s.ckpt)));
    for (const [space, b] of Object.entries(r.record.baselines)) {
      assert.ok(b.plan, space);
      assert.ok(b.plan.stages.every((s) => !pointwise(s.ckpt) && s.ckpt.others === undefined), space);
    }
    for (const mode of ['pointwise', 'norms'] as const) {
      const pinned = await tune({ ...request('gpt3-1.3b', 'a100-40gb', 1, 4, 32), pins: parsePins(`ckpt=${mode},gradAccum=8`) }, deps());
      assert.ok(pinned.plan);
      assert.ok(pinned.plan.stages.every((s) => s.ckpt.mode === mode));
      const meg = await tune({ ...request('gpt3-1.3b', 'a100-40gb', 1, 4, 32), space: 'megatron', pins: parsePins(`ckpt=${mode},gradAccum=8`) }, deps());
      assert.equal(meg.plan === null, mode === 'pointwise', 'Megatron-LM has norms (--recompute-modules layernorm), not pointwise');
    }
  });

  it('pipelines split their backward where it fits and pays; baseline spaces never do; the splitBackward pin forces or forbids it', async () => {
    const req = request('gpt3-1.3b', 'a100-40gb', 1, 4, 64, { pins: parsePins('pp=4,tp=1'), baselines: true });
    const r = await tune(req, deps());
    assert.ok(r.plan, r.infeasible?.reason);
    assertSound(r.plan, req);
    assert.ok(r.plan.stages.some((s) => s.splitBackward === true), JSON.stringify(r.plan.stages));
    for (const [space, b] of Object.entries(r.record.baselines)) assert.ok(b.plan?.stages.every((s) => s.splitBackward === undefined), space);
    // the same plan without the split is predicted slower: the weight gradients left the pipeline's drain
    const plain = { ...r.plan, stages: r.plan.stages.map(({ splitBackward: _, ...s }) => s) };
    assert.ok(predictPlan(plain, req.hw).iterationSeconds > r.plan.predicted!.iterationSeconds);
    const off = await tune({ ...req, pins: parsePins('pp=4,tp=1,splitBackward=false') }, deps());
    assert.ok(off.plan && off.plan.stages.every((s) => s.splitBackward === undefined));
    assert.ok(off.plan.predicted!.iterationSeconds > r.plan.predicted!.iterationSeconds);
    const on = await tune({ ...req, pins: parsePins('pp=4,tp=1,splitBackward=true') }, deps());
    assert.ok(on.plan && on.plan.stages.every((s) => s.splitBackward === true));
    // one stage gains nothing from a split: unpinned, a single-stage plan never splits
    const one = await tune(request('gpt3-1.3b', 'a100-40gb', 1, 4, 64, { pins: parsePins('pp=1') }), deps());
    assert.ok(one.plan && one.plan.stages.every((s) => s.splitBackward === undefined));
  });

  it('exhaustive is never worse than mist on a small case', async () => {
    const req = request('tiny-gpt', 'l4-24gb', 1, 4, 16);
    const m = await tune(req, deps());
    const e = await tune({ ...req, space: 'exhaustive' }, deps());
    assert.ok(m.plan && e.plan);
    assert.ok(e.plan.predicted!.iterationSeconds <= m.plan.predicted!.iterationSeconds * (1 + 1e-9));
  });

  it('property: every plan fits, uses exactly the GPUs given, and dp · microBatch · gradAccum = globalBatch', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          arch: fc.constantFrom('gpt' as const, 'llama' as const),
          layers: fc.integer({ min: 2, max: 8 }),
          hidden: fc.constantFrom(64, 128, 256),
          nodes: fc.constantFrom(1, 2),
          gpusPerNode: fc.constantFrom(1, 2, 4),
          batchExp: fc.integer({ min: 0, max: 4 }),
          flash: fc.boolean(),
        }),
        async (x) => {
          const model = resolveModel({ preset: x.arch === 'gpt' ? 'tiny-gpt' : 'tiny-llama', layers: x.layers, hidden: x.hidden, heads: 4, kvHeads: x.arch === 'gpt' ? 4 : 2, ffnHidden: 4 * x.hidden });
          const gpus = x.nodes * x.gpusPerNode;
          const req = { ...request(model, 'l4-24gb', x.nodes, x.gpusPerNode, gpus * 2 ** x.batchExp), workload: { flash: x.flash, dropout: 0, gradDtype: 'bf16' as const } };
          const r = await tune(req, deps());
          if (!r.plan) {
            assert.ok(r.infeasible && r.infeasible.reason.length > 0);
            return;
          }
          assertSound(r.plan, req);
        },
      ),
      { numRuns: 12, seed: 7 },
    );
  });
});
