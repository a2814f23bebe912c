/**
 * Agent and NATS failures: kill -9 of an agent mid-run (node lost within the timeout; ranks keep running, are
 * adopted by the restarted agent and their reports continue), and a nats-server stop/start on the same port and
 * store dir mid-run (no report lost or duplicated in the controller's view).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Report } from '../../../protocol/src/types.js';
import { stopPlan } from '../../../controller/src/bus/launcher.js';
import { launchPlan } from '../../../controller/src/bus/launcher.js';
import { startNatsServer, type NatsServer } from '../../support/nats-server.js';
import { teardown, pidAlive, spawnAgent, startController, tempDir, testPlan, waitFor, writeRuntimes, type AgentProc, type Controller } from './harness.js';

function steps(reports: Report[], job: string, rank: number): number[] {
  return reports.filter((r) => r.job === job && r.body.kind === 'stepProfile' && r.body.rank === rank).map((r) => (r.body.kind === 'stepProfile' ? r.body.step : -1));
}

/** Every handled report of (job, attempt, node) has a distinct id, and the seqs are exactly 1..n. */
function assertContiguous(reports: Report[], job: string, node: string): void {
  const mine = reports.filter((r) => r.job === job && r.node === node);
  assert.equal(new Set(mine.map((r) => r.id)).size, mine.length, 'no report handled twice');
  const seqs = mine.map((r) => r.seq).sort((a, b) => a - b);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'seqs are 1..n with no gap');
}

function assertStepsContiguous(s: number[], what: string): void {
  assert.ok(s.length > 0, what);
  assert.deepEqual(s, Array.from({ length: s.length }, (_, i) => i + 1), `${what}: steps 1..n, each once, in order`);
}

describe('control plane: agent kill -9 and restart (integration)', function () {
  this.timeout(90_000);
  let server: NatsServer;
  let ctl: Controller;
  let dir: string;
  let agent: AgentProc;
  let runtimes: string;
  const lostAfterMs = 2000;

  before(async () => {
    server = await startNatsServer();
    dir = tempDir('cp-restart');
    ctl = await startController({ servers: server.url }, { lostAfterMs });
    runtimes = writeRuntimes(dir);
    agent = spawnAgent({ url: server.url, node: 'k1', stateDir: join(dir, 'k1'), runtimes, heartbeatSeconds: 0.25 });
  });

  after(async () => {
    await teardown({ agents: [agent], ctl, server, dir });
  });

  it('marks a kill -9ed agent lost within the timeout, then adopts its running ranks after restart', async () => {
    await waitFor('agent registered', () => ctl.registry.alive().includes('k1'));
    const out = await launchPlan(ctl.client, { job: 'jk', attempt: 1, plan: testPlan(['k1'], 2), runtime: 'test', masterAddr: '127.0.0.1', masterPort: 29600, env: { MIST_TEST_STEP_MS: '50' }, deadlineMs: 15_000 });
    assert.equal(out.ok, true, JSON.stringify(out.nodes));
    const pids = out.nodes[0]!.ranks!.map((r) => r.pid);
    await waitFor('a few steps', () => steps(ctl.reports, 'jk', 0).length >= 3 && steps(ctl.reports, 'jk', 1).length >= 3);

    agent.child.kill('SIGKILL');
    await agent.exited;
    const killedAt = Date.now();
    await waitFor('node lost', () => ctl.registry.get('k1')?.state === 'lost', lostAfterMs + 5000);
    const took = Date.now() - killedAt;
    assert.ok(took <= lostAfterMs + 1500, `lost after ${took} ms (timeout ${lostAfterMs} ms)`);
    assert.ok(pids.every(pidAlive), 'ranks survive the agent');
    const before = Math.max(...steps(ctl.reports, 'jk', 0));

    agent = spawnAgent({ url: server.url, node: 'k1', stateDir: join(dir, 'k1'), runtimes, heartbeatSeconds: 0.25 });
    await waitFor('node alive again', () => ctl.registry.get('k1')?.state === 'alive');
    await waitFor('2 rank_adopted events', () => ctl.reports.filter((r) => r.node === 'k1' && r.body.kind === 'nodeEvent' && r.body.event === 'rank_adopted').length === 2);
    await waitFor('steps continue after the restart', () => Math.max(...steps(ctl.reports, 'jk', 0)) > before + 3 && Math.max(...steps(ctl.reports, 'jk', 1)) > before + 3);
    const st = await ctl.client.send('k1', { kind: 'status', job: 'jk' });
    assert.ok(st.ok && st.result?.kind === 'status');
    if (st.ok && st.result?.kind === 'status') assert.deepEqual(st.result.ranks.map((r) => [r.rank, r.pid, r.state]), [[0, pids[0], 'running'], [1, pids[1], 'running']]);

    // The repeated launch (same command id) after the restart returns the first reply: nothing is started twice.
    const again = await launchPlan(ctl.client, { job: 'jk', attempt: 1, plan: testPlan(['k1'], 2), runtime: 'test', masterAddr: '127.0.0.1', masterPort: 29600, env: { MIST_TEST_STEP_MS: '50' }, deadlineMs: 15_000 });
    assert.deepEqual(again.nodes[0]!.ranks, out.nodes[0]!.ranks);

    assert.deepEqual(await stopPlan(ctl.client, 'jk', 1, ['k1'], 5, 'test'), []);
    assert.deepEqual(pids.filter(pidAlive), []);
    const exits = await waitFor('both exits', () => {
      const e = ctl.reports.filter((r) => r.job === 'jk' && r.body.kind === 'rankExited');
      return e.length === 2 ? e : undefined;
    });
    for (const e of exits) assert.equal(e.body.kind === 'rankExited' && e.body.failureClass, 'killed');
    assertStepsContiguous(steps(ctl.reports, 'jk', 0), 'rank 0');
    assertStepsContiguous(steps(ctl.reports, 'jk', 1), 'rank 1');
    assertContiguous(ctl.reports, 'jk', 'k1');
  });
});

describe('control plane: nats-server restart mid-run (integration)', function () {
  this.timeout(90_000);
  let server: NatsServer;
  let ctl: Controller;
  let dir: string;
  let agent: AgentProc;

  before(async () => {
    dir = tempDir('cp-nats');
    server = await startNatsServer({ storeDir: join(dir, 'nats') });
    ctl = await startController({ servers: server.url }, { ackWaitMs: 3000 });
    agent = spawnAgent({ url: server.url, node: 'm1', stateDir: join(dir, 'm1'), runtimes: writeRuntimes(dir), heartbeatSeconds: 0.25 });
  });

  after(async () => {
    await teardown({ agents: [agent], ctl, server, dir });
  });

  it('loses and duplicates no report across a server stop and start on the same port and store', async () => {
    await waitFor('agent registered', () => ctl.registry.alive().includes('m1'));
    const out = await launchPlan(ctl.client, { job: 'jn', attempt: 1, plan: testPlan(['m1'], 2), runtime: 'test', masterAddr: '127.0.0.1', masterPort: 29700, env: { MIST_TEST_STEP_MS: '40' }, deadlineMs: 15_000 });
    assert.equal(out.ok, true, JSON.stringify(out.nodes));
    await waitFor('some steps before the outage', () => steps(ctl.reports, 'jn', 0).length >= 5);

    const port = server.port;
    await server.stop();
    await waitFor('the agent notices the outage', () => agent.output().includes('disconnected from NATS'));
    const handledBefore = ctl.consumer.stats.handled;
    // Ranks keep stepping while NATS is away; the agent spools. Wait for spooled output in the rank's own log.
    const { readFileSync } = await import('node:fs');
    const logOf = (r: number) => readFileSync(join(dir, 'm1', 'jobs', 'jn', '1', `rank-${r}`, 'stdout.log'), 'utf8');
    const stepsInLog = () => logOf(0).split('\n').filter((l) => l.startsWith('{"mist":')).length;
    const atOutage = stepsInLog();
    await waitFor('ranks step during the outage', () => stepsInLog() >= atOutage + 10);

    server = await startNatsServer({ port, storeDir: join(dir, 'nats') });
    await waitFor('spooled reports flushed and handled', () => ctl.consumer.stats.handled > handledBefore + 10, 30_000);
    assert.deepEqual(await stopPlan(ctl.client, 'jn', 1, ['m1'], 5, 'test'), []);
    await waitFor('both exits', () => ctl.reports.filter((r) => r.job === 'jn' && r.body.kind === 'rankExited').length === 2, 30_000);
    for (const r of [0, 1]) {
      const inLog = logOf(r).split('\n').filter((l) => l.startsWith('{"mist":')).length;
      const s = steps(ctl.reports, 'jn', r);
      assertStepsContiguous(s, `rank ${r}`);
      assert.equal(s.length, inLog, `rank ${r}: every step line in the log reached the controller once`);
    }
    assertContiguous(ctl.reports, 'jn', 'm1');
  });
});
