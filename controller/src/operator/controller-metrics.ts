/**
 * The controller core's Prometheus metrics (docs/metrics.md), registered on the API's registry (api/metrics.ts).
 * Gauges that mirror state (jobs by phase, work-queue depth, agents, heartbeat age) are computed at scrape time
 * from callbacks, so they are never stale; events (reconciles, restarts, solves, reports) are counted as they
 * happen. Conventions: prefix `mist_`, base units, counters end in `_total`, bounded label values only.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface ControllerMetricSources {
  /** Phase of every job the controller knows. */
  phases(): Iterable<string>;
  /** Keys waiting in the work queue. */
  queueDepth(): number;
  /** Agents in the registry: name, alive, seconds since the last heartbeat (null: none yet). */
  agents(): Array<{ node: string; alive: boolean; heartbeatAgeSeconds: number | null }>;
}

export interface ControllerMetrics {
  reconciles: Counter<'result'>;
  reconcileDuration: Histogram<'result'>;
  admissionWait: Histogram;
  restarts: Counter<'reason'>;
  jobsCreated: Counter;
  jobsFinished: Counter<'phase'>;
  tunerSolveDuration: Histogram<'solver'>;
  tunerSolves: Counter<'status'>;
  reportLag: Histogram<'kind'>;
}

/** Every job phase, so `mist_jobs{phase}` always has the same series (0 when no job is in the phase). */
export const JOB_PHASES = ['Pending', 'Planning', 'Scheduled', 'Running', 'Restarting', 'Suspended', 'Succeeded', 'Failed', 'Cancelled'] as const;

/** Report kinds are a closed set; anything else is counted as `other`. */
const REPORT_KINDS = new Set(['stepProfile', 'logTail', 'rankStarted', 'rankExited', 'checkpointSaved', 'nodeEvent']);
/** Solver statuses (tuner/search.ts SolveStatus plus infeasible/error). */
const SOLVE_STATUSES = new Set(['optimal', 'feasible', 'pruned', 'timeout', 'infeasible', 'error']);

export function registerControllerMetrics(registry: Registry, src: ControllerMetricSources): ControllerMetrics {
  const r = [registry];
  const jobs = new Gauge({
    name: 'mist_jobs',
    help: 'Jobs known to the controller, by phase.',
    labelNames: ['phase'] as const,
    registers: r,
    collect() {
      const counts = new Map<string, number>(JOB_PHASES.map((p) => [p, 0]));
      for (const p of src.phases()) counts.set(p, (counts.get(p) ?? 0) + 1);
      jobs.reset();
      for (const [phase, n] of counts) jobs.set({ phase }, n);
    },
  });
  const depth = new Gauge({
    name: 'mist_workqueue_depth',
    help: 'Jobs waiting in the reconcile work queue.',
    registers: r,
    collect() {
      depth.set(src.queueDepth());
    },
  });
  const agentsConnected = new Gauge({
    name: 'mist_agents_connected',
    help: 'Agents whose heartbeats are current (not lost).',
    registers: r,
    collect() {
      agentsConnected.set(src.agents().filter((a) => a.alive).length);
    },
  });
  const heartbeatAge = new Gauge({
    name: 'mist_agent_heartbeat_age_seconds',
    help: 'Seconds since each agent’s last heartbeat, by node.',
    labelNames: ['node'] as const,
    registers: r,
    collect() {
      heartbeatAge.reset();
      for (const a of src.agents()) if (a.heartbeatAgeSeconds !== null) heartbeatAge.set({ node: a.node }, a.heartbeatAgeSeconds);
    },
  });
  const reconciles = new Counter({ name: 'mist_reconcile_total', help: 'Reconciles of jobs, by result (changed, unchanged, error).', labelNames: ['result'] as const, registers: r });
  const reconcileDuration = new Histogram({
    name: 'mist_reconcile_duration_seconds',
    help: 'Time one reconcile of one job took, in seconds, by result.',
    labelNames: ['result'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: r,
  });
  const admissionWait = new Histogram({
    name: 'mist_job_admission_wait_seconds',
    help: 'Seconds from submission to the first Running phase of a job (planning and queueing included).',
    buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
    registers: r,
  });
  const restarts = new Counter({ name: 'mist_job_restarts_total', help: 'Job restarts, by reason (UserError, OutOfMemory, NodeLost, InfraError, Hung, …).', labelNames: ['reason'] as const, registers: r });
  const jobsCreated = new Counter({ name: 'mist_jobs_created_total', help: 'Jobs accepted by the controller.', registers: r });
  const jobsFinished = new Counter({ name: 'mist_jobs_finished_total', help: 'Jobs that reached a terminal phase, by phase.', labelNames: ['phase'] as const, registers: r });
  const tunerSolveDuration = new Histogram({
    name: 'mist_tuner_solve_duration_seconds',
    help: 'Wall time of one tuner search (all shapes), in seconds, by inter-stage solver.',
    labelNames: ['solver'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: r,
  });
  const tunerSolves = new Counter({ name: 'mist_tuner_solves_total', help: 'Tuner searches, by solver status (optimal, feasible, timeout, infeasible, error).', labelNames: ['status'] as const, registers: r });
  const reportLag = new Histogram({
    name: 'mist_report_processing_lag_seconds',
    help: 'Seconds from an agent sending a report to the controller processing it, by report kind.',
    labelNames: ['kind'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: r,
  });
  // series that exist from the start (a scrape before the first event still lists the family with 0)
  for (const s of SOLVE_STATUSES) tunerSolves.inc({ status: s }, 0);
  for (const res of ['changed', 'unchanged', 'error']) reconciles.inc({ result: res }, 0);
  return { reconciles, reconcileDuration, admissionWait, restarts, jobsCreated, jobsFinished, tunerSolveDuration, tunerSolves, reportLag };
}

export function reportKindLabel(kind: string): string {
  return REPORT_KINDS.has(kind) ? kind : 'other';
}

export function solveStatusLabel(status: string | null | undefined): string {
  return status && SOLVE_STATUSES.has(status) ? status : 'error';
}
