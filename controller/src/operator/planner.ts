/**
 * The `plan` action: tune a job's model on a cluster slice with the hardware the controller knows best (the
 * catalog, with the latest calibration of (cluster, GPU type) merged in), and the lifecycle's memory margin.
 *
 * Memory margin: TuneRequest has no margin input, so a margin factor m > 1 (after out-of-memory failures) is
 * applied by planning against a device with memoryBytes / m: every plan the tuner returns then leaves a fraction
 * 1 − 1/m of the device free.
 */
import type { JobSpec } from '../domain/job.js';
import type { ClusterSlice, Plan } from '../domain/plan.js';
import { calibratedHardware, type Calibration as FittedCalibration } from '../calibration/index.js';
import { DpSolver } from '../tuner/dp-solver.js';
import { hardwareFor, type HardwareParams } from '../tuner/hardware.js';
import { resolveModel } from '../tuner/model.js';
import { tune, type DecisionRecord } from '../tuner/search.js';
import { parsePins, type SpaceName } from '../tuner/space.js';

/** The fitted calibration object stored in a store Calibration row's `params`, when it is one. */
export function fittedFrom(params: unknown, gpu: string): FittedCalibration | undefined {
  const c = params as FittedCalibration | null;
  if (!c || typeof c !== 'object' || c.gpu !== gpu || typeof c.params !== 'object') return undefined;
  return c;
}

/** Hardware to plan with: catalog (+ calibration) with memory scaled down by the margin factor. */
export function planningHardware(gpu: string, cal: FittedCalibration | undefined, marginFactor: number): HardwareParams {
  const base = hardwareFor(gpu);
  const hw = cal ? calibratedHardware(base, cal) : base;
  if (marginFactor > 1) hw.memoryBytes = hw.memoryBytes / marginFactor;
  return hw;
}

export interface PlanOutcome {
  plan: Plan | null;
  record: DecisionRecord | null;
  reason?: string;
}

/** Tunes a job (async; the DP solver runs on this thread, bounded by the spec's time budget). */
export async function planJob(spec: JobSpec, slice: ClusterSlice, hw: HardwareParams, planId: string, now: () => number): Promise<PlanOutcome> {
  const model = resolveModel(spec.model as Parameters<typeof resolveModel>[0], 'spec.model');
  const solver = new DpSolver();
  try {
    const result = await tune(
      {
        model,
        cluster: { gpu: slice.gpu, nodes: slice.nodes, gpusPerNode: slice.gpusPerNode },
        hw,
        globalBatch: spec.training.globalBatch,
        seqLen: spec.training.seqLen ?? model.seqLen,
        workload: { flash: spec.workload.flash, dropout: spec.workload.dropout, gradDtype: spec.workload.gradDtype, sequenceParallel: spec.workload.sequenceParallel },
        space: spec.tuner.space as SpaceName,
        pins: parsePins(spec.tuner.pins as Record<string, unknown>),
        ...(spec.tuner.samples !== undefined ? { samples: spec.tuner.samples } : {}),
        timeBudgetSeconds: spec.tuner.timeBudgetSeconds,
      },
      { solver, now },
    );
    if (!result.plan) return { plan: null, record: result.record, reason: result.infeasible?.reason ?? 'no plan fits' };
    return { plan: { ...result.plan, id: planId }, record: result.record };
  } catch (e) {
    return { plan: null, record: null, reason: (e as Error).message };
  } finally {
    await (solver as { close?: () => Promise<void> | void }).close?.();
  }
}
