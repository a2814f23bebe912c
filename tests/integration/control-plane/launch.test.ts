/**
 * Two real agents (child processes of the built CLI) on a real nats-server: registration, a 4-rank launch with
 * the right environment, Stop without orphans, fencing, idempotency, the env allow-list, all-or-nothing fan-out,
 * and malformed traffic on both daemons.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { encodeCommand, encodeReport, decodeReply } from '../../../protocol/src/codec.js';
import { agentCommandSubject, reportSubject, safeToken } from '../../../protocol/src/subjects.js';
import type { LaunchCommand, LogTailReport, Report } from '../../../protocol/src/types.js';
import { CommandClient } from '../../../controller/src/bus/commands.js';
import { launchPlan, ranksByNode, stopPlan } from '../../../controller/src/bus/launcher.js';
import { startNatsServer, type NatsServer } from '../../support/nats-server.js';
import { epochFileAt, teardown, pidAlive, spawnAgent, startController, tempDir, testPlan, waitFor, writeRuntimes, type AgentProc, type Controller } from './harness.js';

function envLines(reports: Report[], job: string): Map<number, Record<string, unknown>> {
  const out = new Map<number, Record<string, unknown>>();
  for (const r of reports) {
    if (r.job !== job || r.body.kind !== 'logTail') continue;
    for (const line of (r.body as LogTailReport).lines) if (line.startsWith('ENV ')) out.set(r.body.rank, JSON.parse(line.slice(4)));
  }
  return out;
}

function grandchildren(reports: Report[], job: string): number[] {
  const out: number[] = [];
  for (const r of reports) {
    if (r.job !== job || r.body.kind !== 'logTail') continue;
    for (const line of r.body.lines) if (line.startsWith('GRANDCHILD ')) out.push(Number(line.slice(11)));
  }
  return out;
}

function launchCmd(job: string, env: Record<string, string>, node: string, rank = 0): LaunchCommand {
  return { kind: 'launch', job, attempt: 1, planJson: '{}', ranks: [{ rank, localRank: 0, device: 0, stage: 0, dpRank: 0, tpRank: 0 }], worldSize: 1, runtime: 'test', masterAddr: '127.0.0.1', masterPort: 29500, env };
}

describe('control plane: launch, stop, fencing, idempotency (integration)', function () {
  this.timeout(60_000);
  let server: NatsServer;
  let ctl: Controller;
  let dir: string;
  const agents: AgentProc[] = [];

  before(async () => {
    server = await startNatsServer();
    dir = tempDir('cp-launch');
    ctl = await startController({ servers: server.url }, { epochFile: epochFileAt(dir, 4) });
    const runtimes = writeRuntimes(dir);
    for (const node of ['n1', 'n2']) agents.push(spawnAgent({ url: server.url, node, stateDir: join(dir, node), runtimes }));
  });

  after(async () => {
    await teardown({ agents, ctl, server, dir });
  });

  it('two agents register with their inventory and heartbeat', async () => {
    await waitFor('both agents registered', () => ctl.registry.alive().length === 2 && ctl.registry.nodes().every((n) => n.hello && n.heartbeat));
    assert.equal(ctl.epoch, 5);
    for (const n of ctl.registry.nodes()) {
      assert.deepEqual(n.hello!.devices.map((d) => [d.index, d.kind]), [[0, 'cpu'], [1, 'cpu']]);
      assert.ok(n.hello!.devices[0]!.memoryBytes > 0);
    }
    const seq = ctl.registry.get('n1')!.heartbeat!.seq;
    await waitFor('another heartbeat', () => ctl.registry.get('n1')!.heartbeat!.seq > seq);
  });

  it('launches 4 ranks across both agents with the right environment, then Stop leaves no process behind', async () => {
    const plan = testPlan(['n1', 'n2'], 2);
    const out = await launchPlan(ctl.client, { job: 'team/j1', attempt: 1, plan, runtime: 'test', masterAddr: '10.0.0.7', masterPort: 29511, env: { MIST_TEST_TAG: 'hello', OMP_NUM_THREADS: '2' }, deadlineMs: 15_000 });
    assert.equal(out.ok, true, JSON.stringify(out.nodes));
    const pids = out.nodes.flatMap((n) => n.ranks!.map((r) => r.pid));
    assert.equal(pids.length, 4);
    const envs = await waitFor('ENV lines of all 4 ranks', () => {
      const m = envLines(ctl.reports, 'team/j1');
      return m.size === 4 ? m : undefined;
    });
    for (const p of plan.placement) {
      const e = envs.get(p.rank)!;
      const local = ranksByNode(plan.placement).get(p.node)!.find((r) => r.rank === p.rank)!.localRank;
      assert.equal(e.RANK, String(p.rank));
      assert.equal(e.WORLD_SIZE, '4');
      assert.equal(e.LOCAL_RANK, String(local));
      assert.equal(e.LOCAL_WORLD_SIZE, '2');
      assert.equal(e.MASTER_ADDR, '10.0.0.7');
      assert.equal(e.MASTER_PORT, '29511');
      assert.equal(e.MIST_JOB, 'team/j1');
      assert.equal(e.MIST_NODE, p.node);
      assert.equal(e.MIST_TEST_TAG, 'hello');
      assert.equal(e.CUDA_VISIBLE_DEVICES, null, 'CPU node: no CUDA_VISIBLE_DEVICES');
      assert.equal(e.LD_PRELOAD, null);
      assert.deepEqual(e.argv, ['--plan', e.MIST_PLAN_FILE, '--rank', String(p.rank)]);
      assert.ok(existsSync(String(e.MIST_PLAN_FILE)));
      assert.deepEqual(JSON.parse(readFileSync(String(e.MIST_PLAN_FILE), 'utf8')), plan);
      assert.ok(pids.includes(Number(e.pid)));
    }
    const started = ctl.reports.filter((r) => r.job === 'team/j1' && r.body.kind === 'rankStarted');
    assert.deepEqual(started.map((r) => (r.body as { rank: number }).rank).sort(), [0, 1, 2, 3]);
    await waitFor('step profiles from every rank', () => new Set(ctl.reports.filter((r) => r.job === 'team/j1' && r.body.kind === 'stepProfile').map((r) => (r.body as { rank: number }).rank)).size === 4);
    const prof = ctl.reports.find((r) => r.job === 'team/j1' && r.body.kind === 'stepProfile')!.body;
    assert.equal(prof.kind, 'stepProfile');
    if (prof.kind === 'stepProfile') {
      assert.equal(prof.tokens, 64);
      assert.deepEqual(prof.stageTimes, [{ stage: 0, forwardSeconds: 0.01, backwardSeconds: 0.02 }]);
    }
    const gcs = await waitFor('grandchild pids', () => {
      const g = grandchildren(ctl.reports, 'team/j1');
      return g.length === 4 ? g : undefined;
    });
    assert.ok([...pids, ...gcs].every(pidAlive), 'all ranks and grandchildren run before Stop');

    const notStopped = await stopPlan(ctl.client, 'team/j1', 1, ['n1', 'n2'], 5, 'test');
    assert.deepEqual(notStopped, []);
    // Stop replies once every process group is gone: ranks and grandchildren are dead right now.
    assert.deepEqual([...pids, ...gcs].filter(pidAlive), []);
    const exited = await waitFor('4 RankExited reports', () => {
      const e = ctl.reports.filter((r) => r.job === 'team/j1' && r.body.kind === 'rankExited');
      return e.length === 4 ? e : undefined;
    });
    for (const r of exited) assert.equal(r.body.kind === 'rankExited' && r.body.failureClass, 'killed');
    // Wrappers end too (they exit once their rank is reaped).
    const wrappers = agents.flatMap((a) => [0, 1, 2, 3].map((r) => join(a.stateDir, 'jobs', safeToken('team/j1'), '1', `rank-${r}`, 'pid.json')).filter(existsSync).map((f) => JSON.parse(readFileSync(f, 'utf8')).wrapperPid as number));
    assert.equal(wrappers.length, 4);
    await waitFor('wrappers gone', () => wrappers.every((p) => !pidAlive(p)), 5000);
  });

  it('refuses a command with an older epoch (STALE_EPOCH) and accepts the current one', async () => {
    const old = new CommandClient(ctl.nc, ctl.epoch - 2);
    const r = await old.send('n1', { kind: 'status' });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.error.code, 'STALE_EPOCH');
    const cur = await ctl.client.send('n1', { kind: 'status' });
    assert.equal(cur.ok, true);
  });

  it('executes a repeated command id once', async () => {
    const cmd = launchCmd('j-idem', { MIST_TEST_STEPS: '1000000' }, 'n2');
    const [a, b] = await Promise.all([ctl.client.send('n2', cmd, { id: 'idem-1' }), ctl.client.send('n2', cmd, { id: 'idem-1' })]);
    const c = await ctl.client.send('n2', cmd, { id: 'idem-1' });
    assert.equal(a.ok && b.ok && c.ok, true);
    assert.deepEqual(b, a);
    assert.deepEqual(c, a);
    const st = await ctl.client.send('n2', { kind: 'status', job: 'j-idem' });
    assert.equal(st.ok && st.result?.kind === 'status' && st.result.ranks.length, 1);
    await stopPlan(ctl.client, 'j-idem', 1, ['n2'], 1, 'test');
    const started = ctl.reports.filter((r) => r.job === 'j-idem' && r.body.kind === 'rankStarted');
    assert.ok(started.length <= 1);
  });

  it('refuses env entries outside the allow-list and reserved names, running nothing', async () => {
    for (const [k, v] of [['LD_PRELOAD', '/tmp/x.so'], ['PATH', '/tmp'], ['PYTHONPATH', '/tmp'], ['NODE_OPTIONS', '--require /tmp/x'], ['MIST_PLAN_FILE', '/etc/passwd'], ['CUDA_VISIBLE_DEVICES', '3'], ['NCCL_NET_PLUGIN', 'x'], ['HOME', '/']] as const) {
      const r = await ctl.client.send('n1', launchCmd(`j-env-${k}`, { [k]: v }, 'n1'));
      assert.equal(r.ok, false, k);
      assert.equal(!r.ok && r.error.code, 'BAD_INPUT', k);
      assert.match(!r.ok ? r.error.message : '', new RegExp(k), k);
    }
    const st = await ctl.client.send('n1', { kind: 'status' });
    assert.equal(st.ok && st.result?.kind === 'status' && st.result.ranks.some((x) => x.job.startsWith('j-env-')), false);
  });

  it('fans out all or nothing: a node that does not answer makes every node stop, and a late launch is refused', async () => {
    const plan = testPlan(['n1', 'ghost'], 1);
    const out = await launchPlan(ctl.client, { job: 'j-aon', attempt: 1, plan, runtime: 'test', masterAddr: '127.0.0.1', masterPort: 29512, deadlineMs: 2000, stopGraceSeconds: 2 });
    assert.equal(out.ok, false);
    assert.equal(out.rolledBack, true);
    assert.equal(out.nodes.find((n) => n.node === 'ghost')!.error!.code, 'UNAVAILABLE');
    const st = await ctl.client.send('n1', { kind: 'status', job: 'j-aon' });
    assert.ok(st.ok && st.result?.kind === 'status');
    if (st.ok && st.result?.kind === 'status') {
      for (const r of st.result.ranks) assert.notEqual(r.state, 'running');
      for (const r of st.result.ranks) assert.equal(pidAlive(r.pid), false);
    }
    const late = await ctl.client.send('n1', { ...launchCmd('j-aon', {}, 'n1') }, { id: 'late-launch' });
    assert.equal(!late.ok && late.error.code, 'CONFLICT');
  });

  it('classifies exits: an OOM message is out_of_memory, a clean exit is exit code 0', async () => {
    assert.equal((await ctl.client.send('n1', launchCmd('j-oom', { MIST_TEST_MODE: 'oom' }, 'n1'))).ok, true);
    assert.equal((await ctl.client.send('n2', launchCmd('j-ok', { MIST_TEST_STEPS: '3', MIST_TEST_STEP_MS: '20' }, 'n2'))).ok, true);
    const oom = await waitFor('j-oom exit', () => ctl.reports.find((r) => r.job === 'j-oom' && r.body.kind === 'rankExited'));
    assert.deepEqual(oom.body, { kind: 'rankExited', rank: 0, exitCode: 1, failureClass: 'out_of_memory' });
    const ok = await waitFor('j-ok exit', () => ctl.reports.find((r) => r.job === 'j-ok' && r.body.kind === 'rankExited'));
    assert.equal(ok.body.kind === 'rankExited' && ok.body.exitCode, 0);
    const steps = ctl.reports.filter((r) => r.job === 'j-ok' && r.body.kind === 'stepProfile').map((r) => r.body.kind === 'stepProfile' && r.body.step);
    assert.deepEqual(steps, [1, 2, 3]);
  });

  it('rejects and counts garbage commands and malformed reports; both daemons keep serving', async () => {
    const r1 = decodeReply((await ctl.nc.request(agentCommandSubject('n1'), new Uint8Array([1, 2, 3, 250, 7]), { timeout: 5000 })).data);
    assert.equal(r1.ok, false);
    assert.equal(!r1.ok && r1.error.code, 'DECODE_ERROR');
    const r2 = decodeReply((await ctl.nc.request(agentCommandSubject('n1'), new TextEncoder().encode('{"kind":"launch"}'), { timeout: 5000 })).data);
    assert.equal(!r2.ok && r2.error.code, 'DECODE_ERROR');
    // A report frame on the command subject is a wrong-kind frame.
    const wrong = encodeReport({ id: 'x', job: 'j', attempt: 1, node: 'n1', seq: 1, sentAtMs: 1, body: { kind: 'nodeEvent', event: 'e', message: 'm' } });
    const r3 = decodeReply((await ctl.nc.request(agentCommandSubject('n1'), wrong, { timeout: 5000 })).data);
    assert.equal(!r3.ok && r3.error.code, 'DECODE_ERROR');
    await waitFor('the agent reports malformed commands as a node event', () => ctl.reports.some((r) => r.node === 'n1' && r.body.kind === 'nodeEvent' && r.body.event === 'malformed_command'));

    const js = jetstream(ctl.nc);
    const before = ctl.consumer.stats.malformed;
    await js.publish(reportSubject('j-bad', 'n1'), new Uint8Array([9, 9, 9]));
    await js.publish(reportSubject('j-bad', 'n1'), encodeCommand({ id: 'c', epoch: 1, sentAtMs: 1, body: { kind: 'status' } }));
    // Decodes, but claims another node than its subject: spoofing, rejected.
    await js.publish(reportSubject('j-bad', 'n1'), encodeReport({ id: 'spoof', job: 'j-bad', attempt: 1, node: 'n2', seq: 1, sentAtMs: 1, body: { kind: 'nodeEvent', event: 'e', message: 'm' } }));
    await waitFor('3 malformed reports counted', () => ctl.consumer.stats.malformed === before + 3);
    assert.equal(ctl.reports.some((r) => r.job === 'j-bad'), false);

    const st = await ctl.client.send('n1', { kind: 'status' });
    assert.equal(st.ok, true);
    assert.equal((await ctl.client.send('n2', launchCmd('j-after', { MIST_TEST_STEPS: '2', MIST_TEST_STEP_MS: '20' }, 'n2'))).ok, true);
    await waitFor('reports still handled after garbage', () => ctl.reports.some((r) => r.job === 'j-after' && r.body.kind === 'rankExited'));
    assert.equal(ctl.consumer.stats.duplicates >= 0, true);
    for (const a of agents) assert.equal(a.child.exitCode, null, `agent ${a.node} still running`);
  });
});
