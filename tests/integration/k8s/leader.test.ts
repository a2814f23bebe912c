/**
 * Two controller replicas against the fake API server and one store: only the Lease holder reconciles (the
 * standby answers the API with 503 and writes nothing to the MistJobs); killing the leader (it stops renewing and
 * releases nothing) hands over within the lease duration, with a higher store epoch that the agents honour: a
 * command with the old epoch is refused.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { isMistError } from '../../../protocol/src/errors.js';
import { CommandClient } from '../../../controller/src/bus/commands.js';
import { startNatsServer, type NatsServer } from '../../support/nats-server.js';
import type { FakeKubeApi } from '../../support/fake-kube-api.js';
import { startAgents, stopAgents, tempDir } from '../controller/harness.js';
import type { AgentProc } from '../control-plane/harness.js';
import { NS, ids, kubectl, mistJob, startFakeApi, startInstance, waitFor, type Instance } from './harness.js';

describe('k8s leader election: two replicas, one leader, handover on a crash', function () {
  this.timeout(300_000);
  const LEASE = 4;
  let nats: NatsServer;
  let fake: FakeKubeApi;
  let dir: string;
  let agents: AgentProc[] = [];
  let a: Instance;
  let b: Instance;

  before(async () => {
    nats = await startNatsServer();
    fake = await startFakeApi();
    dir = tempDir('k8s-leader');
    agents = startAgents({ nats: nats.url, dir, count: 2 });
    a = await startInstance({ fake, nats: nats.url, dir, name: 'ctl-a', leaderElect: true, leaseDurationSeconds: LEASE });
    await waitFor('ctl-a to lead', () => a.ctl.isLeader && a.kube.operator() !== undefined, 30_000);
    b = await startInstance({ fake, nats: nats.url, dir, name: 'ctl-b', leaderElect: true, leaseDurationSeconds: LEASE });
  });
  after(async () => {
    await a?.stop().catch(() => {});
    await b?.stop().catch(() => {});
    await stopAgents(dir, agents);
    await fake?.stop();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('only the leader acts; killing it hands over within the lease duration with a higher epoch that agents honour', async () => {
    const lease = fake.get('leases', NS, 'mist-controller')!;
    assert.equal(lease.spec.holderIdentity, 'ctl-a');
    assert.match(lease.spec.renewTime, /\.\d{6}Z$/);
    assert.ok(!b.ctl.isLeader);
    assert.equal((await b.ctl.ready()).ready, false);
    await assert.rejects(b.ctl.listJobs(), (e: unknown) => isMistError(e) && e.code === 'UNAVAILABLE' && /standby/.test(e.message));
    const oldEpoch = a.ctl.epoch;

    await kubectl(fake).createNamespacedCustomObject({ ...ids, body: mistJob('ha-1', { steps: 3, suspend: true }) });
    await waitFor('ha-1 suspended by the leader', () => fake.get('mistjobs', NS, 'ha-1')?.status?.phase === 'Suspended', 30_000);
    const writers = new Set(fake.eventsFor('ha-1').map((e) => e.reportingInstance));
    assert.deepEqual([...writers], ['ctl-a'], 'only the leader writes Events');

    await waitFor('agents to know the leader epoch', () => a.ctl.aliveNodes().length === 2, 30_000);
    // the leader crashes: no release, no more renewals
    const t0 = Date.now();
    await a.kube.crash();
    await a.ctl.close();
    await waitFor('ctl-b to take over', () => b.ctl.isLeader && b.kube.operator() !== undefined, (LEASE + 3) * 1000);
    const took = (Date.now() - t0) / 1000;
    assert.ok(took <= LEASE + 2, `handover took ${took.toFixed(1)} s (lease ${LEASE} s)`);
    const l2 = fake.get('leases', NS, 'mist-controller')!;
    assert.equal(l2.spec.holderIdentity, 'ctl-b');
    assert.equal(l2.spec.leaseTransitions, 1);
    assert.ok(b.ctl.epoch > oldEpoch, `epoch ${b.ctl.epoch} > ${oldEpoch}`);

    // the new leader reconciles: resume the job, it runs to the end under the new epoch
    await kubectl(fake).patchNamespacedCustomObject({ ...ids, name: 'ha-1', body: { spec: { suspend: false } } }, (await import('./harness.js')).mergePatch);
    await waitFor('ha-1 to succeed under ctl-b', () => fake.get('mistjobs', NS, 'ha-1')?.status?.phase === 'Succeeded', 120_000);
    assert.ok(fake.eventsFor('ha-1').some((e) => e.reportingInstance === 'ctl-b'));

    // agents honour the new epoch: a command with the deposed leader's epoch is refused
    const nc = await connect({ servers: nats.url });
    try {
      const stale = new CommandClient(nc, oldEpoch, { timeoutMs: 5000 });
      const r = await stale.send('n1', { kind: 'status', job: 'ha-1' }, { timeoutMs: 5000 });
      assert.equal(r.ok, false, JSON.stringify(r));
      assert.equal(r.error?.code, 'STALE_EPOCH');
    } finally {
      await nc.close();
    }
  });
});
