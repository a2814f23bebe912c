/**
 * A controller killed (SIGKILL) mid-run and started again continues the job from the store and the agents'
 * reports: the ranks keep training meanwhile, the new controller takes a higher epoch, the job succeeds in its
 * first attempt, and no history is lost (events from before the crash, a profile for every step).
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../../../controller/src/plans/store.js';
import { startNatsServer, type NatsServer } from '../../support/nats-server.js';
import type { AgentProc } from '../control-plane/harness.js';
import { api, spawnController, startAgents, stopAgents, tempDir, tinyJob, waitFor, type ControllerProc } from './harness.js';

describe('controller: restart mid-run loses nothing', function () {
  this.timeout(10 * 60_000);
  let nats: NatsServer;
  let dir: string;
  let agents: AgentProc[] = [];
  const controllers: ControllerProc[] = [];

  before(async () => {
    nats = await startNatsServer();
    dir = tempDir('ctl-restart');
    agents = startAgents({ nats: nats.url, dir, count: 1 });
  });
  after(async () => {
    for (const c of controllers) await c.kill('SIGKILL');
    await stopAgents(dir, agents);
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const job = async (c: ControllerProc) => (await api(c.url, '/api/v1/jobs/survivor')).body as { phase: string; step: number | null; restarts: number; events: Array<{ reason: string }> };

  it('continues the job after a SIGKILL of the controller', async () => {
    const a = await spawnController({ nats: nats.url, dir });
    controllers.push(a);
    await waitFor('the agent to register', async () => ((await api(a.url, '/api/v1/nodes')).body.nodes ?? []).length === 1, 30_000);
    const sub = await api(a.url, '/api/v1/jobs', { method: 'POST', body: tinyJob('survivor', { steps: 40, every: 10 }) });
    assert.equal(sub.status, 201, JSON.stringify(sub.body));
    await waitFor('survivor to pass step 5', async () => ((await job(a)).step ?? 0) >= 5, 180_000);
    const before = await job(a);
    await a.kill('SIGKILL');

    const b = await spawnController({ nats: nats.url, dir });
    controllers.push(b);
    assert.match(b.output(), /epoch 2/);
    const done = await waitFor('survivor to finish under the new controller', async () => {
      const j = await job(b);
      return j.phase === 'Succeeded' || j.phase === 'Failed' ? j : undefined;
    }, 300_000);
    assert.equal(done.phase, 'Succeeded', JSON.stringify(done));
    assert.equal(done.restarts, 0, 'the ranks were never restarted');
    for (const e of before.events) assert.ok(done.events.some((x) => x.reason === e.reason), `event ${e.reason} from before the crash is kept`);
    await b.kill('SIGTERM');

    const store = await openStore(join(dir, 'controller', 'mist.db'));
    try {
      const steps = new Set((await store.listProfiles('survivor')).map((p) => p.step));
      for (let s = 1; s <= 40; s++) assert.ok(steps.has(s), `profile of step ${s} is stored`);
      const attempts = await store.listAttempts('survivor');
      assert.deepEqual(attempts.map((x) => [x.attempt, x.outcome]), [[1, 'succeeded']]);
    } finally {
      await store.close();
    }
  });
});
