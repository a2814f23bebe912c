/**
 * Request shapes with nock@14 (no server): the status write is a merge patch of /status carrying the
 * resourceVersion; finalizer writes too; a Lease is created and renewed with MicroTime timestamps and the
 * resourceVersion of the Lease it read.
 */
import assert from 'node:assert/strict';
import nock from 'nock';
import * as k8s from '@kubernetes/client-node';
import { MistJobApi } from '../../../controller/src/operator/k8s/client.js';
import { LeaseElector } from '../../../controller/src/operator/k8s/leader.js';

const SERVER = 'http://kube.example:6443';

function kubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: SERVER, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u', namespace: 'ns' }],
    currentContext: 'x',
  });
  return kc;
}

describe('operator/k8s request shapes (nock)', () => {
  before(() => nock.disableNetConnect());
  after(() => {
    nock.cleanAll();
    nock.enableNetConnect();
  });
  afterEach(() => nock.cleanAll());

  it('status: PATCH /status with application/merge-patch+json and metadata.resourceVersion', async () => {
    let seen: any;
    const scope = nock(SERVER)
      .patch('/apis/mist.io/v1alpha1/namespaces/ns/mistjobs/j/status', (b) => ((seen = b), true))
      .matchHeader('content-type', 'application/merge-patch+json')
      .matchHeader('authorization', 'Bearer t')
      .reply(200, { metadata: { name: 'j', resourceVersion: '8' }, status: { phase: 'Running' } });
    const api = new MistJobApi(kubeConfig(), 'ns');
    const r = await api.patchStatus('j', '7', { phase: 'Running', conditions: [] });
    assert.equal(r.metadata.resourceVersion, '8');
    assert.deepEqual(seen, { metadata: { resourceVersion: '7' }, status: { phase: 'Running', conditions: [] } });
    scope.done();
  });

  it('finalizers: merge patch of the main resource with the whole list and the resourceVersion', async () => {
    let seen: any;
    const scope = nock(SERVER)
      .patch('/apis/mist.io/v1alpha1/namespaces/ns/mistjobs/j', (b) => ((seen = b), true))
      .matchHeader('content-type', 'application/merge-patch+json')
      .reply(409, { kind: 'Status', code: 409, reason: 'Conflict', message: 'modified' });
    const api = new MistJobApi(kubeConfig(), 'ns');
    await assert.rejects(api.patchFinalizers('j', '3', ['mist.io/stop-ranks']), (e: any) => e.code === 409);
    assert.deepEqual(seen, { metadata: { resourceVersion: '3', finalizers: ['mist.io/stop-ranks'] } });
    scope.done();
  });

  it('lease: created when absent, then renewed by PUT with its resourceVersion and MicroTime timestamps', async () => {
    const bodies: any[] = [];
    const micro = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
    let created: any;
    const scope = nock(SERVER)
      .get('/apis/coordination.k8s.io/v1/namespaces/ns/leases/mist-controller')
      .reply(404, { kind: 'Status', code: 404, reason: 'NotFound' })
      .post('/apis/coordination.k8s.io/v1/namespaces/ns/leases', (b) => ((created = b), true))
      .reply(201, (_u, b: any) => ({ ...b, metadata: { ...b.metadata, resourceVersion: '11' } }))
      .get('/apis/coordination.k8s.io/v1/namespaces/ns/leases/mist-controller')
      .reply(200, () => ({ ...created, metadata: { ...created.metadata, resourceVersion: '11' } }))
      .put('/apis/coordination.k8s.io/v1/namespaces/ns/leases/mist-controller', (b) => (bodies.push(b), true))
      .reply(200, (_u, b: any) => ({ ...b, metadata: { ...b.metadata, resourceVersion: '12' } }));
    let led = 0;
    let renewed!: () => void;
    const renewedP = new Promise<void>((r) => (renewed = r));
    const el = new LeaseElector(kubeConfig(), {
      namespace: 'ns',
      identity: 'me',
      leaseDurationSeconds: 3,
      renewDeadlineSeconds: 2,
      retryPeriodSeconds: 0.05,
      onStartedLeading: () => void led++,
      onStoppedLeading: () => {},
    });
    scope.on('replied', (req: any) => req.method === 'PUT' && renewed());
    el.start();
    await renewedP;
    await el.abandon();
    assert.equal(led, 1);
    assert.equal(created.spec.holderIdentity, 'me');
    assert.equal(created.spec.leaseDurationSeconds, 3);
    assert.equal(created.spec.leaseTransitions, 0);
    assert.match(created.spec.acquireTime, micro);
    assert.match(created.spec.renewTime, micro);
    const put = bodies[0];
    assert.equal(put.metadata.resourceVersion, '11', 'the renewal is conditional on the Lease it read');
    assert.equal(put.spec.holderIdentity, 'me');
    assert.match(put.spec.renewTime, micro);
    assert.equal(put.spec.leaseTransitions, 0, 'a renewal is not a transition');
  });
});
