/**
 * The calibration loop (docs/controller.md "Calibration"): after a job succeeds, its step profiles become a
 * CalibrationSample; the job is scored out of sample, then a new calibration of (cluster, GPU type) is fitted and
 * stored for the plans that follow.
 *
 * Scoring, always on steps the fit did not see (signed errors (predicted − measured) / measured):
 *   - with a calibration that was available when the job was planned: the whole job is held out; "before" is the
 *     catalog's prediction, "after" the prediction with that calibration;
 *   - with none (the first job of a cluster): fit on the first half of the job's steps, score the second half.
 * The stored calibration is then refitted from the catalog on the samples of the last few successful jobs of the
 * cluster (each fit starts from the catalog, so errors do not compound).
 */
import {
  fitCalibration,
  sampleFromProfiles,
  scoreCalibration,
  splitSteps,
  type Calibration as FittedCalibration,
  type CalibrationSample,
} from '../calibration/index.js';
import type { Plan } from '../domain/plan.js';
import { hardwareFor } from '../tuner/hardware.js';
import { predictPlan } from '../tuner/predict.js';
import type { ProfileRow } from '../plans/store.js';

/** Steps dropped from the start of every job (start-up, allocator warm-up, first gloo connections). */
export const WARMUP_STEPS = 3;
/** Jobs whose samples enter a refit. */
export const MAX_FIT_JOBS = 4;

export interface JobScore {
  job: string;
  planId: string;
  gpu: string;
  /** plan.predicted.iterationSeconds of the plan the job ran (made with the hardware known at planning time). */
  predictedStepSeconds: number | null;
  /** Mean measured step time over the held-out steps. */
  measuredStepSeconds: number;
  predictionErrorBefore: number;
  predictionErrorAfter: number;
  /** 'calibration' (held out: the whole job) or 'split' (fit first half, score second half). */
  protocol: 'calibration' | 'split';
  heldOutSteps: number;
}

/** Profiles of one attempt (the last one that profiled anything), as calibration reads them. */
export function sampleOf(plan: Plan, profiles: readonly ProfileRow[]): CalibrationSample | null {
  if (profiles.length === 0) return null;
  const last = Math.max(...profiles.map((p) => p.attempt));
  const rows = profiles
    .filter((p) => p.attempt === last && p.stepSeconds > 0)
    .map((p) => ({
      step: p.step,
      stepSeconds: p.stepSeconds,
      stageTimes: (p.forwardSeconds ?? []).map((f, i) => ({ stage: p.stage ?? 0, forwardSeconds: f, backwardSeconds: p.backwardSeconds?.[i] ?? 0 })),
    }));
  const steps = new Set(rows.map((r) => r.step));
  if (steps.size <= WARMUP_STEPS + 1) return null;
  try {
    return sampleFromProfiles(plan, rows, { warmupSteps: Math.min(...steps) - 1 + WARMUP_STEPS });
  } catch {
    return null;
  }
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Scores a finished job out of sample (see the file comment). */
export function scoreJob(job: string, sample: CalibrationSample, prior: FittedCalibration | undefined): JobScore {
  const gpu = sample.plan.cluster.gpu;
  const base = hardwareFor(gpu);
  const predicted = sample.plan.predicted?.iterationSeconds ?? null;
  if (prior) {
    const s = scoreCalibration(prior, [sample], base);
    return {
      job,
      planId: sample.plan.id,
      gpu,
      predictedStepSeconds: predicted,
      measuredStepSeconds: mean(sample.measured.stepSeconds),
      predictionErrorBefore: s.errorBefore,
      predictionErrorAfter: s.errorAfter,
      protocol: 'calibration',
      heldOutSteps: sample.measured.stepSeconds.length,
    };
  }
  const { fit, heldOut } = splitSteps(sample, 0.5);
  const cal = fitCalibration([fit], base);
  const s = scoreCalibration(cal, [heldOut], base);
  return {
    job,
    planId: sample.plan.id,
    gpu,
    predictedStepSeconds: predicted ?? predictPlan(sample.plan, base).iterationSeconds,
    measuredStepSeconds: mean(heldOut.measured.stepSeconds),
    predictionErrorBefore: s.errorBefore,
    predictionErrorAfter: s.errorAfter,
    protocol: 'split',
    heldOutSteps: heldOut.measured.stepSeconds.length,
  };
}

/** A calibration fitted from the catalog on the given samples (one per job). */
export function refit(samples: CalibrationSample[]): FittedCalibration {
  const gpu = samples[0]!.plan.cluster.gpu;
  return fitCalibration(samples, hardwareFor(gpu));
}
