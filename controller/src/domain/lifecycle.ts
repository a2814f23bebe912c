/**
 * The job lifecycle: one pure reconcile step for every job source (Kubernetes custom resources and REST jobs
 * alike). `decide(job, observed, now)` reads the job (spec, generation, last status) and what the controller has
 * observed since (tuner outcome, scheduler outcome, the current attempt's rank reports, lost nodes, a cancel
 * request) and returns the next status, the actions the controller must execute, and the events to record.
 * No I/O, no clock (`now` is passed in, ms since the epoch), no randomness. docs/jobs.md describes the phases,
 * conditions and restart semantics.
 *
 * Observations are level-based snapshots tagged with the request or attempt they answer, so deciding twice on the
 * same inputs is idempotent: the second call returns the same status, no events, and no actions other than a
 * repeated `requeueAfter` (a wake-up hint, not an effect).
 *
 *   Pending ─plan→ Planning ─plan ok→ Pending(Queued) ─placed→ Scheduled ─all ranks started→ Running ─all exit 0→ Succeeded
 *      ▲                │ infeasible → Failed                      │ rank failure / node lost / hung        │
 *      │                ▼                                          ▼                                        ▼
 *      └──────── Restarting (stop, backoff; OOM → re-plan with a larger margin) ◄─────────────────────────┘
 *   any non-terminal: suspend → Suspended (stop) → resume → Pending;  cancel → Failed(Cancelled);
 *   activeDeadlineSeconds → Failed(DeadlineExceeded);  terminal + ttlSecondsAfterFinished → delete.
 */
import type { FailureClass } from '../../../protocol/src/failure.js';
import { setCondition, isoTime, type Condition, type ConditionUpdate, type JobEvent } from './conditions.js';
import { backoffSeconds, planInputsKey, type JobSpec } from './job.js';
import type { ClusterSlice, Placement, Plan } from './plan.js';

// ---------------------------------------------------------------------------------------------------------------
// Types

export const JOB_PHASES = ['Pending', 'Planning', 'Scheduled', 'Running', 'Restarting', 'Suspended', 'Succeeded', 'Failed'] as const;
export type JobPhase = (typeof JOB_PHASES)[number];

export function isTerminal(phase: JobPhase): boolean {
  return phase === 'Succeeded' || phase === 'Failed';
}

/** The plan a job runs with (the Plan itself lives in plan history; the status keeps a summary). */
export interface PlanRef {
  id: string;
  gpus: number;
  cluster: ClusterSlice;
  /** Predicted seconds per optimizer step (Plan.predicted.iterationSeconds); drives the watchdog. */
  predictedStepSeconds?: number;
  /** planInputsKey(spec) the plan was made for; a different key makes the plan stale. */
  inputsKey: string;
  marginFactor: number;
}

export interface FailureRecord {
  attempt: number;
  class: FailureClass;
  /** CamelCase reason (UserError, OutOfMemory, NodeLost, InfraError, Killed, Hung, RankFailed). */
  reason: string;
  message: string;
  rank?: number;
  node?: string;
  exitCode?: number;
  /** ms since the epoch. */
  time: number;
}

export interface JobStatus {
  phase: JobPhase;
  /** CamelCase reason of the phase (also the reason of a condition set by the transition). */
  reason: string;
  message: string;
  observedGeneration: number;
  conditions: Condition[];
  /** When the phase was entered (ms). */
  phaseSince: number;
  /** Start of the activeDeadlineSeconds clock (ms): first reconcile while not suspended; reset on resume. */
  startTime?: number;
  /** When the job reached Succeeded or Failed (ms); the TTL counts from here. */
  completionTime?: number;

  /** Plan actions issued so far; the outstanding one is `planning.request`. */
  planRequests: number;
  planning?: { request: number; gpus: number; slice?: ClusterSlice; marginFactor: number; inputsKey: string };
  plan?: PlanRef;

  /** Schedule actions issued so far; `queued` is set while the job waits in the queue for placement. */
  scheduleRequests: number;
  queued?: { request: number; since: number };

  /** Launches so far: the current attempt number (0 before the first launch). */
  attempt: number;
  placement?: Placement[];
  /** Ranks of the current attempt. */
  world?: number;
  runningSince?: number;
  /** The attempt a stop was sent for (no second stop for the same attempt). */
  stopSentFor?: number;
  stopSentAt?: number;

  /** Counted restarts (against restartPolicy.maxRestarts). */
  restartCount: number;
  /** Out-of-memory re-plans (not counted as restarts). */
  oomCount: number;
  /** Memory margin factor the next plan is made with: 1 + oom.marginStep · oomCount. */
  marginFactor: number;
  /** Restarting: when the backoff ends (ms), and what follows it. */
  restartAt?: number;
  restartNext?: 'plan' | 'schedule';
  lastFailure?: FailureRecord;

  /** Last reported step of the current attempt. */
  progress?: { step: number; totalSteps: number; time: number };
  /** Latest checkpoint (any attempt): the next launch resumes from it. */
  checkpoint?: { step: number; uri: string };
  /** A delete action was issued (TTL). */
  deleteRequested?: boolean;
}

export interface JobState {
  name: string;
  /** metadata.generation: bumps on every spec change (suspend included). */
  generation: number;
  /** Creation time (ms). */
  createdAt: number;
  spec: JobSpec;
  /** Absent for a new job. */
  status?: JobStatus;
}

export interface RankFailure {
  rank: number;
  node: string;
  class: FailureClass;
  exitCode?: number;
  message?: string;
  /** ms. */
  time: number;
}

/** What the controller has seen of one launch attempt (aggregated from agents' rank reports). */
export interface AttemptObservation {
  attempt: number;
  /** Ranks that have started. */
  started: number;
  /** Ranks that exited 0. */
  succeeded: number;
  /** Ranks that failed, any order. */
  failures: RankFailure[];
  /** Every rank of the attempt is known to be gone (after a stop, or all exited). */
  stopped: boolean;
  lastStep?: { step: number; time: number };
  checkpoint?: { step: number; uri: string };
}

export type PlanObservation = { request: number } & ({ ok: true; plan: Plan } | { ok: false; reason: string });

export type PlacementObservation = { request: number } & (
  | { ok: true; placement: Placement[] }
  | { ok: false; reason: string; /** a smaller GPU count (within the spec's range) that fits now, with its cluster slice */ resize?: { gpus: number; slice: ClusterSlice } }
);

export interface Observation {
  /** The user asked to cancel (REST `mist cancel`, or the resource's cancel annotation). */
  cancelRequested?: boolean;
  /** The tuner's outcome for a plan action. */
  plan?: PlanObservation;
  /** The scheduler's current outcome for a schedule action (re-evaluated every scheduling pass). */
  placement?: PlacementObservation;
  /** Rank lifecycle of an attempt (normally the current one; others are ignored). */
  attempt?: AttemptObservation;
  /** Nodes currently lost (agent heartbeat stale or node gone). */
  lostNodes?: readonly string[];
}

export type Action =
  | { kind: 'plan'; request: number; gpus: number; gpuType: string; slice?: ClusterSlice; marginFactor: number }
  | { kind: 'schedule'; request: number; planId: string; gpus: number }
  | { kind: 'launch'; attempt: number; planId: string; placement: Placement[]; resumeFrom?: { step: number; uri: string } }
  | { kind: 'stop'; attempt: number; reason: string }
  | { kind: 'delete' }
  | { kind: 'requeueAfter'; seconds: number };

export interface Decision {
  status: JobStatus;
  actions: Action[];
  events: JobEvent[];
}

export interface LifecycleConfig {
  watchdog: {
    /** Hung when no step within k × the predicted step time … */
    k: number;
    /** … but never sooner than this many seconds after the last step, */
    minGraceSeconds: number;
    /** nor before the first step within this many seconds of launch (start-up: loading, compiling, warm-up). */
    startupGraceSeconds: number;
  };
  oom: {
    /** marginFactor = 1 + marginStep · (number of OOMs). */
    marginStep: number;
    /** After this many OOM re-plans the next OOM fails the job (reason OutOfMemory). */
    maxReplans: number;
  };
  /** Restarting waits this long for the agents to confirm a stop, then proceeds (the scheduler sees busy devices). */
  stopTimeoutSeconds: number;
}

export const DEFAULT_LIFECYCLE_CONFIG: LifecycleConfig = Object.freeze({
  watchdog: Object.freeze({ k: 10, minGraceSeconds: 300, startupGraceSeconds: 1800 }),
  oom: Object.freeze({ marginStep: 0.15, maxReplans: 3 }),
  stopTimeoutSeconds: 120,
}) as LifecycleConfig;

/** The reason a failure class gives a restart or a failure. */
export const FAILURE_REASONS: Readonly<Record<FailureClass, string>> = Object.freeze({
  user_error: 'UserError',
  out_of_memory: 'OutOfMemory',
  node_lost: 'NodeLost',
  infra_error: 'InfraError',
  killed: 'Killed',
  hung: 'Hung',
  unknown: 'RankFailed',
});

/** When several ranks fail at the same instant, the most telling class is reported. */
const CLASS_RANK: Readonly<Record<FailureClass, number>> = { user_error: 0, out_of_memory: 1, node_lost: 2, infra_error: 3, hung: 4, unknown: 5, killed: 6 };

export function initialStatus(now: number): JobStatus {
  return {
    phase: 'Pending',
    reason: 'Created',
    message: 'job accepted',
    observedGeneration: 0,
    conditions: [],
    phaseSince: now,
    planRequests: 0,
    scheduleRequests: 0,
    attempt: 0,
    restartCount: 0,
    oomCount: 0,
    marginFactor: 1,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// decide

interface Ctx {
  job: JobState;
  spec: JobSpec;
  obs: Observation;
  now: number;
  cfg: LifecycleConfig;
  st: JobStatus;
  actions: Action[];
  events: JobEvent[];
}

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function cond(c: Ctx, u: ConditionUpdate): void {
  c.st.conditions = setCondition(c.st.conditions, u, c.now, c.job.generation);
}

/** Sets the phase with its reason and message (phaseSince moves only when the phase changes). */
function setPhase(c: Ctx, phase: JobPhase, reason: string, message: string): void {
  const st = c.st;
  if (st.phase !== phase) st.phaseSince = c.now;
  st.phase = phase;
  st.reason = reason;
  st.message = message;
}

/** Enter (or re-enter with a new reason) a phase: records the phase reason, the conditions, and one event. */
function transition(c: Ctx, phase: JobPhase, reason: string, message: string, conditions: ConditionUpdate[], type: 'Normal' | 'Warning' = 'Normal'): void {
  setPhase(c, phase, reason, message);
  for (const u of conditions) cond(c, u);
  c.events.push({ type, reason, message, time: isoTime(c.now) });
}

function gpuLabel(spec: JobSpec, gpus: number): string {
  return `${gpus} × ${spec.resources.gpuType}`;
}

/** True while ranks of the current attempt may be alive and no stop was sent for it. */
function live(st: JobStatus): boolean {
  return st.attempt > 0 && st.stopSentFor !== st.attempt && (st.phase === 'Scheduled' || st.phase === 'Running');
}

function stopCurrent(c: Ctx, reason: string): void {
  if (!live(c.st)) return;
  c.actions.push({ kind: 'stop', attempt: c.st.attempt, reason });
  c.st.stopSentFor = c.st.attempt;
  c.st.stopSentAt = c.now;
}

function leaveQueueAndPlanning(st: JobStatus): void {
  st.queued = undefined;
  st.planning = undefined;
}

function finish(c: Ctx, phase: 'Succeeded' | 'Failed', reason: string, message: string): void {
  // every rank of a Succeeded attempt has exited; a Failed job's other ranks are stopped
  if (phase === 'Failed') stopCurrent(c, reason);
  leaveQueueAndPlanning(c.st);
  c.st.restartAt = undefined;
  c.st.restartNext = undefined;
  c.st.completionTime = c.now;
  const ups: ConditionUpdate[] = [
    { type: phase, status: 'True', reason, message },
    { type: 'Running', status: 'False', reason, message, onlyIfPresent: true },
    { type: 'Restarting', status: 'False', reason, message, onlyIfPresent: true },
  ];
  transition(c, phase, reason, message, ups, phase === 'Failed' ? 'Warning' : 'Normal');
}

function requestPlan(c: Ctx, gpus: number, slice: ClusterSlice | undefined, why: string): void {
  const st = c.st;
  st.planRequests += 1;
  const key = planInputsKey(c.spec);
  st.planning = { request: st.planRequests, gpus, ...(slice ? { slice } : {}), marginFactor: st.marginFactor, inputsKey: key };
  st.queued = undefined;
  c.actions.push({ kind: 'plan', request: st.planRequests, gpus, gpuType: c.spec.resources.gpuType, ...(slice ? { slice } : {}), marginFactor: st.marginFactor });
  const margin = st.marginFactor === 1 ? '' : `, memory margin ×${st.marginFactor.toFixed(2)}`;
  const msg = `tuning a plan for ${gpuLabel(c.spec, gpus)}${margin}${why ? ` (${why})` : ''}`;
  transition(c, 'Planning', 'Planning', msg, [{ type: 'Planned', status: 'False', reason: 'Planning', message: msg }]);
}

function planIsCurrent(c: Ctx): boolean {
  const p = c.st.plan;
  return !!p && p.inputsKey === planInputsKey(c.spec) && p.marginFactor === c.st.marginFactor;
}

function currentAttemptObs(c: Ctx): AttemptObservation | undefined {
  const a = c.obs.attempt;
  return a && a.attempt === c.st.attempt && c.st.attempt > 0 ? a : undefined;
}

function firstFailure(c: Ctx, a: AttemptObservation | undefined): RankFailure | undefined {
  const lost = new Set(c.obs.lostNodes ?? []);
  const fs: RankFailure[] = [...(a?.failures ?? [])];
  const nodes = new Set((c.st.placement ?? []).map((p) => p.node));
  for (const n of [...lost].sort()) {
    if (!nodes.has(n)) continue;
    const rank = Math.min(...(c.st.placement ?? []).filter((p) => p.node === n).map((p) => p.rank));
    fs.push({ rank, node: n, class: 'node_lost', message: `node ${n} was lost`, time: c.now });
  }
  fs.sort((x, y) => x.time - y.time || CLASS_RANK[x.class] - CLASS_RANK[y.class] || x.rank - y.rank);
  return fs[0];
}

function describeFailure(f: RankFailure): string {
  const code = f.exitCode !== undefined ? `, exit code ${f.exitCode}` : '';
  return `rank ${f.rank} on ${f.node} failed (${f.class}${code})${f.message ? `: ${f.message}` : ''}`;
}

/** Whole-job failure handling: every rank failure (or a lost node, or a hang) ends the attempt. */
function onFailure(c: Ctx, f: RankFailure, reasonOverride?: string): void {
  const st = c.st;
  const rp = c.spec.restartPolicy;
  const rule = f.exitCode === undefined ? undefined : rp.exitCodeRules.find((r) => r.codes.includes(f.exitCode!));
  const reason = reasonOverride ?? FAILURE_REASONS[f.class];
  const what = describeFailure(f);
  st.lastFailure = {
    attempt: st.attempt,
    class: f.class,
    reason,
    message: what,
    rank: f.rank,
    node: f.node,
    ...(f.exitCode !== undefined ? { exitCode: f.exitCode } : {}),
    time: f.time,
  };
  let mode: 'fail' | 'restart' | 'oom';
  if (rule) mode = rule.action;
  else if (f.class === 'user_error') mode = 'fail';
  else if (f.class === 'out_of_memory') mode = 'oom';
  else mode = 'restart';

  if (mode === 'fail') {
    finish(c, 'Failed', rule ? 'ExitCodeRule' : reason, rule ? `${what}; restartPolicy.exitCodeRules says fail` : `${what}; user errors are not retried`);
    return;
  }
  if (mode === 'oom') {
    if (st.oomCount >= c.cfg.oom.maxReplans) {
      finish(c, 'Failed', 'OutOfMemory', `${what}; still out of memory after ${st.oomCount} re-plans with a larger memory margin`);
      return;
    }
    st.oomCount += 1;
    st.marginFactor = Math.round((1 + c.cfg.oom.marginStep * st.oomCount) * 1e6) / 1e6;
    stopCurrent(c, reason);
    st.restartAt = c.now;
    st.restartNext = 'plan';
    const msg = `${what}; re-planning with memory margin ×${st.marginFactor.toFixed(2)} (OOM ${st.oomCount} of ${c.cfg.oom.maxReplans}; not counted as a restart)`;
    enterRestarting(c, reason, msg);
    return;
  }
  if (st.restartCount >= rp.maxRestarts) {
    finish(c, 'Failed', 'RestartLimitExceeded', `${what}; restartPolicy.maxRestarts ${rp.maxRestarts} reached`);
    return;
  }
  st.restartCount += 1;
  const wait = backoffSeconds(rp, st.restartCount);
  stopCurrent(c, reason);
  st.restartAt = c.now + wait * 1000;
  st.restartNext = 'schedule';
  enterRestarting(c, reason, `${what}; restart ${st.restartCount} of ${rp.maxRestarts} in ${wait} s${rule ? ' (restartPolicy.exitCodeRules)' : ''}`);
}

function enterRestarting(c: Ctx, reason: string, message: string): void {
  c.st.runningSince = undefined;
  transition(
    c,
    'Restarting',
    reason,
    message,
    [
      { type: 'Restarting', status: 'True', reason, message },
      { type: 'Running', status: 'False', reason, message, onlyIfPresent: true },
      { type: 'Scheduled', status: 'False', reason, message, onlyIfPresent: true },
    ],
    'Warning',
  );
}

function absorbProgress(c: Ctx): void {
  const a = currentAttemptObs(c);
  const st = c.st;
  if (!a) return;
  if (a.lastStep && (!st.progress || a.lastStep.step !== st.progress.step || a.lastStep.time !== st.progress.time)) {
    st.progress = { step: a.lastStep.step, totalSteps: c.spec.training.steps, time: a.lastStep.time };
  }
  if (a.checkpoint && (!st.checkpoint || a.checkpoint.step > st.checkpoint.step)) st.checkpoint = { ...a.checkpoint };
}

/** Seconds (ms) after which the watchdog declares the current attempt hung, and from when. */
function watchdogDue(c: Ctx): { at: number; message: string } | undefined {
  const st = c.st;
  const w = c.cfg.watchdog;
  const pred = st.plan?.predictedStepSeconds;
  const kStep = pred !== undefined && pred > 0 ? w.k * pred : 0;
  if (st.phase === 'Scheduled') {
    const limit = Math.max(w.startupGraceSeconds, kStep);
    return { at: st.phaseSince + limit * 1000, message: `ranks of attempt ${st.attempt} did not all start within ${limit} s` };
  }
  if (st.phase !== 'Running') return undefined;
  const stepThisAttempt = st.progress && st.runningSince !== undefined && st.progress.time >= st.runningSince ? st.progress : undefined;
  if (stepThisAttempt) {
    const limit = Math.max(w.minGraceSeconds, kStep);
    return { at: stepThisAttempt.time + limit * 1000, message: `no step for ${limit} s after step ${stepThisAttempt.step} (watchdog: ${w.k} × predicted step time, at least ${w.minGraceSeconds} s)` };
  }
  const limit = Math.max(w.startupGraceSeconds, kStep);
  return { at: (st.runningSince ?? st.phaseSince) + limit * 1000, message: `no first step within ${limit} s of start` };
}

/** One step of the phase machine; returns true when it changed the phase (so the loop runs again). */
function step(c: Ctx): boolean {
  const st = c.st;
  const before = st.phase;
  switch (st.phase) {
    case 'Pending': {
      if (!planIsCurrent(c)) {
        const why = st.plan ? 'the spec or the memory margin changed since the last plan' : '';
        st.plan = undefined;
        requestPlan(c, c.spec.resources.gpus.max, undefined, why);
        break;
      }
      const plan = st.plan!;
      if (!st.queued) {
        st.scheduleRequests += 1;
        st.queued = { request: st.scheduleRequests, since: c.now };
        c.actions.push({ kind: 'schedule', request: st.scheduleRequests, planId: plan.id, gpus: plan.gpus });
        const msg = `waiting for ${gpuLabel(c.spec, plan.gpus)} (plan ${plan.id})`;
        transition(c, 'Pending', 'Queued', msg, [{ type: 'Scheduled', status: 'False', reason: 'Queued', message: msg }]);
      }
      const p = c.obs.placement;
      if (!p || p.request !== st.queued!.request) break;
      if (p.ok) {
        st.queued = undefined;
        st.attempt += 1;
        st.placement = p.placement.map((x) => ({ ...x }));
        st.world = p.placement.length;
        st.runningSince = undefined;
        const resumeFrom = st.checkpoint ? { ...st.checkpoint } : undefined;
        c.actions.push({ kind: 'launch', attempt: st.attempt, planId: plan.id, placement: st.placement.map((x) => ({ ...x })), ...(resumeFrom ? { resumeFrom } : {}) });
        const nodes = [...new Set(p.placement.map((x) => x.node))];
        const msg = `attempt ${st.attempt}: ${p.placement.length} ranks on ${nodes.length} node${nodes.length === 1 ? '' : 's'} (${nodes.slice(0, 4).join(', ')}${nodes.length > 4 ? ', …' : ''})${resumeFrom ? `, resuming from step ${resumeFrom.step}` : ''}`;
        transition(c, 'Scheduled', 'Placed', msg, [{ type: 'Scheduled', status: 'True', reason: 'Placed', message: msg }]);
        break;
      }
      const r = c.spec.resources.gpus;
      if (p.resize && p.resize.gpus !== plan.gpus && p.resize.gpus >= r.min && p.resize.gpus <= r.max) {
        requestPlan(c, p.resize.gpus, p.resize.slice, `${p.reason}; ${p.resize.gpus} fit now`);
        break;
      }
      if (st.reason !== 'Unschedulable') {
        transition(c, 'Pending', 'Unschedulable', p.reason, [{ type: 'Scheduled', status: 'False', reason: 'Unschedulable', message: p.reason }]);
      } else if (st.message !== p.reason) {
        // same reason, new detail (e.g. the free count changed): update, no event
        st.message = p.reason;
        cond(c, { type: 'Scheduled', status: 'False', reason: 'Unschedulable', message: p.reason });
      }
      break;
    }
    case 'Planning': {
      const po = c.obs.plan;
      const pl = st.planning;
      if (!pl || !po || po.request !== pl.request) break;
      st.planning = undefined;
      if (!po.ok) {
        finish(c, 'Failed', 'PlanInfeasible', `no plan for ${gpuLabel(c.spec, pl.gpus)}: ${po.reason}`);
        cond(c, { type: 'Planned', status: 'False', reason: 'PlanInfeasible', message: po.reason });
        break;
      }
      const plan = po.plan;
      const gpus = plan.cluster.nodes * plan.cluster.gpusPerNode;
      const pred = plan.predicted?.iterationSeconds;
      st.plan = {
        id: plan.id,
        gpus,
        cluster: { ...plan.cluster },
        ...(typeof pred === 'number' && pred > 0 ? { predictedStepSeconds: pred } : {}),
        inputsKey: pl.inputsKey,
        marginFactor: pl.marginFactor,
      };
      const s0 = plan.stages[0];
      const shape = s0 ? `dp ${s0.dp} × tp ${s0.tp} × pp ${plan.stages.length}` : `${plan.stages.length} stages`;
      const msg = `plan ${plan.id} (${plan.space}): ${shape} on ${plan.cluster.nodes} × ${plan.cluster.gpusPerNode} ${plan.cluster.gpu}${typeof pred === 'number' ? `, predicted ${pred.toPrecision(3)} s/step` : ''}`;
      transition(c, 'Pending', 'PlanReady', msg, [{ type: 'Planned', status: 'True', reason: 'PlanReady', message: msg }]);
      break;
    }
    case 'Scheduled':
    case 'Running': {
      const a = currentAttemptObs(c);
      const f = firstFailure(c, a);
      if (f) {
        onFailure(c, f);
        break;
      }
      const world = st.world ?? 0;
      if (a && world > 0 && a.succeeded >= world) {
        finish(c, 'Succeeded', 'Completed', `all ${world} ranks of attempt ${st.attempt} finished${st.progress ? ` at step ${st.progress.step}` : ''}`);
        break;
      }
      if (st.phase === 'Scheduled' && a && world > 0 && a.started >= world) {
        st.runningSince = c.now;
        const msg = `all ${world} ranks of attempt ${st.attempt} started`;
        transition(c, 'Running', 'RanksStarted', msg, [
          { type: 'Running', status: 'True', reason: 'RanksStarted', message: msg },
          { type: 'Restarting', status: 'False', reason: 'RanksStarted', message: msg, onlyIfPresent: true },
        ]);
        break;
      }
      const due = watchdogDue(c);
      if (due && c.now >= due.at) {
        onFailure(c, { rank: 0, node: st.placement?.[0]?.node ?? '', class: 'hung', message: due.message, time: c.now }, 'Hung');
      }
      break;
    }
    case 'Restarting': {
      const a = c.obs.attempt;
      const stopped = (a && a.attempt === st.attempt && a.stopped) || st.stopSentAt === undefined || c.now >= st.stopSentAt + c.cfg.stopTimeoutSeconds * 1000;
      if (!stopped || c.now < (st.restartAt ?? 0)) break;
      const next = st.restartNext ?? 'schedule';
      st.restartAt = undefined;
      st.restartNext = undefined;
      const msg = next === 'plan' ? 're-planning before the next attempt' : `backoff over; attempt ${st.attempt + 1} queued`;
      cond(c, { type: 'Restarting', status: 'False', reason: 'BackoffElapsed', message: msg });
      if (next === 'plan' || !planIsCurrent(c)) {
        const pl = st.plan;
        requestPlan(c, pl?.gpus ?? c.spec.resources.gpus.max, pl?.cluster, st.lastFailure?.reason === 'OutOfMemory' ? 'after an out-of-memory failure' : 'restart');
      } else {
        setPhase(c, 'Pending', 'BackoffElapsed', msg);
      }
      break;
    }
    case 'Suspended':
    case 'Succeeded':
    case 'Failed':
      break;
  }
  return st.phase !== before;
}

/**
 * The lifecycle step. `now` is ms since the epoch. Returns the next status (the input is not modified), the
 * actions for the controller to execute in order, and the events to record.
 */
export function decide(job: JobState, observed: Observation, now: number, config: LifecycleConfig = DEFAULT_LIFECYCLE_CONFIG): Decision {
  const st = job.status ? clone(job.status) : initialStatus(now);
  const c: Ctx = { job, spec: job.spec, obs: observed ?? {}, now, cfg: config, st, actions: [], events: [] };
  const spec = job.spec;

  if (isTerminal(st.phase)) {
    const ttl = spec.ttlSecondsAfterFinished;
    if (ttl !== undefined && st.completionTime !== undefined && !st.deleteRequested) {
      const at = st.completionTime + ttl * 1000;
      if (now >= at) {
        st.deleteRequested = true;
        c.actions.push({ kind: 'delete' });
        c.events.push({ type: 'Normal', reason: 'TTLExpired', message: `deleting ${ttl} s after the job finished`, time: isoTime(now) });
      } else c.actions.push({ kind: 'requeueAfter', seconds: (at - now) / 1000 });
    }
    st.observedGeneration = job.generation;
    return { status: clone(st), actions: c.actions, events: c.events };
  }

  absorbProgress(c);

  if (observed?.cancelRequested) {
    finish(c, 'Failed', 'Cancelled', 'cancelled by request');
    st.observedGeneration = job.generation;
    return { status: clone(st), actions: c.actions, events: c.events };
  }

  if (!spec.suspend && st.phase !== 'Suspended' && st.startTime === undefined) st.startTime = now;
  const ads = spec.activeDeadlineSeconds;
  if (ads !== undefined && st.phase !== 'Suspended' && st.startTime !== undefined && now >= st.startTime + ads * 1000) {
    finish(c, 'Failed', 'DeadlineExceeded', `activeDeadlineSeconds ${ads} exceeded`);
    st.observedGeneration = job.generation;
    return { status: clone(st), actions: c.actions, events: c.events };
  }

  if (spec.suspend && st.phase !== 'Suspended') {
    stopCurrent(c, 'Suspended');
    leaveQueueAndPlanning(st);
    st.restartAt = undefined;
    st.restartNext = undefined;
    st.runningSince = undefined;
    st.startTime = undefined;
    const msg = 'spec.suspend is true; ranks stopped, devices released';
    transition(c, 'Suspended', 'Suspended', msg, [
      { type: 'Suspended', status: 'True', reason: 'Suspended', message: msg },
      { type: 'Running', status: 'False', reason: 'Suspended', message: msg, onlyIfPresent: true },
      { type: 'Scheduled', status: 'False', reason: 'Suspended', message: msg, onlyIfPresent: true },
      { type: 'Restarting', status: 'False', reason: 'Suspended', message: msg, onlyIfPresent: true },
    ]);
  } else if (!spec.suspend && st.phase === 'Suspended') {
    st.startTime = now;
    const msg = 'spec.suspend is false; queued again';
    transition(c, 'Pending', 'Resumed', msg, [{ type: 'Suspended', status: 'False', reason: 'Resumed', message: msg }]);
  }

  for (let i = 0; i < 8 && step(c); i++) {
    if (isTerminal(st.phase)) break;
  }

  // timers: wake the controller when the earliest one is due
  if (!isTerminal(st.phase)) {
    const due: number[] = [];
    if (ads !== undefined && st.startTime !== undefined && st.phase !== 'Suspended') due.push(st.startTime + ads * 1000);
    if (st.phase === 'Restarting') {
      if (st.restartAt !== undefined) due.push(st.restartAt);
      if (st.stopSentAt !== undefined) due.push(Math.max(st.restartAt ?? 0, st.stopSentAt + config.stopTimeoutSeconds * 1000));
    }
    const w = watchdogDue(c);
    if (w) due.push(w.at);
    if (due.length) c.actions.push({ kind: 'requeueAfter', seconds: Math.max(0, (Math.min(...due) - now) / 1000) });
  } else if (spec.ttlSecondsAfterFinished !== undefined && st.completionTime !== undefined) {
    c.actions.push({ kind: 'requeueAfter', seconds: spec.ttlSecondsAfterFinished });
  }
  st.observedGeneration = job.generation;
  return { status: clone(st), actions: c.actions, events: c.events };
}

/** The queue entry of a job waiting for placement, or undefined when it is not waiting (scheduler input). */
export function queuedRequest(job: JobState): { request: number; planId: string; gpus: number } | undefined {
  const st = job.status;
  if (!st || st.phase !== 'Pending' || !st.queued || !st.plan) return undefined;
  return { request: st.queued.request, planId: st.plan.id, gpus: st.plan.gpus };
}
