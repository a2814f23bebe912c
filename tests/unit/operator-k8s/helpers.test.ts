/**
 * Pure helpers of the MistJob adapter: status mapping and diff, merge patches, events, MicroTime, managedBy.
 */
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { formatMicroTime, isMicroTime, kubeEvent, mergePatchDiff, mistJobStatus, statusPatch } from '../../../controller/src/operator/k8s/status.js';
import { jobDocument, managedByMist } from '../../../controller/src/operator/k8s/operator.js';
import { applyMergePatch } from '../../support/fake-kube-api.js';
import type { JobStatus } from '../../../controller/src/domain/lifecycle.js';

const T = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

function running(): JobStatus {
  return {
    phase: 'Running',
    reason: 'Running',
    message: 'all 2 ranks started',
    observedGeneration: 3,
    conditions: [{ type: 'Running', status: 'True', reason: 'Running', message: 'm', lastTransitionTime: '2026-01-02T03:04:05.678Z', observedGeneration: 3 }],
    phaseSince: T,
    startTime: T,
    planRequests: 1,
    plan: { id: 'p1', gpus: 2, cluster: { gpu: 'cpu', nodes: 1, gpusPerNode: 2 }, predictedStepSeconds: 0.5, inputsKey: 'k', marginFactor: 1 },
    scheduleRequests: 1,
    attempt: 1,
    restartCount: 0,
    oomCount: 0,
    marginFactor: 1,
    progress: { step: 10, totalSteps: 30, time: T },
  };
}

describe('operator/k8s helpers', () => {
  it('formats MicroTime with six fractional digits, as client-node V1MicroTime does', () => {
    assert.equal(formatMicroTime(T), '2026-01-02T03:04:05.678000Z');
    assert.equal(formatMicroTime(T), new k8s.V1MicroTime(T).toISOString());
    assert.equal(JSON.stringify({ t: new k8s.V1MicroTime(T) }), '{"t":"2026-01-02T03:04:05.678000Z"}');
    assert.ok(isMicroTime(formatMicroTime(0)));
    assert.ok(!isMicroTime(new Date(T).toISOString()), 'toISOString() has three digits: the API server refuses it');
  });

  it('maps a controller status to the MistJob status of the CRD', () => {
    const s = mistJobStatus({ status: running(), planSummary: 'pp1 tp1 dp2 mb1 z0', planSpace: 'mist', measuredStepSeconds: 0.25, tokensPerSecond: 1000 });
    assert.equal(s.phase, 'Running');
    assert.equal(s.observedGeneration, 3);
    assert.deepEqual(s.plan, { id: 'p1', gpus: 2, summary: 'pp1 tp1 dp2 mb1 z0', space: 'mist' });
    assert.equal(s.predictedStepSeconds, 0.5);
    assert.equal(s.measuredStepSeconds, 0.25);
    assert.deepEqual(s.progress, { step: 10, totalSteps: 30, etaSeconds: 5, tokensPerSecond: 1000 });
    assert.equal(s.restarts, 0);
    assert.equal(s.startTime, '2026-01-02T03:04:05.678Z');
    assert.equal(s.completionTime, undefined);
    assert.deepEqual(mistJobStatus({}), {});
  });

  it('diffs statuses into a minimal merge patch, null when equal', () => {
    const f = { status: running(), planSummary: 'x' };
    const desired = mistJobStatus(f);
    assert.equal(statusPatch({ status: JSON.parse(JSON.stringify(desired)) }, f), null);
    const st2 = running();
    st2.progress = { step: 11, totalSteps: 30, time: T };
    const p = statusPatch({ status: desired }, { ...f, status: st2 })!;
    assert.deepEqual(p, { progress: { step: 11, etaSeconds: 9.5 } });
    // removed fields become null; arrays are replaced whole
    assert.deepEqual(mergePatchDiff({ a: 1, b: [1, 2], c: { d: 1, e: 2 } }, { b: [1], c: { d: 1 } }), { a: null, b: [1], c: { e: null } });
    // applying the patch gives the desired object
    const cur = { a: 1, b: [1, 2], c: { d: 1, e: 2 } };
    const want = { b: [1], c: { d: 1 } };
    assert.deepEqual(applyMergePatch(cur, mergePatchDiff(cur, want)), want);
    assert.deepEqual(statusPatch({}, f), desired);
  });

  it('maps a lifecycle event to a core/v1 Event about the MistJob', () => {
    const obj = { metadata: { name: 'j', namespace: 'ns', uid: 'u1', resourceVersion: '7' } };
    const e = kubeEvent(obj, { type: 'Warning', reason: 'Restarting', message: 'rank 1 died', time: '2026-01-02T03:04:05.678Z' }, { instance: 'ctl-a', seq: 1 });
    assert.equal(e.type, 'Warning');
    assert.equal(e.reason, 'Restarting');
    assert.deepEqual(e.involvedObject, { apiVersion: 'mist.io/v1alpha1', kind: 'MistJob', name: 'j', namespace: 'ns', uid: 'u1', resourceVersion: '7' });
    assert.equal(e.metadata!.namespace, 'ns');
    assert.match(e.metadata!.name!, /^j\.[0-9a-f]+$/);
    assert.notEqual(e.metadata!.name, kubeEvent(obj, { type: 'Warning', reason: 'Restarting', message: 'x', time: '2026-01-02T03:04:05.678Z' }, { instance: 'ctl-a', seq: 2 }).metadata!.name);
    assert.equal(e.reportingInstance, 'ctl-a');
    assert.equal(e.count, 1);
  });

  it('managedBy: absent or mist.io/controller is Mist; anything else is left alone; the job document drops it', () => {
    assert.ok(managedByMist({ spec: {} }));
    assert.ok(managedByMist({ spec: { managedBy: 'mist.io/controller' } }));
    assert.ok(!managedByMist({ spec: { managedBy: 'kueue.x-k8s.io/multikueue' } }));
    const doc = jobDocument({ metadata: { name: 'j', namespace: 'ns', uid: 'u', resourceVersion: '3', generation: 2, finalizers: ['f'] }, spec: { managedBy: 'mist.io/controller', runtime: 'reference' } });
    assert.deepEqual(doc, { apiVersion: 'mist.io/v1alpha1', kind: 'MistJob', metadata: { name: 'j', namespace: 'ns' }, spec: { runtime: 'reference' } });
  });
});
