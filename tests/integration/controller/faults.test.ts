/**
 * Faults with real PyTorch ranks: a rank killed mid-run restarts the whole job from its latest checkpoint and the
 * job still succeeds; a job that hangs (a rank frozen with SIGSTOP) is restarted by the watchdog.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Controller } from '../../../controller/src/operator/controller.js';
import { startNatsServer, type NatsServer } from '../../support/nats-server.js';
import type { AgentProc } from '../control-plane/harness.js';
import { rankPid, startAgents, startInProcess, stopAgents, tempDir, tinyJob, waitFor } from './harness.js';

describe('controller: rank failure and watchdog (real ranks)', function () {
  this.timeout(10 * 60_000);
  let nats: NatsServer;
  let dir: string;
  let ctl: Controller;
  let agents: AgentProc[] = [];

  before(async () => {
    nats = await startNatsServer();
    dir = tempDir('ctl-faults');
    // watchdog: a hung job is noticed 4 s after its last step (tests only; the default is 300 s)
    ctl = await startInProcess({ nats: nats.url, dir, lifecycle: { watchdog: { k: 2, minGraceSeconds: 4, startupGraceSeconds: 120 }, stopTimeoutSeconds: 20 } });
    agents = startAgents({ nats: nats.url, dir, count: 1 });
    await waitFor('the agent to register', () => ctl.aliveNodes().length === 1, 30_000);
  });
  after(async () => {
    await ctl?.close();
    await stopAgents(dir, agents);
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const stepOf = (name: string) => ctl.status(name)?.progress?.step ?? 0;

  it('a rank killed mid-run restarts the job from its checkpoint, and the job succeeds', async () => {
    await ctl.submit({ text: tinyJob('kill-rank', { steps: 30, every: 5 }), format: 'yaml' });
    await waitFor('kill-rank to pass step 12 (a checkpoint at 10)', () => stepOf('kill-rank') >= 12 && (ctl.status('kill-rank')?.checkpoint?.step ?? 0) >= 10, 180_000);
    const pid = rankPid(agents[0]!.stateDir, 'kill-rank', 1, 1);
    assert.ok(pid, 'rank 1 of attempt 1 has a pid');
    process.kill(pid, 'SIGKILL');
    const st = await waitFor('kill-rank to finish', () => {
      const s = ctl.status('kill-rank');
      return s && (s.phase === 'Succeeded' || s.phase === 'Failed') ? s : undefined;
    }, 300_000);
    assert.equal(st.phase, 'Succeeded', st.message);
    assert.equal(st.restartCount, 1);
    assert.equal(st.attempt, 2);
    assert.equal(st.lastFailure?.reason, 'Killed');
    const store = ctl.storeHandle;
    const second = await store.listProfiles('kill-rank', { attempt: 2 });
    const first = Math.min(...second.map((p) => p.step));
    assert.ok(first > 10, `attempt 2 resumed from the checkpoint (first step ${first})`);
    const attempts = await store.listAttempts('kill-rank');
    assert.deepEqual(attempts.map((a) => a.outcome), ['failed', 'succeeded']);
    const events = await store.listEvents('kill-rank');
    assert.ok(events.some((e) => e.reason === 'Killed'), 'the restart is an event');
    assert.ok(events.some((e) => /resuming/.test(e.message)), 'the relaunch resumes from a checkpoint');
  });

  it('a job that hangs is restarted by the watchdog, and succeeds', async () => {
    await ctl.submit({ text: tinyJob('hang', { steps: 24, every: 4 }), format: 'yaml' });
    await waitFor('hang to pass step 6', () => stepOf('hang') >= 6, 180_000);
    const pid = rankPid(agents[0]!.stateDir, 'hang', 1, 0);
    assert.ok(pid);
    process.kill(pid, 'SIGSTOP'); // frozen: alive, but no step ever comes again
    try {
      await waitFor('the watchdog to restart hang', () => (ctl.status('hang')?.restartCount ?? 0) >= 1, 120_000);
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        /* killed by the stop already */
      }
    }
    const st = await waitFor('hang to finish', () => {
      const s = ctl.status('hang');
      return s && (s.phase === 'Succeeded' || s.phase === 'Failed') ? s : undefined;
    }, 300_000);
    assert.equal(st.phase, 'Succeeded', st.message);
    assert.equal(st.lastFailure?.reason, 'Hung');
    assert.match(st.lastFailure?.message ?? '', /no step for \d+ s/);
    const events = await ctl.storeHandle.listEvents('hang');
    assert.ok(events.some((e) => e.reason === 'Hung'));
  });
});
