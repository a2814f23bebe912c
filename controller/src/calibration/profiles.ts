/**
 * From step-profile reports (protocol StepProfileReport, one per rank and step) to a CalibrationSample. Pure.
 * The shape is restated structurally here so calibration/ imports nothing but domain/, tuner/ and protocol errors.
 */
import { badInput } from '../../../protocol/src/errors.js';
import type { Plan } from '../domain/plan.js';
import type { CalibrationSample } from './fit.js';

/** The fields of protocol/src/types.ts StepProfileReport that calibration reads. */
export interface StepProfileLike {
  step: number;
  stepSeconds: number;
  stageTimes: Array<{ stage: number; forwardSeconds: number; backwardSeconds: number }>;
}

/**
 * Groups reports by step (ascending; steps ≤ `warmupSteps` dropped): the step time is the slowest rank's, a
 * stage's forward/backward time the mean over the ranks reporting that stage. Stage times are kept only when every
 * kept step has every stage of the plan. BAD_INPUT naming the field on an empty or malformed list.
 */
export function sampleFromProfiles(plan: Plan, profiles: StepProfileLike[], opts: { warmupSteps?: number } = {}): CalibrationSample {
  const warmup = opts.warmupSteps ?? 0;
  if (!Array.isArray(profiles) || profiles.length === 0) throw badInput('profiles', 'must hold at least one step profile');
  const pp = plan.stages.length;
  const bySteps = new Map<number, { step: number; fwd: number[][]; bwd: number[][] }>();
  profiles.forEach((p, i) => {
    if (!(Number.isInteger(p.step) && p.step >= 0)) throw badInput(`profiles[${i}].step`, `must be an integer ≥ 0, got ${JSON.stringify(p.step)}`);
    if (!(Number.isFinite(p.stepSeconds) && p.stepSeconds > 0)) throw badInput(`profiles[${i}].stepSeconds`, `must be a finite number > 0, got ${JSON.stringify(p.stepSeconds)}`);
    let e = bySteps.get(p.step);
    if (!e) {
      e = { step: 0, fwd: Array.from({ length: pp }, () => []), bwd: Array.from({ length: pp }, () => []) };
      bySteps.set(p.step, e);
    }
    e.step = Math.max(e.step, p.stepSeconds);
    (p.stageTimes ?? []).forEach((t, j) => {
      if (!(Number.isInteger(t.stage) && t.stage >= 0 && t.stage < pp)) throw badInput(`profiles[${i}].stageTimes[${j}].stage`, `${JSON.stringify(t.stage)} is not a stage of the plan`, `valid: 0..${pp - 1}`);
      e!.fwd[t.stage]!.push(t.forwardSeconds);
      e!.bwd[t.stage]!.push(t.backwardSeconds);
    });
  });
  const steps = [...bySteps.keys()].sort((a, b) => a - b).filter((s) => s > warmup);
  if (steps.length === 0) throw badInput('opts.warmupSteps', `${warmup} warm-up steps leave no profiled step`, `valid: below the last step ${Math.max(...bySteps.keys())}`);
  const avg = (xs: number[]) => xs.reduce((a, v) => a + v, 0) / xs.length;
  const rows = steps.map((s) => bySteps.get(s)!);
  const complete = rows.every((r) => r.fwd.every((x) => x.length > 0));
  return {
    plan,
    measured: {
      stepSeconds: rows.map((r) => r.step),
      ...(complete ? { stageForwardSeconds: rows.map((r) => r.fwd.map(avg)), stageBackwardSeconds: rows.map((r) => r.bwd.map(avg)) } : {}),
    },
  };
}
