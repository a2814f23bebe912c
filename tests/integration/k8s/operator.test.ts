/**
 * The MistJob operator against the loopback fake API server, with the real controller core, a real nats-server
 * and two CPU agents running the reference runtime: the lifecycle mirrored into status/conditions/Events, the
 * generation → observedGeneration contract, conflicts retried, 410 relists, deletion stopping ranks behind the
 * finalizer, suspend holding a job, foreign managedBy ignored, and the CRD schema refusing a bad manifest.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startNatsServer, type NatsServer } from '../../support/nats-server.js';
import type { FakeKubeApi } from '../../support/fake-kube-api.js';
import { pidAlive, rankPid, startAgents, stopAgents, tempDir } from '../controller/harness.js';
import type { AgentProc } from '../control-plane/harness.js';
import { FINALIZER } from '../../../controller/src/operator/k8s/client.js';
import { NS, condition, ids, kubectl, mergePatch, mistJob, startFakeApi, startInstance, waitFor, type Instance } from './harness.js';

describe('k8s operator: MistJobs against a fake API server', function () {
  this.timeout(300_000);
  let nats: NatsServer;
  let fake: FakeKubeApi;
  let dir: string;
  let agents: AgentProc[] = [];
  let inst: Instance;

  before(async () => {
    nats = await startNatsServer();
    fake = await startFakeApi();
    dir = tempDir('k8s-operator');
    agents = startAgents({ nats: nats.url, dir, count: 2 });
    inst = await startInstance({ fake, nats: nats.url, dir, name: 'ctl-a' });
    await waitFor('agents to register', () => inst.ctl.aliveNodes().length === 2, 30_000);
    await inst.kube.operator()!.synced();
  });
  after(async () => {
    await inst?.stop();
    await stopAgents(dir, agents);
    await fake?.stop();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (name: string) => fake.get('mistjobs', NS, name);
  const statusWrites = (name: string) => fake.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith(`/mistjobs/${name}/status`) && r.status === 200);

  it('create → Planning → Running → Succeeded, with conditions, observedGeneration, Events and the finalizer', async () => {
    await kubectl(fake).createNamespacedCustomObject({ ...ids, body: mistJob('mj-ok', { steps: 6 }) });
    const done = await waitFor('mj-ok to succeed', () => (get('mj-ok')?.status?.phase === 'Succeeded' ? get('mj-ok') : undefined), 120_000);
    assert.deepEqual(done.metadata.finalizers, [FINALIZER]);
    assert.equal(done.status.observedGeneration, 1);
    assert.equal(done.status.reason, 'Completed');
    for (const t of ['Planned', 'Scheduled', 'Succeeded']) assert.equal(condition(done, t)?.status, 'True', `${t}: ${JSON.stringify(done.status.conditions)}`);
    assert.equal(condition(done, 'Running')?.status, 'False');
    for (const c of done.status.conditions) assert.equal(c.observedGeneration, 1);
    assert.ok(done.status.plan?.id && done.status.plan.gpus === 2 && /^pp\d/.test(done.status.plan.summary), JSON.stringify(done.status.plan));
    assert.equal(done.status.progress.step, 6);
    assert.ok(done.status.completionTime && done.status.startTime);
    // the phases went out in order, one status write per change, each a merge patch with a resourceVersion
    const writes = statusWrites('mj-ok');
    const phases = writes.map((w) => w.body.status.phase).filter(Boolean);
    const order = ['Planning', 'Running', 'Succeeded'].map((p) => phases.indexOf(p));
    assert.ok(order.every((i) => i >= 0) && order[0]! < order[1]! && order[1]! < order[2]!, `phases written: ${phases.join(' ')}`);
    for (const w of writes) {
      assert.equal(w.contentType, 'application/merge-patch+json');
      assert.match(w.body.metadata.resourceVersion, /^\d+$/);
    }
    const reasons = fake.eventsFor('mj-ok').map((e) => e.reason);
    for (const r of ['Accepted', 'Planning', 'Queued', 'Placed', 'RanksStarted', 'Completed']) assert.ok(reasons.includes(r), `event ${r} in ${reasons.join(', ')}`);
    const ev = fake.eventsFor('mj-ok')[0]!;
    assert.equal(ev.involvedObject.kind, 'MistJob');
    assert.equal(ev.involvedObject.uid, done.metadata.uid);
    // nothing more to write: a resync of an unchanged job writes no status
    const before = statusWrites('mj-ok').length;
    fake.closeWatches();
    await waitFor('the watch to reopen', () => fake.openWatches > 0);
    await waitFor('a resync', async () => {
      await inst.ctl.getJob('mj-ok');
      return true;
    });
    assert.equal(statusWrites('mj-ok').length, before);
  });

  it('suspend holds a job (nothing planned or launched); spec changes bump generation and observedGeneration follows; resume runs it', async () => {
    const co = kubectl(fake);
    await co.createNamespacedCustomObject({ ...ids, body: mistJob('mj-susp', { steps: 4, suspend: true }) });
    const s1 = await waitFor('Suspended', () => (get('mj-susp')?.status?.phase === 'Suspended' ? get('mj-susp') : undefined), 30_000);
    assert.equal(condition(s1, 'Suspended')?.status, 'True');
    // a spec change while suspended: generation 2, observed; still nothing planned or launched
    await co.patchNamespacedCustomObject({ ...ids, name: 'mj-susp', body: { spec: { training: { steps: 5 } } } }, mergePatch);
    assert.equal(get('mj-susp')!.metadata.generation, 2);
    const s2 = await waitFor('observedGeneration 2', () => (get('mj-susp')?.status?.observedGeneration === 2 ? get('mj-susp') : undefined), 30_000);
    assert.equal(s2.status.phase, 'Suspended');
    const facts = inst.ctl.jobFacts('mj-susp')!;
    assert.equal(facts.status!.attempt, 0, 'no launch while suspended');
    assert.equal(facts.status!.planRequests, 0, 'no plan while suspended');
    assert.equal(s2.status.plan, undefined);
    // a status-only or metadata-only write does not bump the generation
    await co.patchNamespacedCustomObject({ ...ids, name: 'mj-susp', body: { metadata: { labels: { team: 'a' } } } }, mergePatch);
    assert.equal(get('mj-susp')!.metadata.generation, 2);
    // resume
    await co.patchNamespacedCustomObject({ ...ids, name: 'mj-susp', body: { spec: { suspend: false } } }, mergePatch);
    const done = await waitFor('resumed job to succeed', () => (get('mj-susp')?.status?.phase === 'Succeeded' ? get('mj-susp') : undefined), 120_000);
    assert.equal(done.metadata.generation, 3);
    assert.equal(done.status.observedGeneration, 3);
    assert.equal(done.status.progress.totalSteps, 5, 'the changed spec was used');
    assert.equal(condition(done, 'Suspended')?.status, 'False');
    assert.ok(fake.eventsFor('mj-susp').some((e) => e.reason === 'Resumed'));
  });

  it('immutable fields: the API server refuses a runtime change (422); a spec.model change is ignored with a Warning while other changes apply', async () => {
    const co = kubectl(fake);
    await co.createNamespacedCustomObject({ ...ids, body: mistJob('mj-immut', { steps: 4, suspend: true }) });
    await waitFor('Suspended', () => (get('mj-immut')?.status?.phase === 'Suspended' ? get('mj-immut') : undefined), 30_000);
    await assert.rejects(
      co.patchNamespacedCustomObject({ ...ids, name: 'mj-immut', body: { spec: { runtime: 'other' } } }, mergePatch),
      (e: any) => e.code === 422 && /spec\.runtime is immutable/.test(JSON.stringify(e.body)),
    );
    assert.equal(get('mj-immut')!.spec.runtime, 'reference');
    // the CRD cannot type spec.model, so the API server takes the change; the controller keeps the old model
    await co.patchNamespacedCustomObject({ ...ids, name: 'mj-immut', body: { spec: { model: { preset: 'tiny-gpt' }, training: { steps: 5 } } } }, mergePatch);
    assert.equal(get('mj-immut')!.metadata.generation, 2);
    await waitFor('observedGeneration 2', () => get('mj-immut')?.status?.observedGeneration === 2, 30_000);
    const warn = await waitFor('the ImmutableFieldChanged event', () => fake.eventsFor('mj-immut').find((e) => e.reason === 'ImmutableFieldChanged'), 30_000);
    assert.equal(warn.type, 'Warning');
    assert.match(warn.note ?? warn.message, /spec\.model is immutable: the change is ignored/);
    const detail = (await inst.ctl.getJob('mj-immut')) as { spec: { model: unknown; training: { steps: number } } };
    assert.deepEqual(detail.spec.model, { preset: 'tiny-llama' }, 'the job keeps its model');
    assert.equal(detail.spec.training.steps, 5, 'the other change applied');
    // one event per generation, not one per resync
    fake.closeWatches();
    await waitFor('the watch to reopen', () => fake.openWatches > 0);
    await inst.kube.operator()!.synced();
    assert.equal(fake.eventsFor('mj-immut').filter((e) => e.reason === 'ImmutableFieldChanged').length, 1);
    await co.deleteNamespacedCustomObject({ ...ids, name: 'mj-immut' });
    await waitFor('mj-immut to go', () => get('mj-immut') === undefined, 60_000);
  });

  it('conflicting status writes are retried after a re-read (409 → GET → merge patch with the new resourceVersion)', async () => {
    const op = inst.kube.operator()!;
    const conflictsBefore = op.stats.conflicts;
    fake.failNext(3, 409, { method: 'PATCH', pathIncludes: '/mj-conflict/status' });
    await kubectl(fake).createNamespacedCustomObject({ ...ids, body: mistJob('mj-conflict', { steps: 4, suspend: true }) });
    await waitFor('status despite conflicts', () => get('mj-conflict')?.status?.phase === 'Suspended', 30_000);
    assert.ok(op.stats.conflicts >= conflictsBefore + 3, `conflicts ${op.stats.conflicts - conflictsBefore}`);
    const conflicted = fake.requests.filter((r) => r.path.endsWith('/mj-conflict/status') && r.status === 409).length;
    assert.equal(conflicted, 3);
    assert.ok(fake.requests.some((r) => r.method === 'GET' && r.path.endsWith('/mistjobs/mj-conflict')), 'the object was re-read');
    // a real race: someone else writes the object between our read and our write
    await kubectl(fake).patchNamespacedCustomObject({ ...ids, name: 'mj-conflict', body: { metadata: { annotations: { touched: 'yes' } }, spec: { suspend: false } } }, mergePatch);
    await waitFor('observedGeneration 2 after the race', () => get('mj-conflict')?.status?.observedGeneration === 2, 60_000);
  });

  it('a watch that ends in 410 Gone relists, and events after it are seen', async () => {
    const inf = inst.kube.operator()!.informer;
    const lists = inf.stats.lists;
    fake.expireWatches();
    await kubectl(fake).createNamespacedCustomObject({ ...ids, body: mistJob('mj-after-410', { steps: 3, suspend: true }) });
    await waitFor('relist', () => inf.stats.lists > lists && inf.stats.expired > 0, 20_000);
    await waitFor('the job created during the relist to be seen', () => get('mj-after-410')?.status?.phase === 'Suspended', 30_000);
    // a re-watch answered with 410 (its resourceVersion compacted away) relists too
    fake.forceGone(1);
    fake.closeWatches();
    await waitFor('second relist', () => inf.stats.lists > lists + 1, 20_000);
    await waitFor('a BOOKMARK to move the resourceVersion', () => inf.stats.bookmarks > 0, 10_000);
  });

  it('deleting a running job stops its ranks (no orphans), then removes the finalizer and the object', async () => {
    const co = kubectl(fake);
    await co.createNamespacedCustomObject({ ...ids, body: mistJob('mj-del', { steps: 100000 }) });
    await waitFor('mj-del to run', () => get('mj-del')?.status?.phase === 'Running' && (get('mj-del')?.status?.progress?.step ?? 0) >= 1, 120_000);
    const attempt = inst.ctl.jobFacts('mj-del')!.status!.attempt;
    const pids = agents.flatMap((a) => [0, 1].map((r) => rankPid(a.stateDir, 'mj-del', attempt, r))).filter((p): p is number => p !== undefined);
    assert.equal(pids.length, 2, 'two ranks run');
    assert.ok(pids.every(pidAlive));
    await co.deleteNamespacedCustomObject({ ...ids, name: 'mj-del' });
    assert.ok(get('mj-del')?.metadata.deletionTimestamp, 'the finalizer holds the object');
    await waitFor('the object to go', () => get('mj-del') === undefined, 60_000);
    assert.ok(pids.every((p) => !pidAlive(p)), 'every rank was stopped before the finalizer went');
    assert.equal(inst.ctl.jobFacts('mj-del'), undefined);
    assert.equal(await inst.ctl.storeHandle.getJob('mj-del'), null);
    assert.ok(fake.eventsFor('mj-del').some((e) => e.reason === 'RanksStopped'));
  });

  it('spec.managedBy other than Mist leaves the job alone (no finalizer, status or events)', async () => {
    const co = kubectl(fake);
    await co.createNamespacedCustomObject({ ...ids, body: mistJob('mj-foreign', { steps: 3, managedBy: 'kueue.x-k8s.io/multikueue' }) });
    await co.createNamespacedCustomObject({ ...ids, body: mistJob('mj-marker', { steps: 3, suspend: true }) });
    // the marker was created after the foreign job: once it has a status, the foreign job was handled too
    await waitFor('the marker job', () => get('mj-marker')?.status?.phase === 'Suspended', 30_000);
    const foreign = get('mj-foreign')!;
    assert.equal(foreign.status, undefined);
    assert.equal(foreign.metadata.finalizers, undefined);
    assert.deepEqual(fake.eventsFor('mj-foreign'), []);
    assert.equal(inst.ctl.jobFacts('mj-foreign'), undefined);
    assert.ok(!fake.requests.some((r) => r.method !== 'GET' && r.path.includes('/mj-foreign')), 'no write to the foreign job');
  });

  it('the CRD schema refuses an invalid manifest with the field path (422), and a spec the controller refuses fails with the field', async () => {
    const bad = mistJob('mj-bad');
    bad.spec.training.steps = 0;
    await assert.rejects(kubectl(fake).createNamespacedCustomObject({ ...ids, body: bad }), (e: any) => e.code === 422 && /spec\.training\.steps/.test(JSON.stringify(e.body)));
    const refused = mistJob('mj-refused', { suspend: true });
    refused.spec.runtime = 'bash';
    await kubectl(fake).createNamespacedCustomObject({ ...ids, body: refused });
    const st = await waitFor('refusal status', () => (get('mj-refused')?.status?.phase === 'Failed' ? get('mj-refused') : undefined), 30_000);
    assert.equal(st.status.reason, 'InvalidSpec');
    assert.match(st.status.message, /^spec\.runtime/);
    assert.ok(fake.eventsFor('mj-refused').some((e) => e.reason === 'InvalidSpec' && e.type === 'Warning'));
  });
});
