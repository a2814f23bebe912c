import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FAILURE_CLASSES, type FailureClass } from '../../../protocol/src/failure.js';
import { getCondition } from '../../../controller/src/domain/conditions.js';
import { decide, isTerminal, DEFAULT_LIFECYCLE_CONFIG, type AttemptObservation, type JobState, type Observation } from '../../../controller/src/domain/lifecycle.js';
import { Driver, S, T0, placement, plan, spec } from './lifecycle-support.js';

function attempt(d: Driver, over: Partial<AttemptObservation> = {}): AttemptObservation {
  return { attempt: d.st.attempt, started: d.st.world ?? 0, succeeded: 0, failures: [], stopped: false, ...over };
}

function fail(d: Driver, cls: FailureClass, exitCode?: number): Observation {
  return { attempt: attempt(d, { failures: [{ rank: 1, node: 'n1', class: cls, ...(exitCode !== undefined ? { exitCode } : {}), message: 'boom', time: d.now }] }) };
}

describe('domain/lifecycle: transitions', () => {
  it('a new job goes Pending → Planning and asks for a plan at the max GPU count, margin 1', () => {
    const d = new Driver(spec({ resources: { gpus: { min: 2, max: 4 }, gpuType: 'cpu' } }));
    const r = d.step();
    assert.equal(r.status.phase, 'Planning');
    assert.deepEqual(r.actions, [{ kind: 'plan', request: 1, gpus: 4, gpuType: 'cpu', marginFactor: 1 }]);
    assert.equal(getCondition(r.status.conditions, 'Planned')?.status, 'False');
    assert.deepEqual(r.events.map((e) => e.reason), ['Planning']);
    assert.equal(r.status.observedGeneration, 1);
    assert.equal(r.status.startTime, T0);
  });

  it('a job created suspended goes straight to Suspended, with no actions', () => {
    const d = new Driver(spec({ suspend: true }));
    const r = d.step();
    assert.equal(r.status.phase, 'Suspended');
    assert.deepEqual(r.actions, []);
    assert.equal(getCondition(r.status.conditions, 'Suspended')?.status, 'True');
  });

  it('Planning + plan → Pending (Queued) with a schedule action; Planned=True', () => {
    const d = new Driver();
    d.step();
    const r = d.step({ plan: { request: 1, ok: true, plan: plan('p1') } });
    assert.equal(r.status.phase, 'Pending');
    assert.equal(r.status.reason, 'Queued');
    assert.deepEqual(r.actions, [{ kind: 'schedule', request: 1, planId: 'p1', gpus: 4 }]);
    assert.equal(getCondition(r.status.conditions, 'Planned')?.reason, 'PlanReady');
    assert.deepEqual(r.events.map((e) => e.reason), ['PlanReady', 'Queued']);
    assert.equal(r.status.plan?.predictedStepSeconds, 2);
  });

  it('Planning + infeasible → Failed (PlanInfeasible) with the tuner reason', () => {
    const d = new Driver();
    d.step();
    const r = d.step({ plan: { request: 1, ok: false, reason: 'needs 93 GiB/GPU at best, capacity 80' } });
    assert.equal(r.status.phase, 'Failed');
    assert.equal(r.status.reason, 'PlanInfeasible');
    assert.match(r.status.message, /93 GiB/);
    assert.equal(getCondition(r.status.conditions, 'Planned')?.reason, 'PlanInfeasible');
    assert.equal(getCondition(r.status.conditions, 'Failed')?.status, 'True');
  });

  it('a plan outcome for another request is ignored', () => {
    const d = new Driver();
    d.step();
    const r = d.step({ plan: { request: 7, ok: true, plan: plan() } });
    assert.equal(r.status.phase, 'Planning');
    assert.deepEqual(r.events, []);
  });

  it('Pending + placement → Scheduled with launch of attempt 1', () => {
    const d = new Driver();
    d.step();
    d.step({ plan: { request: 1, ok: true, plan: plan() } });
    const r = d.step({ placement: { request: 1, ok: true, placement: placement() } });
    assert.equal(r.status.phase, 'Scheduled');
    assert.deepEqual(r.actions, [
      { kind: 'launch', attempt: 1, planId: 'p1', placement: placement() },
      { kind: 'requeueAfter', seconds: DEFAULT_LIFECYCLE_CONFIG.watchdog.startupGraceSeconds },
    ]);
    assert.equal(getCondition(r.status.conditions, 'Scheduled')?.status, 'True');
  });

  it('Pending + no fit → stays Pending (Unschedulable) with the reason; a new detail updates without an event', () => {
    const d = new Driver();
    d.step();
    d.step({ plan: { request: 1, ok: true, plan: plan() } });
    const r = d.step({ placement: { request: 1, ok: false, reason: 'needs 4 × cpu, 2 free' } });
    assert.equal(r.status.phase, 'Pending');
    assert.equal(r.status.reason, 'Unschedulable');
    assert.equal(getCondition(r.status.conditions, 'Scheduled')?.message, 'needs 4 × cpu, 2 free');
    assert.equal(r.events.length, 1);
    assert.deepEqual(r.actions, []);
    const r2 = d.step({ placement: { request: 1, ok: false, reason: 'needs 4 × cpu, 3 free' } });
    assert.equal(r2.status.message, 'needs 4 × cpu, 3 free');
    assert.deepEqual(r2.events, []);
  });

  it('Pending + no fit with a smaller count in range → re-plans for that count and slice', () => {
    const d = new Driver(spec({ resources: { gpus: { min: 2, max: 4 }, gpuType: 'cpu' } }));
    d.step();
    d.step({ plan: { request: 1, ok: true, plan: plan() } });
    const slice = { gpu: 'cpu', nodes: 1, gpusPerNode: 2 };
    const r = d.step({ placement: { request: 1, ok: false, reason: 'needs 4 × cpu, 2 free', resize: { gpus: 2, slice } } });
    assert.equal(r.status.phase, 'Planning');
    assert.deepEqual(r.actions, [{ kind: 'plan', request: 2, gpus: 2, gpuType: 'cpu', slice, marginFactor: 1 }]);
  });

  it('Scheduled + every rank started → Running', () => {
    const d = new Driver();
    d.step();
    d.step({ plan: { request: 1, ok: true, plan: plan() } });
    d.step({ placement: { request: 1, ok: true, placement: placement() } });
    const r1 = d.step({ attempt: attempt(d, { started: 3 }) });
    assert.equal(r1.status.phase, 'Scheduled');
    const r = d.step({ attempt: attempt(d, { started: 4 }) });
    assert.equal(r.status.phase, 'Running');
    assert.equal(getCondition(r.status.conditions, 'Running')?.reason, 'RanksStarted');
  });

  it('Running + every rank exited 0 → Succeeded, no stop', () => {
    const d = new Driver().toRunning();
    const r = d.step({ attempt: attempt(d, { succeeded: 4, stopped: true, lastStep: { step: 100, time: d.now } }) }, 5 * S);
    assert.equal(r.status.phase, 'Succeeded');
    assert.equal(r.status.completionTime, d.now);
    assert.ok(!r.actions.some((a) => a.kind === 'stop'));
    assert.equal(getCondition(r.status.conditions, 'Running')?.status, 'False');
  });

  for (const cls of ['infra_error', 'killed', 'unknown', 'node_lost', 'hung'] as const) {
    it(`Running + a ${cls} rank failure → Restarting (whole job stopped, counted, backoff 10 s)`, () => {
      const d = new Driver().toRunning();
      const r = d.step(fail(d, cls), S);
      assert.equal(r.status.phase, 'Restarting');
      assert.deepEqual(r.actions.filter((a) => a.kind !== 'requeueAfter'), [{ kind: 'stop', attempt: 1, reason: r.status.reason }]);
      assert.deepEqual(r.actions.find((a) => a.kind === 'requeueAfter'), { kind: 'requeueAfter', seconds: 10 });
      assert.equal(r.status.restartCount, 1);
      assert.equal(r.status.lastFailure?.class, cls);
      assert.equal(getCondition(r.status.conditions, 'Restarting')?.status, 'True');
    });
  }

  it('Restarting waits for backoff and stop confirmation, then queues the same plan (attempt 2 resumes from the checkpoint)', () => {
    const d = new Driver().toRunning();
    d.step({ attempt: attempt(d, { checkpoint: { step: 30, uri: '/ck/step-30' }, lastStep: { step: 31, time: d.now } }) }, S);
    d.step(fail(d, 'infra_error'), S);
    assert.equal(d.step({ attempt: attempt(d, { stopped: true }) }, 5 * S).status.phase, 'Restarting');
    const r = d.step({ attempt: attempt(d, { stopped: true }) }, 5 * S);
    assert.equal(r.status.phase, 'Pending');
    assert.deepEqual(r.actions.filter((a) => a.kind !== 'requeueAfter'), [{ kind: 'schedule', request: 2, planId: 'p1', gpus: 4 }]);
    assert.equal(getCondition(r.status.conditions, 'Restarting')?.status, 'False');
    const r2 = d.step({ placement: { request: 2, ok: true, placement: placement() } });
    assert.deepEqual(r2.actions[0], { kind: 'launch', attempt: 2, planId: 'p1', placement: placement(), resumeFrom: { step: 30, uri: '/ck/step-30' } });
  });

  it('Restarting proceeds without a stop confirmation after stopTimeoutSeconds', () => {
    const d = new Driver().toRunning();
    d.step(fail(d, 'infra_error'));
    assert.equal(d.step({}, 60 * S).status.phase, 'Restarting');
    assert.equal(d.step({}, (DEFAULT_LIFECYCLE_CONFIG.stopTimeoutSeconds - 60) * S).status.phase, 'Pending');
  });

  it('backoff doubles per counted restart: 10, 20, 40 s', () => {
    const d = new Driver(spec({ restartPolicy: { maxRestarts: 5 } })).toRunning();
    const waits: number[] = [];
    for (let i = 0; i < 3; i++) {
      d.step(fail(d, 'infra_error'));
      waits.push((d.st.restartAt! - d.now) / S);
      d.step({ attempt: attempt(d, { stopped: true }) }, d.st.restartAt! - d.now);
      d.step({ placement: { request: d.st.queued!.request, ok: true, placement: placement() } });
      d.step({ attempt: attempt(d, { started: 4 }) });
    }
    assert.deepEqual(waits, [10, 20, 40]);
    assert.equal(d.st.attempt, 4);
  });

  it('maxRestarts reached → Failed (RestartLimitExceeded)', () => {
    const d = new Driver(spec({ restartPolicy: { maxRestarts: 0 } })).toRunning();
    const r = d.step(fail(d, 'infra_error'));
    assert.equal(r.status.phase, 'Failed');
    assert.equal(r.status.reason, 'RestartLimitExceeded');
    assert.deepEqual(r.actions.filter((a) => a.kind === 'stop'), [{ kind: 'stop', attempt: 1, reason: 'RestartLimitExceeded' }]);
  });

  it('user_error → Failed (UserError), not retried; the other ranks are stopped', () => {
    const d = new Driver().toRunning();
    const r = d.step(fail(d, 'user_error', 1));
    assert.equal(r.status.phase, 'Failed');
    assert.equal(r.status.reason, 'UserError');
    assert.equal(r.status.restartCount, 0);
    assert.deepEqual(r.actions.filter((a) => a.kind === 'stop'), [{ kind: 'stop', attempt: 1, reason: 'UserError' }]);
  });

  it('an exitCodeRules restart turns a user_error into a counted restart', () => {
    const d = new Driver(spec({ restartPolicy: { exitCodeRules: [{ codes: [75], action: 'restart' }] } })).toRunning();
    const r = d.step(fail(d, 'user_error', 75));
    assert.equal(r.status.phase, 'Restarting');
    assert.equal(r.status.restartCount, 1);
  });

  it('an exitCodeRules fail turns a retryable failure into Failed (ExitCodeRule)', () => {
    const d = new Driver(spec({ restartPolicy: { exitCodeRules: [{ codes: [3], action: 'fail' }] } })).toRunning();
    const r = d.step(fail(d, 'infra_error', 3));
    assert.equal(r.status.phase, 'Failed');
    assert.equal(r.status.reason, 'ExitCodeRule');
  });

  it('out_of_memory → re-plan with a larger margin, not counted as a restart', () => {
    const d = new Driver().toRunning();
    const r = d.step(fail(d, 'out_of_memory'));
    assert.equal(r.status.phase, 'Restarting');
    assert.equal(r.status.reason, 'OutOfMemory');
    assert.equal(r.status.restartCount, 0);
    assert.equal(r.status.oomCount, 1);
    assert.equal(r.status.marginFactor, 1.15);
    const r2 = d.step({ attempt: attempt(d, { stopped: true }) });
    assert.equal(r2.status.phase, 'Planning');
    assert.deepEqual(r2.actions.filter((a) => a.kind === 'plan'), [{ kind: 'plan', request: 2, gpus: 4, gpuType: 'cpu', slice: { gpu: 'cpu', nodes: 1, gpusPerNode: 4 }, marginFactor: 1.15 }]);
  });

  it('out_of_memory after maxReplans re-plans → Failed (OutOfMemory)', () => {
    const d = new Driver().toRunning();
    for (let i = 1; i <= DEFAULT_LIFECYCLE_CONFIG.oom.maxReplans; i++) {
      d.step(fail(d, 'out_of_memory'));
      d.step({ attempt: attempt(d, { stopped: true }) });
      d.step({ plan: { request: d.st.planning!.request, ok: true, plan: plan(`p${i + 1}`) } });
      d.step({ placement: { request: d.st.queued!.request, ok: true, placement: placement() } });
      d.step({ attempt: attempt(d, { started: 4 }) });
      assert.equal(d.st.phase, 'Running');
    }
    const r = d.step(fail(d, 'out_of_memory'));
    assert.equal(r.status.phase, 'Failed');
    assert.equal(r.status.reason, 'OutOfMemory');
    assert.equal(r.status.restartCount, 0);
  });

  it('a lost node holding ranks → Restarting (NodeLost); a lost node without ranks is ignored', () => {
    const d = new Driver().toRunning();
    assert.equal(d.step({ lostNodes: ['elsewhere'] }).status.phase, 'Running');
    const r = d.step({ lostNodes: ['n1b'] });
    assert.equal(r.status.phase, 'Restarting');
    assert.equal(r.status.reason, 'NodeLost');
    assert.equal(r.status.lastFailure?.node, 'n1b');
  });

  it('watchdog: no step within max(minGrace, k × predicted step) → Restarting (Hung)', () => {
    const d = new Driver().toRunning(plan('p1', 4, 60)); // k=10 × 60 s = 600 s > minGrace 300 s
    d.step({ attempt: attempt(d, { lastStep: { step: 5, time: d.now } }) });
    const quiet = d.step({ attempt: attempt(d, { lastStep: { step: 5, time: d.now } }) }, 599 * S);
    assert.equal(quiet.status.phase, 'Running');
    assert.deepEqual(quiet.actions, [{ kind: 'requeueAfter', seconds: 1 }]);
    const r = d.step({ attempt: attempt(d, { lastStep: { step: 5, time: d.now - 599 * S } }) }, 2 * S);
    assert.equal(r.status.phase, 'Restarting');
    assert.equal(r.status.reason, 'Hung');
    assert.equal(r.status.lastFailure?.class, 'hung');
  });

  it('watchdog: the minimum grace applies to fast steps', () => {
    const d = new Driver().toRunning(plan('p1', 4, 0.5));
    d.step({ attempt: attempt(d, { lastStep: { step: 5, time: d.now } }) });
    assert.equal(d.step({}, 299 * S).status.phase, 'Running');
    assert.equal(d.step({}, 2 * S).status.phase, 'Restarting');
  });

  it('watchdog: no first step within the start-up grace → Hung', () => {
    const d = new Driver().toRunning();
    assert.equal(d.step({}, (DEFAULT_LIFECYCLE_CONFIG.watchdog.startupGraceSeconds - 1) * S).status.phase, 'Running');
    assert.equal(d.step({}, 2 * S).status.reason, 'Hung');
  });

  it('watchdog: ranks that never all start → Hung from Scheduled', () => {
    const d = new Driver();
    d.step();
    d.step({ plan: { request: 1, ok: true, plan: plan() } });
    d.step({ placement: { request: 1, ok: true, placement: placement() } });
    const r = d.step({ attempt: attempt(d, { started: 2 }) }, (DEFAULT_LIFECYCLE_CONFIG.watchdog.startupGraceSeconds + 1) * S);
    assert.equal(r.status.phase, 'Restarting');
    assert.equal(r.status.reason, 'Hung');
  });

  it('activeDeadlineSeconds → Failed (DeadlineExceeded), ranks stopped', () => {
    const d = new Driver(spec({ activeDeadlineSeconds: 3600 })).toRunning();
    assert.deepEqual(d.step({}, 100 * S).actions.find((a) => a.kind === 'requeueAfter'), { kind: 'requeueAfter', seconds: 1800 - 100 });
    const r = d.step({}, 3600 * S);
    assert.equal(r.status.phase, 'Failed');
    assert.equal(r.status.reason, 'DeadlineExceeded');
    assert.deepEqual(r.actions, [{ kind: 'stop', attempt: 1, reason: 'DeadlineExceeded' }]);
  });

  it('suspend while Running → Suspended (ranks stopped); resume → Pending, queued with the same plan, deadline clock reset', () => {
    const d = new Driver().toRunning();
    d.setSpec({ ...d.job.spec, suspend: true });
    const r = d.step({}, 10 * S);
    assert.equal(r.status.phase, 'Suspended');
    assert.deepEqual(r.actions, [{ kind: 'stop', attempt: 1, reason: 'Suspended' }]);
    assert.equal(r.status.observedGeneration, 2);
    assert.equal(r.status.restartCount, 0);
    d.setSpec({ ...d.job.spec, suspend: false });
    const r2 = d.step({}, 10 * S);
    assert.equal(r2.status.phase, 'Pending');
    assert.deepEqual(r2.actions, [{ kind: 'schedule', request: 2, planId: 'p1', gpus: 4 }]);
    assert.equal(r2.status.startTime, d.now);
    assert.equal(getCondition(r2.status.conditions, 'Suspended')?.status, 'False');
    assert.deepEqual(r2.events.map((e) => e.reason), ['Resumed', 'Queued']);
  });

  it('suspend while Planning drops the request; resume re-plans', () => {
    const d = new Driver();
    d.step();
    d.setSpec({ ...d.job.spec, suspend: true });
    const r = d.step();
    assert.equal(r.status.phase, 'Suspended');
    assert.deepEqual(r.actions, []);
    assert.equal(d.step({ plan: { request: 1, ok: true, plan: plan() } }).status.phase, 'Suspended');
    d.setSpec({ ...d.job.spec, suspend: false });
    const r2 = d.step({ plan: { request: 1, ok: true, plan: plan() } });
    assert.equal(r2.status.phase, 'Planning');
    assert.equal(r2.actions[0]?.kind, 'plan');
  });

  it('cancel while Running → Failed (Cancelled) with a stop; cancel while Pending → no stop', () => {
    const d = new Driver().toRunning();
    const r = d.step({ cancelRequested: true });
    assert.equal(r.status.phase, 'Failed');
    assert.equal(r.status.reason, 'Cancelled');
    assert.deepEqual(r.actions, [{ kind: 'stop', attempt: 1, reason: 'Cancelled' }]);
    const p = new Driver();
    p.step();
    const r2 = p.step({ cancelRequested: true });
    assert.equal(r2.status.reason, 'Cancelled');
    assert.deepEqual(r2.actions, []);
  });

  it('ttlSecondsAfterFinished → delete once, after the TTL', () => {
    const d = new Driver(spec({ ttlSecondsAfterFinished: 60 })).toRunning();
    const done = d.step({ attempt: attempt(d, { succeeded: 4 }) });
    assert.deepEqual(done.actions, [{ kind: 'requeueAfter', seconds: 60 }]);
    assert.deepEqual(d.step({}, 30 * S).actions, [{ kind: 'requeueAfter', seconds: 30 }]);
    const r = d.step({}, 30 * S);
    assert.deepEqual(r.actions, [{ kind: 'delete' }]);
    assert.deepEqual(r.events.map((e) => e.reason), ['TTLExpired']);
    assert.deepEqual(d.step({}, S).actions, []);
  });

  it('a terminal phase never changes, whatever is observed', () => {
    const d = new Driver().toRunning();
    d.step({ cancelRequested: true });
    const before = d.st;
    d.setSpec({ ...d.job.spec, suspend: true });
    const r = d.step({ ...fail(d, 'infra_error'), lostNodes: ['n1'], cancelRequested: true }, 10 * S);
    assert.equal(r.status.phase, 'Failed');
    assert.deepEqual(r.actions, []);
    assert.deepEqual({ ...r.status, observedGeneration: 0 }, { ...before, observedGeneration: 0 });
  });

  it('a change to a plan input re-plans at the next scheduling point', () => {
    const d = new Driver();
    d.step();
    d.step({ plan: { request: 1, ok: true, plan: plan() } });
    d.setSpec(spec({ training: { globalBatch: 16, steps: 100 } }));
    const r = d.step();
    assert.equal(r.status.phase, 'Planning');
    assert.match(r.status.message, /spec or the memory margin changed/);
  });

  it('reports of an older attempt are ignored', () => {
    const d = new Driver().toRunning();
    d.step(fail(d, 'infra_error'));
    d.step({ attempt: attempt(d, { stopped: true }) }, 10 * S);
    d.step({ placement: { request: d.st.queued!.request, ok: true, placement: placement() } });
    const r = d.step({ attempt: { attempt: 1, started: 4, succeeded: 4, failures: [{ rank: 0, node: 'n1', class: 'user_error', time: d.now }], stopped: true } });
    assert.equal(r.status.phase, 'Scheduled');
    assert.equal(r.status.attempt, 2);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Properties over random histories

type Step =
  | { k: 'time'; ms: number }
  | { k: 'planOk' }
  | { k: 'planNo' }
  | { k: 'placeOk' }
  | { k: 'placeNo' }
  | { k: 'started' }
  | { k: 'succeeded' }
  | { k: 'fail'; cls: FailureClass; code: number }
  | { k: 'stopped' }
  | { k: 'lost' }
  | { k: 'ckpt'; step: number }
  | { k: 'suspend'; on: boolean }
  | { k: 'cancel' }
  | { k: 'progress' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ k: fc.constant('time' as const), ms: fc.integer({ min: 0, max: 4000 * S }) }), weight: 3 },
  { arbitrary: fc.constant({ k: 'planOk' as const }), weight: 3 },
  { arbitrary: fc.constant({ k: 'planNo' as const }), weight: 1 },
  { arbitrary: fc.constant({ k: 'placeOk' as const }), weight: 3 },
  { arbitrary: fc.constant({ k: 'placeNo' as const }), weight: 1 },
  { arbitrary: fc.constant({ k: 'started' as const }), weight: 3 },
  { arbitrary: fc.constant({ k: 'succeeded' as const }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('fail' as const), cls: fc.constantFrom(...FAILURE_CLASSES), code: fc.integer({ min: 0, max: 3 }) }), weight: 3 },
  { arbitrary: fc.constant({ k: 'stopped' as const }), weight: 3 },
  { arbitrary: fc.constant({ k: 'lost' as const }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('ckpt' as const), step: fc.integer({ min: 1, max: 100 }) }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('suspend' as const), on: fc.boolean() }), weight: 1 },
  { arbitrary: fc.constant({ k: 'cancel' as const }), weight: 1 },
  { arbitrary: fc.constant({ k: 'progress' as const }), weight: 2 },
);

function observe(job: JobState, s: Step, now: number): { obs: Observation; job: JobState; advance: number } {
  const st = job.status;
  const att = (over: Partial<AttemptObservation>): AttemptObservation => ({ attempt: st?.attempt ?? 0, started: st?.world ?? 0, succeeded: 0, failures: [], stopped: false, ...over });
  switch (s.k) {
    case 'time':
      return { obs: {}, job, advance: s.ms };
    case 'planOk':
      return { obs: st?.planning ? { plan: { request: st.planning.request, ok: true, plan: plan(`p${st.planning.request}`, 4, 3) } } : {}, job, advance: 0 };
    case 'planNo':
      return { obs: st?.planning ? { plan: { request: st.planning.request, ok: false, reason: 'too big' } } : {}, job, advance: 0 };
    case 'placeOk':
      return { obs: st?.queued ? { placement: { request: st.queued.request, ok: true, placement: placement() } } : {}, job, advance: 0 };
    case 'placeNo':
      return { obs: st?.queued ? { placement: { request: st.queued.request, ok: false, reason: 'needs 4 × cpu, 1 free' } } : {}, job, advance: 0 };
    case 'started':
      return { obs: { attempt: att({}) }, job, advance: 0 };
    case 'succeeded':
      return { obs: { attempt: att({ succeeded: st?.world ?? 0, stopped: true }) }, job, advance: 0 };
    case 'fail':
      return { obs: { attempt: att({ failures: [{ rank: 0, node: 'n1', class: s.cls, exitCode: s.code, time: now }] }) }, job, advance: 0 };
    case 'stopped':
      return { obs: { attempt: att({ stopped: true }) }, job, advance: 0 };
    case 'lost':
      return { obs: { lostNodes: ['n1'] }, job, advance: 0 };
    case 'ckpt':
      return { obs: { attempt: att({ checkpoint: { step: s.step, uri: `/ck/${s.step}` } }) }, job, advance: 0 };
    case 'progress':
      return { obs: { attempt: att({ lastStep: { step: 1, time: now } }) }, job, advance: 0 };
    case 'suspend':
      return { obs: {}, job: { ...job, spec: { ...job.spec, suspend: s.on }, generation: job.generation + (job.spec.suspend === s.on ? 0 : 1) }, advance: 0 };
    case 'cancel':
      return { obs: { cancelRequested: true }, job, advance: 0 };
  }
}

describe('domain/lifecycle: properties over random histories', () => {
  const policy = spec({
    restartPolicy: { maxRestarts: 2, backoffSeconds: 5, exitCodeRules: [{ codes: [2], action: 'restart' }, { codes: [3], action: 'fail' }] },
    activeDeadlineSeconds: 50_000,
    ttlSecondsAfterFinished: 100,
  });

  it('restarts never exceed maxRestarts; terminal phases never change; every transition records a condition with its reason and an event; decide is idempotent; launches and stops are well-formed', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 60 }), (steps) => {
        let job: JobState = { name: 'j', generation: 1, createdAt: T0, spec: policy };
        let now = T0;
        let terminal: string | undefined;
        let lastAttempt = 0;
        const stopped = new Set<number>();
        let margin = 1;
        for (const s of steps) {
          const o = observe(job, s, now);
          job = o.job;
          now += o.advance;
          const before = job.status;
          const r = decide(job, o.obs, now);
          // idempotence: same inputs again → same status, no events, only wake-ups
          const again = decide({ ...job, status: r.status }, o.obs, now);
          assert.deepEqual(again.status, r.status);
          assert.deepEqual(again.events, []);
          assert.ok(again.actions.every((a) => a.kind === 'requeueAfter'), JSON.stringify(again.actions));
          // restarts bounded
          assert.ok(r.status.restartCount <= policy.restartPolicy.maxRestarts);
          assert.ok(r.status.oomCount <= DEFAULT_LIFECYCLE_CONFIG.oom.maxReplans);
          assert.ok(r.status.marginFactor >= margin);
          margin = r.status.marginFactor;
          // terminal stays terminal
          if (terminal) assert.equal(r.status.phase, terminal);
          if (isTerminal(r.status.phase)) terminal = r.status.phase;
          // every phase change: a condition carries the phase reason, set now, and an event was recorded
          if (!before || before.phase !== r.status.phase || before.reason !== r.status.reason) {
            if (before) {
              assert.ok(r.status.conditions.some((c) => c.reason === r.status.reason && c.observedGeneration === job.generation), `no condition with reason ${r.status.reason}`);
              assert.ok(r.events.length > 0, 'a transition without an event');
            }
          }
          for (const c of r.status.conditions) assert.match(c.reason, /^[A-Z][A-Za-z0-9]*$/);
          // launches count up by one; a stop targets a launched attempt, once
          for (const a of r.actions) {
            if (a.kind === 'launch') {
              assert.equal(a.attempt, lastAttempt + 1);
              lastAttempt = a.attempt;
            }
            if (a.kind === 'stop') {
              assert.ok(a.attempt >= 1 && a.attempt <= lastAttempt);
              assert.ok(!stopped.has(a.attempt), `second stop for attempt ${a.attempt}`);
              stopped.add(a.attempt);
            }
          }
          assert.equal(r.status.observedGeneration, job.generation);
          job = { ...job, status: r.status };
        }
      }),
      { numRuns: 400 },
    );
  });
});
