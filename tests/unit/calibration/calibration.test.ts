import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isMistError } from '../../../protocol/src/errors.js';
import type { Plan } from '../../../controller/src/domain/plan.js';
import { CATALOG, hardwareFor } from '../../../controller/src/tuner/hardware.js';
import type { HardwareParams } from '../../../controller/src/tuner/hardware-types.js';
import { predictPlan, uniformPlan, type UniformPlanOptions } from '../../../controller/src/tuner/predict.js';
import {
  PARAM_NAMES,
  calibratedHardware,
  fitCalibration,
  sampleFromProfiles,
  scoreCalibration,
  splitSteps,
  type Calibration,
  type CalibrationSample,
} from '../../../controller/src/calibration/index.js';

// ------------------------------------------------------------------------------------------------------------
// Synthetic ground truth: "measured" times are predictions on a PERTURBED hardware.

interface Truth {
  /** GEMM efficiency × compute (t0 per GEMM kept). */
  compute?: number;
  /** per-GEMM fixed time × layerFixed */
  layerFixed?: number;
  /** collective/P2P speed × collective (bandwidth ×, latency ÷) */
  collective?: number;
  /** PCIe speed × offload */
  offload?: number;
  /** seconds added to the per-iteration overhead */
  overheadAdd?: number;
}

/** Built independently of calibration/scales.ts, from the physical meaning of each perturbation. */
function perturbed(gpu: string, t: Truth): HardwareParams {
  const hw = hardwareFor(gpu);
  const c = t.compute ?? 1;
  const t0 = hw.gemm.halfFlops / (hw.peakFlops * hw.gemm.maxEfficiency);
  // keep the efficiency ≤ 1 for validateHardware by slowing the peak instead when needed (same times)
  const eff = hw.gemm.maxEfficiency * c;
  if (eff <= 1) hw.gemm.maxEfficiency = eff;
  else {
    hw.peakFlops *= eff;
    hw.gemm.maxEfficiency = 1;
  }
  hw.gemm.halfFlops = hw.peakFlops * hw.gemm.maxEfficiency * t0 * (t.layerFixed ?? 1);
  for (const l of Object.values(hw.collective)) {
    l.bandwidth *= t.collective ?? 1;
    l.latency /= t.collective ?? 1;
  }
  for (const l of [hw.h2d, hw.d2h]) {
    l.bandwidth *= t.offload ?? 1;
    l.latency /= t.offload ?? 1;
  }
  hw.iterationOverheadSeconds += t.overheadAdd ?? 0;
  return hw;
}

/** n measured steps of `plan` on `hw`, each × (1 + noise[i]) (stage times × (1 + stageNoise[i])). */
function measure(plan: Plan, hw: HardwareParams, n = 6, noise: number[] = [], stageNoise: number[] = noise): CalibrationSample {
  const p = predictPlan(plan, hw);
  const stage = p.stages.map((s) => plan.gradAccum * s.stableSeconds + s.deltaSeconds);
  const k = (a: number[], i: number) => 1 + (a.length ? a[i % a.length]! : 0);
  return {
    plan,
    measured: {
      stepSeconds: Array.from({ length: n }, (_, i) => p.iterationSeconds * k(noise, i)),
      stageForwardSeconds: Array.from({ length: n }, (_, i) => stage.map((x) => (x / 3) * k(stageNoise, i + 1))),
      stageBackwardSeconds: Array.from({ length: n }, (_, i) => stage.map((x) => ((2 * x) / 3) * k(stageNoise, i + 1))),
    },
  };
}

function stepsOnly(s: CalibrationSample): CalibrationSample {
  return { plan: s.plan, measured: { stepSeconds: s.measured.stepSeconds } };
}

const plan = (gpu: string, o: Omit<UniformPlanOptions, 'gpu'>): Plan => uniformPlan({ gpu, ...o });

function gpuPlans(gpu: string): { fit: Plan[]; heldOut: Plan[] } {
  return {
    fit: [
      plan(gpu, { model: 'gpt3-1.3b', nodes: 1, gpusPerNode: 1, globalBatch: 8, tp: 1, pp: 1, dp: 1, microBatch: 1, ckpt: 'full', offload: { optimizer: 1, weights: 0.5 } }),
      plan(gpu, { model: 'gpt3-1.3b', nodes: 1, gpusPerNode: 4, globalBatch: 32, tp: 1, pp: 1, dp: 4, microBatch: 2, ckpt: 'full', offload: { optimizer: 0.5 } }),
      plan(gpu, { model: 'gpt3-2.7b', nodes: 1, gpusPerNode: 2, globalBatch: 16, tp: 2, pp: 1, dp: 1, microBatch: 4, ckpt: 'full' }),
      plan(gpu, { model: 'gpt3-1.3b', nodes: 1, gpusPerNode: 8, globalBatch: 64, tp: 2, pp: 2, dp: 2, microBatch: 4, ckpt: 'full' }),
      plan(gpu, { model: 'gpt3-2.7b', nodes: 2, gpusPerNode: 4, globalBatch: 64, tp: 2, pp: 1, dp: 4, microBatch: 2, ckpt: 'full' }),
    ],
    heldOut: [
      plan(gpu, { model: 'llama3-8b', nodes: 2, gpusPerNode: 8, globalBatch: 64, tp: 8, pp: 2, dp: 1, microBatch: 1, ckpt: 'full' }),
      plan(gpu, { model: 'lvm-1b', nodes: 1, gpusPerNode: 8, globalBatch: 64, tp: 1, pp: 1, dp: 8, microBatch: 2, ckpt: 'selective' }),
      plan(gpu, { model: 'gpt3-6.7b', nodes: 1, gpusPerNode: 8, globalBatch: 32, tp: 2, pp: 4, dp: 1, microBatch: 1, ckpt: 'full', offload: { optimizer: 0.3 } }),
    ],
  };
}

const cpuPlans = {
  llm: plan('cpu', { model: 'tiny-llama', nodes: 1, gpusPerNode: 2, globalBatch: 8, tp: 1, pp: 1, dp: 2, microBatch: 2 }),
  llmSolo: plan('cpu', { model: 'tiny-llama', nodes: 1, gpusPerNode: 1, globalBatch: 8, tp: 1, pp: 1, dp: 1, microBatch: 2 }),
  lvm: plan('cpu', { model: 'tiny-lvm', nodes: 1, gpusPerNode: 2, globalBatch: 8, tp: 1, pp: 1, dp: 2, microBatch: 2 }),
  lvmPipe: plan('cpu', { model: 'tiny-lvm', nodes: 1, gpusPerNode: 2, globalBatch: 8, tp: 1, pp: 2, dp: 1, microBatch: 2 }),
  gptTp: plan('cpu', { model: 'tiny-gpt', nodes: 1, gpusPerNode: 2, globalBatch: 8, tp: 2, pp: 1, dp: 1, microBatch: 4 }),
};

const TRUTH: Truth = { compute: 0.6, overheadAdd: 0.2, collective: 0.5, offload: 0.5 };

function value(cal: Calibration, name: (typeof PARAM_NAMES)[number]): number {
  return cal.fitted.values[cal.fitted.names.indexOf(name)]!;
}

function status(cal: Calibration, name: (typeof PARAM_NAMES)[number]): string {
  return cal.fitted.status[cal.fitted.names.indexOf(name)]!;
}

function expectBadInput(fn: () => unknown, field: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isMistError(e), `expected a MistError, got ${String(e)}`);
    assert.equal(e.code, 'BAD_INPUT');
    assert.ok(e.message.startsWith(`${field}:`), `expected field "${field}", got "${e.message}"`);
    return true;
  });
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as Record<string, unknown>)) deepFreeze(x);
  }
  return v;
}

/** Numbers reported back by the recovery tests (printed once at the end for the record). */
const record: string[] = [];
after(() => {
  if (record.length) console.log(`      calibration recovery:\n        ${record.join('\n        ')}`);
});

// ------------------------------------------------------------------------------------------------------------

describe('calibration: recovery of perturbed hardware scales (synthetic ground truth)', function () {
  // the property cases fit dozens of calibrations (about 10 s alone on the 2-core machine): a guard, not a timing
  this.timeout(120_000);
  for (const gpu of ['a100-80gb', 'l4-24gb'] as const) {
    it(`${gpu}: fits compute 0.6, collective 0.5, offload 0.5, overhead +0.2 s from 5 plans; held-out models/layouts within 1%`, () => {
      const truth = perturbed(gpu, TRUTH);
      const base = hardwareFor(gpu);
      const { fit, heldOut } = gpuPlans(gpu);
      const cal = fitCalibration(fit.map((p) => measure(p, truth)), base);
      assert.deepEqual(cal.fitted.status, ['fitted', 'fitted', 'fitted', 'fitted', 'fitted'], cal.fitted.reasons.join(' | '));
      assert.ok(Math.abs(value(cal, 'compute') - 0.6) < 0.006, `compute ${value(cal, 'compute')}`);
      assert.ok(Math.abs(value(cal, 'collective') - 0.5) < 0.01, `collective ${value(cal, 'collective')}`);
      assert.ok(Math.abs(value(cal, 'offload') - 0.5) < 0.025, `offload ${value(cal, 'offload')}`);
      assert.ok(Math.abs(value(cal, 'overheadSeconds') - (base.iterationOverheadSeconds + 0.2)) < 0.005, `overhead ${value(cal, 'overheadSeconds')}`);
      assert.ok(Math.abs(value(cal, 'layerFixed') - 1) < 0.1, `layerFixed ${value(cal, 'layerFixed')}`);
      assert.ok(cal.fitted.residualRms < 1e-3 && cal.fitted.residualRmsBefore > 0.2, `rms ${cal.fitted.residualRms} (before ${cal.fitted.residualRmsBefore})`);
      const score = scoreCalibration(cal, heldOut.map((p) => measure(p, truth)), base);
      for (const s of score.samples) {
        assert.ok(Math.abs(s.errorAfter) < 0.01, `${s.plan}: after ${s.errorAfter}`);
        assert.ok(Math.abs(s.errorBefore) > 0.3, `${s.plan}: before ${s.errorBefore}`);
      }
      assert.ok(score.errorBefore < -0.3, 'the default catalog is too fast for the slower truth');
      record.push(
        `${gpu}: compute ${value(cal, 'compute').toFixed(4)} (0.6), layerFixed ${value(cal, 'layerFixed').toFixed(4)} (1), collective ${value(cal, 'collective').toFixed(4)} (0.5), ` +
          `offload ${value(cal, 'offload').toFixed(4)} (0.5), overhead ${value(cal, 'overheadSeconds').toFixed(4)} s (${(base.iterationOverheadSeconds + 0.2).toFixed(2)}); ` +
          `held-out error before ${score.samples.map((s) => (100 * s.errorBefore).toFixed(1)).join('/')}%, after ${score.samples.map((s) => (100 * s.errorAfter).toFixed(3)).join('/')}%`,
      );
    });
  }

  it('cpu: the demo protocol — ONE tiny LLM job (±5% noise), fit on the first half, score on the second, then predict a tiny LVM job', () => {
    const truth = perturbed('cpu', { compute: 0.6, overheadAdd: 0.2, collective: 0.5 });
    const base = hardwareFor('cpu');
    const noise = [0.05, -0.04, 0.03, -0.05, 0.01, 0.04, -0.02, -0.03, 0.02, 0.0, -0.01, 0.05, -0.05, 0.03, 0.01, -0.04];
    const job = measure(cpuPlans.llm, truth, 16, noise, noise.map((x) => -x));
    const { fit, heldOut } = splitSteps(job, 0.5);
    const cal = fitCalibration([fit], base);
    assert.equal(status(cal, 'offload'), 'default');
    assert.notEqual(status(cal, 'compute'), 'default');
    assert.equal(status(cal, 'overheadSeconds'), 'fitted', 'stage times separate the overhead from the compute');
    const second = scoreCalibration(cal, [heldOut], base);
    assert.ok(Math.abs(second.errorAfter) < 0.03, `second half: after ${second.errorAfter}`);
    assert.ok(Math.abs(second.errorBefore) > 0.5, `second half: before ${second.errorBefore}`);
    const lvm = scoreCalibration(cal, [measure(cpuPlans.lvm, truth, 8)], base);
    assert.ok(Math.abs(lvm.errorAfter) < 0.03, `tiny LVM: after ${lvm.errorAfter}`);
    assert.ok(Math.abs(lvm.errorBefore) > 0.5, `tiny LVM: before ${lvm.errorBefore}`);
    assert.ok(Math.abs(value(cal, 'overheadSeconds') - 0.25) < 0.02, `overhead ${value(cal, 'overheadSeconds')}`);
    record.push(
      `cpu demo (1 tiny-llama job, ±5% noise, fit 8 steps): compute ${value(cal, 'compute').toFixed(3)}, layerFixed ${value(cal, 'layerFixed').toFixed(3)}, collective ${value(cal, 'collective').toFixed(3)}, ` +
        `overhead ${value(cal, 'overheadSeconds').toFixed(3)} s (truth 0.6/1/0.5/0.25); second half ${(100 * second.errorBefore).toFixed(1)}% → ${(100 * second.errorAfter).toFixed(2)}%; ` +
        `tiny-lvm ${(100 * lvm.errorBefore).toFixed(1)}% → ${(100 * lvm.errorAfter).toFixed(2)}%`,
    );
  });

  it('cpu: two tiny jobs transfer to other models and layouts (tp = 2, pp = 2) within 3%', () => {
    const truth = perturbed('cpu', { compute: 0.6, overheadAdd: 0.2, collective: 0.5 });
    const base = hardwareFor('cpu');
    const cal = fitCalibration([measure(cpuPlans.llm, truth), measure(cpuPlans.llmSolo, truth)], base);
    const score = scoreCalibration(cal, [measure(cpuPlans.lvmPipe, truth), measure(cpuPlans.gptTp, truth)], base);
    for (const s of score.samples) {
      assert.ok(Math.abs(s.errorAfter) < 0.03, `${s.plan}: after ${s.errorAfter}`);
      assert.ok(Math.abs(s.errorBefore) > 10 * Math.abs(s.errorAfter), `${s.plan}: before ${s.errorBefore}`);
    }
  });

  it('property: random perturbations on a100 are recovered and held-out error shrinks', () => {
    const { fit, heldOut } = gpuPlans('a100-80gb');
    const base = hardwareFor('a100-80gb');
    fc.assert(
      fc.property(
        fc.record({
          compute: fc.double({ min: 0.4, max: 1.15, noNaN: true }),
          collective: fc.double({ min: 0.25, max: 3, noNaN: true }),
          offload: fc.double({ min: 0.3, max: 2, noNaN: true }),
          overheadAdd: fc.double({ min: 0, max: 0.5, noNaN: true }),
        }),
        (t) => {
          const truth = perturbed('a100-80gb', t);
          const cal = fitCalibration(fit.map((p) => measure(p, truth, 2)), base);
          assert.ok(Math.abs(value(cal, 'compute') / t.compute - 1) < 0.02, `compute ${value(cal, 'compute')} vs ${t.compute}`);
          assert.ok(Math.abs(value(cal, 'collective') / t.collective - 1) < 0.05, `collective ${value(cal, 'collective')} vs ${t.collective}`);
          assert.ok(Math.abs(value(cal, 'overheadSeconds') - (0.05 + t.overheadAdd)) < 0.01, `overhead ${value(cal, 'overheadSeconds')} vs ${0.05 + t.overheadAdd}`);
          const s = scoreCalibration(cal, heldOut.map((p) => measure(p, truth, 2)), base);
          assert.ok(s.meanAbsErrorAfter < 0.01, `after ${s.meanAbsErrorAfter}`);
          assert.ok(s.meanAbsErrorAfter <= s.meanAbsErrorBefore + 1e-9, `after ${s.meanAbsErrorAfter} vs before ${s.meanAbsErrorBefore}`);
        },
      ),
      { numRuns: 6 },
    );
  });

  it('property: ±5% multiplicative noise on every step and stage time still improves held-out error (cpu)', () => {
    const truth = perturbed('cpu', { compute: 0.6, overheadAdd: 0.2, collective: 0.5 });
    const base = hardwareFor('cpu');
    const noiseArr = fc.array(fc.double({ min: -0.05, max: 0.05, noNaN: true }), { minLength: 8, maxLength: 8 });
    fc.assert(
      fc.property(noiseArr, noiseArr, noiseArr, (a, b, c) => {
        const cal = fitCalibration([measure(cpuPlans.llm, truth, 8, a, b), measure(cpuPlans.gptTp, truth, 8, c, a)], base);
        const s = scoreCalibration(cal, [measure(cpuPlans.lvm, truth, 8, b, c), measure(cpuPlans.lvmPipe, truth, 8, c, b)], base);
        assert.ok(s.meanAbsErrorAfter < s.meanAbsErrorBefore, `after ${s.meanAbsErrorAfter} vs before ${s.meanAbsErrorBefore}`);
        assert.ok(s.meanAbsErrorAfter < 0.08, `after ${s.meanAbsErrorAfter}`);
      }),
      { numRuns: 12 },
    );
  });
});

describe('calibration: identifiability', () => {
  it('dp = tp = pp = 1 and no offload: collective and offload stay at the default (reported), the rest is fitted', () => {
    const truth = perturbed('cpu', { compute: 0.6, overheadAdd: 0.2, collective: 0.5 });
    const base = hardwareFor('cpu');
    const cal = fitCalibration([measure(cpuPlans.llmSolo, truth)], base);
    assert.deepEqual(cal.fitted.unidentified, ['collective', 'offload']);
    assert.equal(value(cal, 'collective'), 1);
    assert.equal(value(cal, 'offload'), 1);
    assert.match(cal.fitted.reasons[PARAM_NAMES.indexOf('collective')]!, /dp, tp or pp > 1/);
    assert.match(cal.fitted.reasons[PARAM_NAMES.indexOf('offload')]!, /offload/);
    assert.equal(cal.params.collective, undefined);
    assert.equal(cal.params.h2d, undefined);
    assert.equal(cal.params.d2h, undefined);
    const hw = calibratedHardware(base, cal);
    assert.deepEqual(hw.collective, base.collective);
    assert.deepEqual(hw.h2d, base.h2d);
    assert.deepEqual(hw.interference, base.interference);
    assert.ok(Math.abs(value(cal, 'compute') - 0.6) < 0.1, `compute ${value(cal, 'compute')}`);
    assert.ok(Math.abs(value(cal, 'overheadSeconds') - 0.25) < 0.01, `overhead ${value(cal, 'overheadSeconds')}`);
  });

  it('step times of one pipelined plan only: overhead and compute are fitted but reported weak', () => {
    const truth = perturbed('a100-80gb', TRUTH);
    const base = hardwareFor('a100-80gb');
    const cal = fitCalibration([stepsOnly(measure(gpuPlans('a100-80gb').fit[3]!, truth))], base);
    assert.equal(status(cal, 'overheadSeconds'), 'weak');
    assert.equal(status(cal, 'compute'), 'weak');
    assert.match(cal.fitted.reasons[PARAM_NAMES.indexOf('overheadSeconds')]!, /prior/);
    // the one measurement is matched, and the discrepancy went to the rates rather than the fixed overhead
    assert.ok(cal.fitted.residualRms < 1e-3);
    assert.ok(value(cal, 'compute') < 0.75, `compute ${value(cal, 'compute')}`);
    assert.ok(value(cal, 'overheadSeconds') < 0.2, `overhead ${value(cal, 'overheadSeconds')}`);
  });

  it('opts.params restricts the fit; the others keep the default with a reason', () => {
    const truth = perturbed('cpu', { compute: 0.6 });
    const base = hardwareFor('cpu');
    const cal = fitCalibration([measure(cpuPlans.llm, truth)], base, { params: ['compute'] });
    assert.deepEqual(cal.fitted.unidentified, ['layerFixed', 'collective', 'offload', 'overheadSeconds']);
    assert.ok(Math.abs(value(cal, 'compute') - 0.6) < 0.01, `compute ${value(cal, 'compute')}`);
    assert.deepEqual(Object.keys(cal.params).sort(), ['gemm']);
  });
});

describe('calibration: determinism, storage and apply', () => {
  it('the same samples give a deep-equal calibration; inputs are not mutated (frozen)', () => {
    const truth = perturbed('cpu', { compute: 0.7, overheadAdd: 0.1, collective: 0.5 });
    const samples = deepFreeze([measure(cpuPlans.llm, truth, 4, [0.02, -0.01]), measure(cpuPlans.gptTp, truth, 4, [-0.03, 0.01])]);
    const base = deepFreeze(hardwareFor('cpu'));
    const a = fitCalibration(samples, base);
    const b = fitCalibration(samples, base);
    assert.deepEqual(a, b);
    assert.deepEqual(a.trainedOn, { plans: [cpuPlans.llm.id, cpuPlans.gptTp.id], steps: 8 });
  });

  it('params is what hardwareFor(gpu, overrides) accepts, survives JSON, and equals calibratedHardware on the catalog', () => {
    const truth = perturbed('l4-24gb', TRUTH);
    const base = hardwareFor('l4-24gb');
    const cal = fitCalibration(gpuPlans('l4-24gb').fit.map((p) => measure(p, truth, 2)), base);
    const stored = JSON.parse(JSON.stringify(cal)) as Calibration;
    const viaCatalog = hardwareFor(stored.gpu, stored.params);
    assert.deepEqual(viaCatalog, calibratedHardware(base, stored));
    assert.deepEqual(calibratedHardware(CATALOG['l4-24gb'] as HardwareParams, stored), viaCatalog);
    const p = gpuPlans('l4-24gb').heldOut[0]!;
    const rel = predictPlan(p, viaCatalog).iterationSeconds / predictPlan(p, truth).iterationSeconds - 1;
    assert.ok(Math.abs(rel) < 0.01, `held-out ${rel}`);
  });

  it('calibratedHardware without a calibration is a fresh validated copy of the base', () => {
    const base = hardwareFor('h100-80gb');
    const hw = calibratedHardware(base);
    assert.deepEqual(hw, base);
    assert.notEqual(hw, base);
    hw.collective['1x2']!.bandwidth = 1;
    assert.notEqual(base.collective['1x2']!.bandwidth, 1);
  });

  it('a compute speed-up past efficiency 1 moves into peakFlops (cpu ×3: predictions still match the truth)', () => {
    const truth = perturbed('cpu', { compute: 3 });
    const base = hardwareFor('cpu');
    const cal = fitCalibration([measure(cpuPlans.llmSolo, truth)], base, { params: ['compute'] });
    assert.ok(Math.abs(value(cal, 'compute') - 3) < 0.03, `compute ${value(cal, 'compute')}`);
    const hw = calibratedHardware(base, cal);
    assert.equal(hw.gemm.maxEfficiency, 1);
    assert.ok(hw.peakFlops > base.peakFlops);
    const rel = predictPlan(cpuPlans.lvm, hw).iterationSeconds / predictPlan(cpuPlans.lvm, truth).iterationSeconds - 1;
    assert.ok(Math.abs(rel) < 0.01, `${rel}`);
  });

  it('property: a calibration at the defaults changes nothing (every GPU type)', () => {
    fc.assert(
      fc.property(fc.constantFrom('a100-40gb', 'a100-80gb', 'h100-80gb', 'h200-141gb', 'l4-24gb', 'cpu'), (gpu) => {
        const base = hardwareFor(gpu);
        const p = plan(gpu, { model: gpu === 'cpu' ? 'tiny-gpt' : 'gpt3-1.3b', nodes: 1, gpusPerNode: 2, globalBatch: 8, tp: 1, pp: 1, dp: 2, microBatch: 1, ckpt: 'full' });
        const exact = measure(p, base, 2);
        const cal = fitCalibration([exact], base);
        const hw = calibratedHardware(base, cal);
        const rel = predictPlan(p, hw).iterationSeconds / predictPlan(p, base).iterationSeconds - 1;
        assert.ok(Math.abs(rel) < 1e-9, `${gpu}: ${rel}`);
        cal.fitted.values.forEach((v, i) => {
          const d = PARAM_NAMES[i] === 'overheadSeconds' ? v - base.iterationOverheadSeconds : v - 1;
          assert.ok(Math.abs(d) < 1e-6, `${gpu} ${PARAM_NAMES[i]} = ${v}`);
        });
      }),
      { numRuns: 12 },
    );
  });
});

describe('calibration: splitSteps and sampleFromProfiles', () => {
  it('splits the first fraction of the steps (and their stage times) from the rest', () => {
    const s = measure(cpuPlans.llm, hardwareFor('cpu'), 7, [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07]);
    const { fit, heldOut } = splitSteps(s, 0.5);
    assert.equal(fit.measured.stepSeconds.length, 4);
    assert.equal(heldOut.measured.stepSeconds.length, 3);
    assert.deepEqual([...fit.measured.stepSeconds, ...heldOut.measured.stepSeconds], s.measured.stepSeconds);
    assert.equal(fit.measured.stageForwardSeconds!.length, 4);
    assert.equal(heldOut.measured.stageBackwardSeconds!.length, 3);
    assert.equal(fit.plan, s.plan);
    const tiny = splitSteps({ plan: cpuPlans.llm, measured: { stepSeconds: [1, 2] } }, 0.01);
    assert.deepEqual([tiny.fit.measured.stepSeconds, tiny.heldOut.measured.stepSeconds], [[1], [2]]);
  });

  it('rejects a fraction outside (0, 1) and a single step', () => {
    const s = { plan: cpuPlans.llm, measured: { stepSeconds: [1, 2, 3] } };
    expectBadInput(() => splitSteps(s, 0), 'fraction');
    expectBadInput(() => splitSteps(s, 1), 'fraction');
    expectBadInput(() => splitSteps(s, Number.NaN), 'fraction');
    expectBadInput(() => splitSteps({ plan: cpuPlans.llm, measured: { stepSeconds: [1] } }, 0.5), 'sample.measured.stepSeconds');
  });

  it('sampleFromProfiles: slowest rank per step, stage means over ranks, warm-up dropped, steps sorted', () => {
    const p = cpuPlans.lvmPipe;
    const profiles = [
      { step: 2, stepSeconds: 0.5, stageTimes: [{ stage: 0, forwardSeconds: 0.1, backwardSeconds: 0.2 }] },
      { step: 2, stepSeconds: 0.6, stageTimes: [{ stage: 1, forwardSeconds: 0.15, backwardSeconds: 0.25 }] },
      { step: 1, stepSeconds: 3.0, stageTimes: [{ stage: 0, forwardSeconds: 1, backwardSeconds: 1 }] },
      { step: 3, stepSeconds: 0.55, stageTimes: [{ stage: 0, forwardSeconds: 0.12, backwardSeconds: 0.22 }, { stage: 1, forwardSeconds: 0.14, backwardSeconds: 0.2 }] },
      { step: 3, stepSeconds: 0.52, stageTimes: [{ stage: 0, forwardSeconds: 0.1, backwardSeconds: 0.2 }] },
    ];
    const s = sampleFromProfiles(p, profiles, { warmupSteps: 1 });
    assert.deepEqual(s.measured.stepSeconds, [0.6, 0.55]);
    assert.deepEqual(s.measured.stageForwardSeconds, [[0.1, 0.15], [0.11, 0.14]]);
    assert.deepEqual(s.measured.stageBackwardSeconds, [[0.2, 0.25], [0.21000000000000002, 0.2]]);
    const partial = sampleFromProfiles(p, profiles.slice(0, 1));
    assert.deepEqual(partial.measured, { stepSeconds: [0.5] }, 'a step missing a stage drops the stage times');
    expectBadInput(() => sampleFromProfiles(p, []), 'profiles');
    expectBadInput(() => sampleFromProfiles(p, [{ step: 1, stepSeconds: 0, stageTimes: [] }]), 'profiles[0].stepSeconds');
    expectBadInput(() => sampleFromProfiles(p, [{ step: 1, stepSeconds: 1, stageTimes: [{ stage: 2, forwardSeconds: 0, backwardSeconds: 0 }] }]), 'profiles[0].stageTimes[0].stage');
    expectBadInput(() => sampleFromProfiles(p, profiles, { warmupSteps: 3 }), 'opts.warmupSteps');
  });
});

describe('calibration: bad input is BAD_INPUT naming the field', () => {
  const cpu = hardwareFor('cpu');
  const good = (): CalibrationSample => measure(cpuPlans.llm, cpu, 3);
  const a100Sample = (): CalibrationSample => measure(gpuPlans('a100-80gb').fit[0]!, hardwareFor('a100-80gb'), 2);
  const cases: Array<{ name: string; run: () => unknown; field: string }> = [
    { name: 'no samples', run: () => fitCalibration([], cpu), field: 'samples' },
    { name: 'samples not an array', run: () => fitCalibration(undefined as never, cpu), field: 'samples' },
    { name: 'mismatched GPU types across samples', run: () => fitCalibration([good(), a100Sample()], cpu), field: 'samples[1].plan.cluster.gpu' },
    { name: 'a sample on another GPU than the base', run: () => fitCalibration([a100Sample()], cpu), field: 'samples[0].plan.cluster.gpu' },
    { name: 'a zero step time', run: () => { const s = good(); s.measured.stepSeconds[1] = 0; return fitCalibration([s], cpu); }, field: 'samples[0].measured.stepSeconds[1]' },
    { name: 'a negative step time', run: () => { const s = good(); s.measured.stepSeconds[0] = -1; return fitCalibration([good(), s], cpu); }, field: 'samples[1].measured.stepSeconds[0]' },
    { name: 'a NaN step time', run: () => { const s = good(); s.measured.stepSeconds[2] = Number.NaN; return fitCalibration([s], cpu); }, field: 'samples[0].measured.stepSeconds[2]' },
    { name: 'no step times', run: () => fitCalibration([{ plan: cpuPlans.llm, measured: { stepSeconds: [] } }], cpu), field: 'samples[0].measured.stepSeconds' },
    { name: 'no measured', run: () => fitCalibration([{ plan: cpuPlans.llm } as never], cpu), field: 'samples[0].measured' },
    { name: 'a stage-time row per step missing', run: () => { const s = good(); s.measured.stageForwardSeconds!.pop(); return fitCalibration([s], cpu); }, field: 'samples[0].measured.stageForwardSeconds' },
    { name: 'a stage-time row of the wrong width', run: () => { const s = good(); s.measured.stageBackwardSeconds![1] = [1, 2]; return fitCalibration([s], cpu); }, field: 'samples[0].measured.stageBackwardSeconds[1]' },
    { name: 'a negative stage time', run: () => { const s = good(); s.measured.stageForwardSeconds![0]![0] = -0.1; return fitCalibration([s], cpu); }, field: 'samples[0].measured.stageForwardSeconds[0][0]' },
    { name: 'forward stage times without backward', run: () => { const s = good(); delete s.measured.stageBackwardSeconds; return fitCalibration([s], cpu); }, field: 'samples[0].measured.stageBackwardSeconds' },
    { name: 'an invalid plan', run: () => { const s = good(); s.plan = { ...s.plan, gradAccum: 0 }; return fitCalibration([s], cpu); }, field: 'samples[0].plan.gradAccum' },
    { name: 'warm-up eating every step', run: () => fitCalibration([good()], cpu, { warmupSteps: 3 }), field: 'opts.warmupSteps' },
    { name: 'a negative warm-up', run: () => fitCalibration([good()], cpu, { warmupSteps: -1 }), field: 'opts.warmupSteps' },
    { name: 'an unknown parameter name', run: () => fitCalibration([good()], cpu, { params: ['bogus' as never] }), field: 'opts.params[0]' },
    { name: 'a negative regularisation', run: () => fitCalibration([good()], cpu, { regularization: -1 }), field: 'opts.regularization' },
    { name: 'an unknown stage-time mode', run: () => fitCalibration([good()], cpu, { stageTimes: 'some' as never }), field: 'opts.stageTimes' },
    { name: 'scoring with no held-out samples', run: () => scoreCalibration(fitCalibration([good()], cpu), [], cpu), field: 'heldOut' },
    { name: 'scoring a held-out sample on another GPU', run: () => scoreCalibration(fitCalibration([good()], cpu), [a100Sample()], cpu), field: 'heldOut[0].plan.cluster.gpu' },
    { name: 'applying a calibration to another GPU type', run: () => calibratedHardware(hardwareFor('l4-24gb'), fitCalibration([good()], cpu)), field: 'calibration.gpu' },
    { name: 'a calibration of an unknown version', run: () => calibratedHardware(cpu, { ...fitCalibration([good()], cpu), version: 9 }), field: 'calibration.version' },
    { name: 'a calibration with an unknown hardware field', run: () => calibratedHardware(cpu, { ...fitCalibration([good()], cpu), params: { turbo: 2 } as never }), field: 'calibration.params.turbo' },
    { name: 'a calibration making the hardware invalid', run: () => calibratedHardware(cpu, { ...fitCalibration([good()], cpu), params: { gemm: { maxEfficiency: 2 } } }), field: 'hardware.gemm.maxEfficiency' },
  ];
  for (const c of cases) {
    it(`${c.name} → ${c.field}`, () => expectBadInput(c.run, c.field));
  }

  it('warm-up steps are dropped before fitting (a slow first step does not bias the fit)', () => {
    const truth = perturbed('cpu', { compute: 0.6, overheadAdd: 0.2 });
    const s = measure(cpuPlans.llmSolo, truth, 5);
    s.measured.stepSeconds[0] = 10;
    s.measured.stageForwardSeconds![0] = [5];
    const cal = fitCalibration([s], cpu, { warmupSteps: 1 });
    assert.equal(cal.trainedOn.steps, 4);
    assert.ok(Math.abs(value(cal, 'overheadSeconds') - 0.25) < 0.01, `overhead ${value(cal, 'overheadSeconds')}`);
  });
});
