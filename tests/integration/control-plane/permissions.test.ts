/**
 * NATS security: a nats-server configured by natsServerConfig() with per-role users. The controller and two
 * agents work with their own credentials; an agent's credentials cannot command (or eavesdrop on) another agent.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { encodeCommand } from '../../../protocol/src/codec.js';
import { agentCommandSubject, reportSubject } from '../../../protocol/src/subjects.js';
import { agentInbox, natsServerConfig } from '../../../controller/src/bus/security.js';
import { launchPlan, stopPlan } from '../../../controller/src/bus/launcher.js';
import { freePort, NATS_SERVER_BIN } from '../../support/nats-server.js';
import { killLeftoverRanks, rmrf, spawnAgent, startController, tempDir, testPlan, waitFor, writeRuntimes, type AgentProc, type Controller } from './harness.js';

async function startConfigured(conf: string): Promise<ChildProcess> {
  const child = spawn(NATS_SERVER_BIN, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const on = (d: Buffer) => {
      log += d.toString();
      if (log.includes('Server is ready')) resolve();
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (c) => reject(new Error(`nats-server exited ${c}:\n${log}`)));
  });
  return child;
}

describe('control plane: NATS permissions (integration)', function () {
  this.timeout(60_000);
  let server: ChildProcess;
  let ctl: Controller;
  let dir: string;
  let url: string;
  const agents: AgentProc[] = [];
  const pw = { controller: 'c-secret', n1: 'a1-secret', n2: 'a2-secret' };

  before(async () => {
    dir = tempDir('cp-perm');
    const port = await freePort();
    url = `nats://127.0.0.1:${port}`;
    const conf = join(dir, 'nats.conf');
    writeFileSync(
      conf,
      natsServerConfig({
        port,
        storeDir: join(dir, 'js'),
        controller: { user: 'controller', password: pw.controller },
        agents: [
          { node: 'n1', user: 'agent-n1', password: pw.n1 },
          { node: 'n2', user: 'agent-n2', password: pw.n2 },
        ],
      }),
    );
    server = await startConfigured(conf);
    ctl = await startController({ servers: url, user: 'controller', password: pw.controller });
    const runtimes = writeRuntimes(dir);
    agents.push(spawnAgent({ url, node: 'n1', stateDir: join(dir, 'n1'), runtimes, extra: ['--user', 'agent-n1', '--password', pw.n1] }));
    agents.push(spawnAgent({ url, node: 'n2', stateDir: join(dir, 'n2'), runtimes, extra: ['--user', 'agent-n2', '--password', pw.n2] }));
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await ctl?.close();
    if (server && server.exitCode === null) {
      const gone = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await gone;
    }
    if (dir) killLeftoverRanks(dir);
    rmrf(dir);
  });

  it('lets the controller and the agents do their jobs with their own users', async () => {
    await waitFor('both agents registered', () => ctl.registry.alive().length === 2);
    const out = await launchPlan(ctl.client, { job: 'jp', attempt: 1, plan: testPlan(['n1', 'n2'], 1), runtime: 'test', masterAddr: '127.0.0.1', masterPort: 29800, env: { MIST_TEST_STEPS: '2', MIST_TEST_STEP_MS: '20' }, deadlineMs: 15_000 });
    assert.equal(out.ok, true, JSON.stringify(out.nodes));
    await waitFor('reports from both agents', () => ctl.reports.filter((r) => r.job === 'jp' && r.body.kind === 'rankExited').length === 2);
    await stopPlan(ctl.client, 'jp', 1, ['n1', 'n2'], 1, 'done');
  });

  it("refuses an agent's credentials to command another agent, to read its commands, or to report as it", async () => {
    const nc = await connect({ servers: url, user: 'agent-n1', pass: pw.n1, inboxPrefix: agentInbox('n1') });
    try {
      const cmd = encodeCommand({ id: 'evil', epoch: ctl.epoch, sentAtMs: Date.now(), body: { kind: 'stop', job: 'x', attempt: 0, graceSeconds: 0, reason: 'evil' } });
      await assert.rejects(nc.request(agentCommandSubject('n2'), cmd, { timeout: 3000 }), (e: Error) => /permission/i.test(`${e.message} ${String((e as { cause?: Error }).cause?.message)}`) || e.name === 'TimeoutError');
      // Subscribing to another agent's commands is refused by the server (reported asynchronously on the connection).
      const sub = nc.subscribe(agentCommandSubject('n2'));
      await assert.rejects((async () => {
        for await (const _ of sub) return;
      })(), /permission/i);
      // Publishing a report as n2 is refused too.
      nc.publish(reportSubject('x', 'n2'), new Uint8Array([1]));
      await nc.flush();
    } finally {
      await nc.close().catch(() => undefined);
    }
    // n2 never saw the evil command: it executed only the controller's commands, and it still serves.
    const st = await ctl.client.send('n2', { kind: 'status' });
    assert.equal(st.ok, true);
    assert.doesNotMatch(agents[1]!.output(), /evil/);
    // Bad password: refused.
    await assert.rejects(connect({ servers: url, user: 'agent-n1', pass: 'wrong', maxReconnectAttempts: 0, reconnect: false }));
  });
});
