/**
 * Calibration of the cost model's hardware parameters from measured step times (DESIGN.md §3: "calibration from
 * profiles overrides defaults per cluster"). Pure: no I/O, no clock, no randomness; deterministic.
 *
 *   fitCalibration(samples, base, opts?)   → Calibration (bounded, regularised Levenberg–Marquardt on the
 *                                             multiplicative scales of scales.ts plus the per-iteration overhead)
 *   scoreCalibration(cal, heldOut, base)   → signed out-of-sample errors before (base) and after (calibrated)
 *   splitSteps(sample, fraction)           → the first `fraction` of the steps to fit, the rest to score
 *   calibratedHardware(base, cal?)         → base with the calibration's overrides merged in, validated
 *
 * See docs/calibration.md for the model, identifiability and scoring.
 */
import { MistError, badInput, isMistError } from '../../../protocol/src/errors.js';
import type { Plan } from '../domain/plan.js';
import type { HardwareOverrides } from '../tuner/hardware.js';
import type { HardwareParams } from '../tuner/hardware-types.js';
import { predictPlan, validatePlan } from '../tuner/predict.js';
import { PARAM_NAMES, applyOverrides, defaultScales, overridesFor, scaledHardware, type CalibrationParamName, type Scales } from './scales.js';
import { levenbergMarquardt, solveLinear } from './solver.js';

export const CALIBRATION_VERSION = 1;

/** What one run measured, per step (warm-up steps excluded by the caller or by `warmupSteps`). */
export interface MeasuredSteps {
  /** Wall time of each step, seconds (> 0). */
  stepSeconds: number[];
  /** [step][stage]: forward seconds of the stage in that step, summed over its micro-batches (≥ 0). */
  stageForwardSeconds?: number[][];
  /** [step][stage]: backward seconds, as stageForwardSeconds. Used only together with it. */
  stageBackwardSeconds?: number[][];
}

export interface CalibrationSample {
  /** The plan that ran (with its model dims and cluster.gpu). */
  plan: Plan;
  measured: MeasuredSteps;
}

export type ParamStatus = 'fitted' | 'weak' | 'default';

export interface Calibration {
  version: number;
  /** The GPU type (HardwareParams.name) the calibration applies to. */
  gpu: string;
  /** Absolute values to merge over the base hardware: `hardwareFor(gpu, params)` or `calibratedHardware(base, cal)`. */
  params: HardwareOverrides;
  fitted: {
    /** Always all five parameters, in PARAM_NAMES order. */
    names: CalibrationParamName[];
    /** Scale factors (overheadSeconds: seconds); 1 / the base overhead where the parameter kept its default. */
    values: number[];
    /** Per name: 'fitted'; 'weak' = fitted but nearly collinear with another parameter on these samples (the
     *  mild prior toward the default resolved the split); 'default' = not identifiable, kept at the default. */
    status: ParamStatus[];
    /** Per name: why it is weak or default (empty for fitted). */
    reasons: string[];
    /** Names left at the default (status 'default'). */
    unidentified: CalibrationParamName[];
    /** RMS of the relative residuals (step means and, where used, stage times) after / before the fit. */
    residualRms: number;
    residualRmsBefore: number;
    iterations: number;
  };
  trainedOn: { plans: string[]; steps: number };
}

export interface FitOptions {
  /** Steps dropped from the start of every sample before fitting (default 0). */
  warmupSteps?: number;
  /** Weight of the prior pulling each scale toward its default, per unit of log-scale (default 0.01). */
  regularization?: number;
  /** Weight of the prior pulling the overhead toward its default, per largest mean step time of change (default
   *  0.1): ten times the scales', so that a discrepancy the samples cannot attribute is explained by hardware rates
   *  (which transfer to other models) rather than by a fixed per-step cost. */
  overheadRegularization?: number;
  /** Which stages' measured forward+backward times enter the fit: 'single-stage' (default: only pp = 1 plans,
   *  whose stage times hold no pipeline waits), 'all', or 'none'. */
  stageTimes?: 'single-stage' | 'all' | 'none';
  /** Restrict the fit to these parameters (the others keep their defaults); default all five. */
  params?: CalibrationParamName[];
  /** LM iteration cap (default 100). */
  maxIterations?: number;
}

/** Bounds of the factors (log space) and of the overhead (× the largest measured mean step). */
const FACTOR_BOUNDS: Record<Exclude<CalibrationParamName, 'overheadSeconds'>, [number, number]> = {
  compute: [0.02, 50],
  layerFixed: [0.01, 100],
  collective: [0.01, 100],
  offload: [0.01, 100],
};
/** A parameter whose column moves the data residuals by less than this (per unit of log-scale) is unidentifiable. */
const SENSITIVITY_FLOOR = 1e-4;
/** A fitted parameter with 1 − R² (on the others' columns) below this is 'weak'. */
const COLLINEAR = 1e-3;

interface Prepared {
  plan: Plan;
  steps: number[];
  /** Mean measured step seconds. */
  meanStep: number;
  /** Mean measured fwd+bwd seconds per stage, when stage times are used for this sample. */
  stageMeans: number[] | null;
}

function finitePositive(v: unknown): boolean {
  return typeof v === 'number' && Number.isFinite(v) && v > 0;
}

function mean(xs: number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

function checkPlan(plan: unknown, field: string): Plan {
  if (plan === null || typeof plan !== 'object') throw badInput(field, 'must be a Plan object');
  try {
    validatePlan(plan as Plan);
  } catch (e) {
    if (isMistError(e)) throw new MistError('BAD_INPUT', `${field}.${e.message}`);
    throw e;
  }
  return plan as Plan;
}

function checkStageMatrix(m: unknown, field: string, steps: number, stages: number): number[][] {
  if (!Array.isArray(m) || m.length !== steps) throw badInput(field, `must hold one row per step (${steps}), got ${Array.isArray(m) ? m.length : typeof m}`);
  m.forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== stages) throw badInput(`${field}[${i}]`, `must hold one value per stage (${stages}), got ${Array.isArray(row) ? row.length : typeof row}`);
    row.forEach((v, j) => {
      if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw badInput(`${field}[${i}][${j}]`, `must be a finite number ≥ 0, got ${JSON.stringify(v)}`);
    });
  });
  return m as number[][];
}

/** Validates the samples (BAD_INPUT naming the field) and reduces them to means. */
function prepare(samples: unknown, base: HardwareParams, warmup: number, stageMode: FitOptions['stageTimes'], what = 'samples'): Prepared[] {
  if (!Array.isArray(samples) || samples.length === 0) throw badInput(what, 'must hold at least one sample', '[{plan, measured: {stepSeconds}}]');
  if (!(Number.isInteger(warmup) && warmup >= 0)) throw badInput('opts.warmupSteps', `must be an integer ≥ 0, got ${JSON.stringify(warmup)}`);
  if (base === null || typeof base !== 'object' || typeof base.name !== 'string') throw badInput('base', 'must be a HardwareParams object');
  return samples.map((s: unknown, i) => {
    const f = `${what}[${i}]`;
    if (s === null || typeof s !== 'object') throw badInput(f, 'must be an object {plan, measured}');
    const sample = s as CalibrationSample;
    const plan = checkPlan(sample.plan, `${f}.plan`);
    if (plan.cluster.gpu !== base.name) {
      const first = i > 0 ? ` (${what}[0] ran on "${(samples[0] as CalibrationSample).plan.cluster.gpu}")` : '';
      throw badInput(`${f}.plan.cluster.gpu`, `"${plan.cluster.gpu}" differs from the base hardware "${base.name}"${first}`, 'a calibration fits one GPU type: pass samples of one GPU type and its hardware');
    }
    const m = sample.measured;
    if (m === null || typeof m !== 'object') throw badInput(`${f}.measured`, 'is required', '{stepSeconds: number[]}');
    const all = m.stepSeconds;
    if (!Array.isArray(all) || all.length === 0) throw badInput(`${f}.measured.stepSeconds`, 'must hold at least one step time');
    all.forEach((v, j) => {
      if (!finitePositive(v)) throw badInput(`${f}.measured.stepSeconds[${j}]`, `must be a finite number > 0, got ${JSON.stringify(v)}`);
    });
    if (all.length <= warmup) throw badInput('opts.warmupSteps', `${warmup} warm-up steps leave none of ${f}'s ${all.length} steps`, `valid: < ${all.length}`);
    const pp = plan.stages.length;
    let stageMeans: number[] | null = null;
    const hasFwd = m.stageForwardSeconds !== undefined;
    const hasBwd = m.stageBackwardSeconds !== undefined;
    if (hasFwd !== hasBwd) throw badInput(`${f}.measured.${hasFwd ? 'stageBackwardSeconds' : 'stageForwardSeconds'}`, 'is missing', 'give stage forward and backward times together, or neither');
    if (hasFwd) {
      const fw = checkStageMatrix(m.stageForwardSeconds, `${f}.measured.stageForwardSeconds`, all.length, pp);
      const bw = checkStageMatrix(m.stageBackwardSeconds, `${f}.measured.stageBackwardSeconds`, all.length, pp);
      const use = stageMode === 'all' || (stageMode !== 'none' && pp === 1);
      if (use) {
        stageMeans = Array.from({ length: pp }, (_, st) => mean(fw.slice(warmup).map((row, k) => row[st]! + bw[warmup + k]![st]!)));
        if (stageMeans.some((v) => !(v > 0))) stageMeans = null; // a stage that recorded nothing tells us nothing
      }
    }
    const steps = all.slice(warmup);
    return { plan, steps, meanStep: mean(steps), stageMeans };
  });
}

interface Predicted {
  step: number;
  stages: number[];
}

function predictAll(prep: Prepared[], hw: HardwareParams): Predicted[] {
  return prep.map((p) => {
    const pr = predictPlan(p.plan, hw);
    const G = p.plan.gradAccum;
    return { step: pr.iterationSeconds, stages: pr.stages.map((s) => G * s.stableSeconds + s.deltaSeconds) };
  });
}

/** Relative data residuals: one per sample's mean step, one per used stage mean. */
function dataResiduals(prep: Prepared[], pred: Predicted[]): number[] {
  const r: number[] = [];
  prep.forEach((p, i) => {
    r.push((pred[i]!.step - p.meanStep) / p.meanStep);
    if (p.stageMeans) p.stageMeans.forEach((m, st) => r.push((pred[i]!.stages[st]! - m) / m));
  });
  return r;
}

function rms(r: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < r.length; i++) s += r[i]! * r[i]!;
  return r.length === 0 ? 0 : Math.sqrt(s / r.length);
}

function structuralReason(name: CalibrationParamName, prep: Prepared[]): string | null {
  if (name === 'collective') {
    const any = prep.some((p) => p.plan.stages.length > 1 || p.plan.stages.some((s) => s.dp > 1 || s.tp > 1) || p.plan.prePost.dp > 1 || p.plan.prePost.tp > 1);
    return any ? null : 'no sample has dp, tp or pp > 1: collective and P2P times are not measured';
  }
  if (name === 'offload') {
    const any = prep.some((p) => p.plan.stages.some((s) => s.offload.weights > 0 || s.offload.grads > 0 || s.offload.optimizer > 0 || s.offload.activations > 0));
    return any ? null : 'no sample offloads (all offload ratios are 0): PCIe copies are not measured';
  }
  return null;
}

/**
 * Fits the calibration parameters to the samples' measured step (and stage) times. One sample with one plan
 * suffices for compute and overhead (with stage times they separate; without, the prior splits them and both are
 * reported 'weak'). Throws BAD_INPUT naming the field on bad input.
 */
export function fitCalibration(samples: CalibrationSample[], base: HardwareParams, opts: FitOptions = {}): Calibration {
  const warmup = opts.warmupSteps ?? 0;
  const lambda = opts.regularization ?? 0.01;
  if (!(Number.isFinite(lambda) && lambda >= 0)) throw badInput('opts.regularization', `must be a finite number ≥ 0, got ${lambda}`);
  const lambdaO = opts.overheadRegularization ?? 0.1;
  if (!(Number.isFinite(lambdaO) && lambdaO >= 0)) throw badInput('opts.overheadRegularization', `must be a finite number ≥ 0, got ${lambdaO}`);
  const stageMode = opts.stageTimes ?? 'single-stage';
  if (!['single-stage', 'all', 'none'].includes(stageMode)) throw badInput('opts.stageTimes', `unknown ${JSON.stringify(stageMode)}`, 'valid: single-stage, all, none');
  const allowed = opts.params ?? [...PARAM_NAMES];
  allowed.forEach((n, i) => {
    if (!PARAM_NAMES.includes(n)) throw badInput(`opts.params[${i}]`, `unknown parameter ${JSON.stringify(n)}`, `valid: ${PARAM_NAMES.join(', ')}`);
  });
  const prep = prepare(samples, base, warmup, stageMode);
  const defaults = defaultScales(base);
  const stepScale = Math.max(...prep.map((p) => p.meanStep));

  // internal coordinates: ln(factor) for the scales, overhead / stepScale for the overhead
  const toScales = (names: readonly CalibrationParamName[], x: ArrayLike<number>): Scales => {
    const s: Scales = { ...defaults };
    names.forEach((n, k) => {
      s[n] = n === 'overheadSeconds' ? x[k]! * stepScale : Math.exp(x[k]!);
    });
    return s;
  };
  const internalDefault = (n: CalibrationParamName): number => (n === 'overheadSeconds' ? defaults.overheadSeconds / stepScale : 0);
  const bounds = (n: CalibrationParamName): [number, number] =>
    n === 'overheadSeconds' ? [0, 10] : [Math.log(FACTOR_BOUNDS[n][0]), Math.log(FACTOR_BOUNDS[n][1])];
  const residualsAt = (names: readonly CalibrationParamName[], x: ArrayLike<number>): number[] => dataResiduals(prep, predictAll(prep, scaledHardware(base, toScales(names, x))));

  const status: Record<CalibrationParamName, ParamStatus> = { compute: 'default', layerFixed: 'default', collective: 'default', offload: 'default', overheadSeconds: 'default' };
  const reasons: Record<CalibrationParamName, string> = { compute: '', layerFixed: '', collective: '', offload: '', overheadSeconds: '' };

  // 1. structural and numerical identifiability at the defaults
  let candidates: CalibrationParamName[] = [];
  for (const n of PARAM_NAMES) {
    if (!allowed.includes(n)) {
      reasons[n] = 'not requested (opts.params)';
      continue;
    }
    const why = structuralReason(n, prep);
    if (why) reasons[n] = why;
    else candidates.push(n);
  }
  const x0 = candidates.map(internalDefault);
  const r0 = residualsAt(candidates, x0);
  const residualRmsBefore = rms(r0);
  if (candidates.length > 0) {
    const h = 1e-4;
    candidates = candidates.filter((n, k) => {
      const x = Float64Array.from(x0);
      x[k]! += h;
      const r = residualsAt(candidates, x);
      let norm = 0;
      for (let i = 0; i < r.length; i++) norm += ((r[i]! - r0[i]!) / h) ** 2;
      // the overhead's coordinate is in units of the largest step; every other one is a log-scale
      if (Math.sqrt(norm) < SENSITIVITY_FLOOR) {
        reasons[n] = `the measured times do not depend on it (sensitivity ${Math.sqrt(norm).toExponential(1)} < ${SENSITIVITY_FLOOR})`;
        return false;
      }
      return true;
    });
  }

  // 2. bounded, regularised least squares on the identifiable parameters
  const names = candidates;
  let scales: Scales = { ...defaults };
  let iterations = 0;
  let residualRms = residualRmsBefore;
  if (names.length > 0) {
    const start = names.map(internalDefault);
    const lower = names.map((n) => bounds(n)[0]);
    const upper = names.map((n) => bounds(n)[1]);
    const nData = r0.length;
    const f = (x: Float64Array): Float64Array => {
      const r = residualsAt(names, x);
      const out = new Float64Array(nData + names.length);
      out.set(r);
      names.forEach((n, k) => {
        out[nData + k] = (n === 'overheadSeconds' ? lambdaO : lambda) * (x[k]! - start[k]!);
      });
      return out;
    };
    const res = levenbergMarquardt(f, start, lower, upper, { maxIterations: opts.maxIterations ?? 100 });
    iterations = res.iterations;
    scales = toScales(names, res.x);
    residualRms = rms(residualsAt(names, res.x));

    // 3. collinearity: 1 − R² of each column on the others = 1 / diag((CᵀC)⁻¹) with C the normalised data columns
    const cols = names.map((_, k) => res.jacobian.slice(0, nData).map((row) => row[k]!));
    const norms = cols.map((c) => Math.sqrt(c.reduce((a, v) => a + v * v, 0)));
    names.forEach((n, k) => {
      status[n] = 'fitted';
      if (norms[k]! < SENSITIVITY_FLOOR) {
        status[n] = 'weak';
        reasons[n] = 'the measured times barely depend on it at the fitted point; the prior held it';
        return;
      }
      if (names.length === 1) return;
      const others = names.map((_, j) => j).filter((j) => j !== k && norms[j]! >= SENSITIVITY_FLOOR);
      if (others.length === 0) return;
      const unit = (j: number) => cols[j]!.map((v) => v / norms[j]!);
      const A = others.map((a) => others.map((b) => dot(unit(a), unit(b)) + (a === b ? 1e-9 : 0)));
      const b = others.map((a) => dot(unit(a), unit(k)));
      const coef = solveLinear(A, b);
      const explained = others.reduce((acc, a, i) => acc + coef[i]! * b[i]!, 0);
      const unexplained = 1 - explained;
      if (unexplained < COLLINEAR) {
        status[n] = 'weak';
        reasons[n] = `nearly collinear with ${others.map((j) => names[j]).join(', ')} on these samples (1 − R² = ${Math.max(0, unexplained).toExponential(1)}${nData < names.length ? `; ${nData} measured time(s) for ${names.length} parameters` : ''}): the prior toward the default split them; add plans with other sizes or layouts, or stage times of single-stage plans`;
      }
    });
  }

  const unidentified = PARAM_NAMES.filter((n) => status[n] === 'default');
  return {
    version: CALIBRATION_VERSION,
    gpu: base.name,
    params: overridesFor(base, scales, names),
    fitted: {
      names: [...PARAM_NAMES],
      values: PARAM_NAMES.map((n) => scales[n]),
      status: PARAM_NAMES.map((n) => status[n]),
      reasons: PARAM_NAMES.map((n) => reasons[n]),
      unidentified,
      residualRms,
      residualRmsBefore,
      iterations,
    },
    trainedOn: { plans: prep.map((p) => p.plan.id), steps: prep.reduce((a, p) => a + p.steps.length, 0) },
  };
}

function dot(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function checkCalibration(cal: unknown, field = 'calibration'): Calibration {
  if (cal === null || typeof cal !== 'object') throw badInput(field, 'must be a Calibration object');
  const c = cal as Calibration;
  if (c.version !== CALIBRATION_VERSION) throw badInput(`${field}.version`, `unsupported ${JSON.stringify(c.version)}`, `valid: ${CALIBRATION_VERSION}`);
  if (typeof c.gpu !== 'string' || c.gpu === '') throw badInput(`${field}.gpu`, 'must name a GPU type');
  if (c.params === null || typeof c.params !== 'object') throw badInput(`${field}.params`, 'must be an object of hardware overrides');
  return c;
}

/**
 * `base` with the calibration's overrides deep-merged in (hardwareFor's rules) and validated; a fresh copy of
 * `base` when `cal` is undefined. BAD_INPUT when the calibration is for another GPU type.
 */
export function calibratedHardware(base: HardwareParams, cal?: Calibration): HardwareParams {
  if (cal === undefined) return applyOverrides(base, undefined);
  const c = checkCalibration(cal);
  if (c.gpu !== base.name) throw badInput('calibration.gpu', `"${c.gpu}" does not match the hardware "${base.name}"`, 'apply a calibration only to the GPU type it was fitted on');
  return applyOverrides(base, c.params);
}

export interface SampleScore {
  plan: string;
  steps: number;
  measuredSeconds: number;
  predictedBefore: number;
  predictedAfter: number;
  /** (predicted − measured) / measured of the mean step time. */
  errorBefore: number;
  errorAfter: number;
}

export interface CalibrationScore {
  /** Signed (predicted − measured) / measured of the mean held-out step time, averaged over held-out samples
   *  (each job counts once); before = base hardware, after = calibrated. */
  errorBefore: number;
  errorAfter: number;
  /** Mean |error| over held-out samples. */
  meanAbsErrorBefore: number;
  meanAbsErrorAfter: number;
  samples: SampleScore[];
}

/** Out-of-sample score: predictions of the held-out samples' mean step time with `base` and with `base` + `cal`. */
export function scoreCalibration(cal: Calibration, heldOut: CalibrationSample[], base: HardwareParams, opts: { warmupSteps?: number } = {}): CalibrationScore {
  const after = calibratedHardware(base, cal);
  const prep = prepare(heldOut, base, opts.warmupSteps ?? 0, 'none', 'heldOut');
  const samples = prep.map((p): SampleScore => {
    const b = predictPlan(p.plan, base).iterationSeconds;
    const a = predictPlan(p.plan, after).iterationSeconds;
    return {
      plan: p.plan.id,
      steps: p.steps.length,
      measuredSeconds: p.meanStep,
      predictedBefore: b,
      predictedAfter: a,
      errorBefore: (b - p.meanStep) / p.meanStep,
      errorAfter: (a - p.meanStep) / p.meanStep,
    };
  });
  const avg = (f: (s: SampleScore) => number) => samples.reduce((acc, s) => acc + f(s), 0) / samples.length;
  return {
    errorBefore: avg((s) => s.errorBefore),
    errorAfter: avg((s) => s.errorAfter),
    meanAbsErrorBefore: avg((s) => Math.abs(s.errorBefore)),
    meanAbsErrorAfter: avg((s) => Math.abs(s.errorAfter)),
    samples,
  };
}

/**
 * Splits one sample's steps: the first round(n · fraction) steps (at least 1, at most n − 1) to fit, the rest to
 * score — the "fit on the first half, score on the second" protocol. Stage times are split alongside.
 */
export function splitSteps(sample: CalibrationSample, fraction: number): { fit: CalibrationSample; heldOut: CalibrationSample } {
  if (!(typeof fraction === 'number' && fraction > 0 && fraction < 1)) throw badInput('fraction', `must be in (0, 1), got ${JSON.stringify(fraction)}`);
  if (sample === null || typeof sample !== 'object' || sample.measured === null || typeof sample.measured !== 'object') throw badInput('sample.measured', 'is required', '{stepSeconds: number[]}');
  const m = sample.measured;
  if (!Array.isArray(m.stepSeconds) || m.stepSeconds.length < 2) throw badInput('sample.measured.stepSeconds', `needs at least 2 steps to split, got ${Array.isArray(m.stepSeconds) ? m.stepSeconds.length : typeof m.stepSeconds}`);
  const n = m.stepSeconds.length;
  const k = Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
  const part = (from: number, to: number): MeasuredSteps => {
    const out: MeasuredSteps = { stepSeconds: m.stepSeconds.slice(from, to) };
    if (m.stageForwardSeconds) out.stageForwardSeconds = m.stageForwardSeconds.slice(from, to).map((r) => [...r]);
    if (m.stageBackwardSeconds) out.stageBackwardSeconds = m.stageBackwardSeconds.slice(from, to).map((r) => [...r]);
    return out;
  };
  return { fit: { plan: sample.plan, measured: part(0, k) }, heldOut: { plan: sample.plan, measured: part(k, n) } };
}
