/** Shared fixtures of the lifecycle tests: a validated spec, plans, and a small driver. */
import type { JobSpec } from '../../../controller/src/domain/job.js';
import { validateJobSpec } from '../../../controller/src/domain/job.js';
import { decide, type Decision, type JobState, type Observation } from '../../../controller/src/domain/lifecycle.js';
import type { Plan, Placement } from '../../../controller/src/domain/plan.js';

export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
export const S = 1000;

export function spec(over: Record<string, unknown> = {}): JobSpec {
  return validateJobSpec(
    {
      model: 'tiny-llama',
      training: { globalBatch: 8, steps: 100, checkpoint: { dir: '/ck', intervalSteps: 10 } },
      resources: { gpus: 4, gpuType: 'cpu' },
      ...over,
    },
    { runtimes: ['reference'], gpuTypes: ['cpu', 'h100-80gb'] },
  );
}

export function plan(id = 'p1', gpus = 4, iterationSeconds = 2): Plan {
  const off = { weights: 0, grads: 0, optimizer: 0, activations: 0 };
  const half = gpus / 2;
  return {
    version: 1,
    id,
    space: 'mist',
    model: { arch: 'llama', layers: 4, hidden: 64, heads: 4, kvHeads: 2, ffnHidden: 176, vocab: 256, seqLen: 64 },
    cluster: { gpu: 'cpu', nodes: 1, gpusPerNode: gpus },
    globalBatch: 8,
    seqLen: 64,
    gradAccum: 8 / Math.max(1, half),
    workload: { flash: false, dropout: 0, gradDtype: 'bf16' },
    stages: [0, 1].map((s) => ({ layers: [s * 2, s * 2 + 1] as [number, number], nodes: 1, gpusPerNode: half, dp: Math.max(1, half), tp: 1, microBatch: 1, zero: 0 as const, ckpt: { mode: 'none' as const }, offload: off })),
    prePost: { dp: Math.max(1, half), tp: 1, zero: 0 },
    predicted: { fits: true, reason: null, iterationSeconds, tokensPerSecond: 1, mfu: 0.1, stages: [] },
  };
}

export function placement(n = 4, node = 'n1'): Placement[] {
  const half = n / 2;
  return Array.from({ length: n }, (_, r) => ({ rank: r, node: r < half ? node : `${node}b`, device: r % half, stage: r < half ? 0 : 1, dpRank: r % half, tpRank: 0 }));
}

/** A job plus its clock; `step` decides and stores the status. */
export class Driver {
  job: JobState;
  now: number;
  last!: Decision;
  constructor(s: JobSpec = spec(), now = T0) {
    this.job = { name: 'job-a', generation: 1, createdAt: now, spec: s };
    this.now = now;
  }
  step(obs: Observation = {}, advanceMs = 0): Decision {
    this.now += advanceMs;
    this.last = decide(this.job, obs, this.now);
    this.job = { ...this.job, status: this.last.status };
    return this.last;
  }
  setSpec(s: JobSpec): void {
    this.job = { ...this.job, spec: s, generation: this.job.generation + 1 };
  }
  get st() {
    return this.job.status!;
  }
  kinds(): string[] {
    return this.last.actions.map((a) => a.kind);
  }
  /** Drives a new job to Running on attempt 1 with plan `p`. */
  toRunning(p: Plan = plan()): this {
    this.step();
    this.step({ plan: { request: this.st.planning!.request, ok: true, plan: p } });
    this.step({ placement: { request: this.st.queued!.request, ok: true, placement: placement(p.cluster.nodes * p.cluster.gpusPerNode) } });
    this.step({ attempt: { attempt: this.st.attempt, started: this.st.world!, succeeded: 0, failures: [], stopped: false } });
    return this;
  }
}
