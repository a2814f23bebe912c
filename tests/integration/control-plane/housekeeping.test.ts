/**
 * Agent housekeeping on a real nats-server with a real agent process: records of finished work older than
 * `--retention-days` (stored command replies, exited ranks' directories) are removed when the agent starts, newer
 * ones and their idempotency are kept, and `--retention-days 0` keeps everything. Age is set by back-dating the
 * files, not by waiting.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { safeToken } from '../../../protocol/src/subjects.js';
import type { LaunchCommand } from '../../../protocol/src/types.js';
import { startNatsServer, type NatsServer } from '../../support/nats-server.js';
import { epochFileAt, teardown, spawnAgent, startController, tempDir, waitFor, writeRuntimes, type AgentProc, type Controller } from './harness.js';

const NODE = 'hk1';
const DAY_MS = 24 * 3600 * 1000;

function launchCmd(job: string): LaunchCommand {
  return {
    kind: 'launch',
    job,
    attempt: 1,
    planJson: '{}',
    ranks: [{ rank: 0, localRank: 0, device: 0, stage: 0, dpRank: 0, tpRank: 0 }],
    worldSize: 1,
    runtime: 'test',
    masterAddr: '127.0.0.1',
    masterPort: 29500,
    env: { MIST_TEST_STEPS: '1', MIST_TEST_STEP_MS: '5' },
  };
}

/** Sets the modification time of every file below `dir` to `ageMs` ago. */
function backdate(dir: string, ageMs: number): void {
  const t = new Date(Date.now() - ageMs);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) backdate(p, ageMs);
    else utimesSync(p, t, t);
  }
}

describe('control plane: agent housekeeping of finished work (integration)', function () {
  this.timeout(60_000);
  let server: NatsServer;
  let ctl: Controller;
  let dir: string;
  let runtimes: string;
  let agent: AgentProc | undefined;

  before(async () => {
    server = await startNatsServer();
    dir = tempDir('cp-housekeeping');
    ctl = await startController({ servers: server.url }, { epochFile: epochFileAt(dir, 1) });
    runtimes = writeRuntimes(dir);
  });

  after(async () => {
    await teardown({ agents: [agent], ctl, server, dir });
  });

  const start = async (stateDir: string, extra: string[] = []): Promise<AgentProc> => {
    const a = spawnAgent({ url: server.url, node: NODE, stateDir, runtimes, extra });
    await waitFor('agent ready', () => a.output().includes('ready: node'));
    return a;
  };

  /** Runs a one-step job to its exit. */
  const runJob = async (job: string): Promise<void> => {
    const reply = await ctl.client.send(NODE, launchCmd(job));
    assert.equal(reply.ok, true, JSON.stringify(reply));
    await waitFor(`${job} exited`, () => ctl.reports.find((r) => r.job === job && r.body.kind === 'rankExited'));
  };

  it('removes command replies and exited ranks older than the retention at start; keeps newer ones', async () => {
    const stateDir = join(dir, 'a');
    agent = await start(stateDir);
    await runJob('hk-old');
    await runJob('hk-new');
    await agent.stop('SIGTERM');
    const commands = join(stateDir, 'commands');
    const replies = readdirSync(commands);
    assert.equal(replies.length, 2, 'one stored reply per launch');
    const oldJob = join(stateDir, 'jobs', safeToken('hk-old'));
    const newJob = join(stateDir, 'jobs', safeToken('hk-new'));
    backdate(oldJob, 8 * DAY_MS);
    backdate(commands, 8 * DAY_MS);
    utimesSync(join(commands, replies[0]!), new Date(), new Date()); // one reply stays young

    agent = await start(stateDir);
    assert.ok(!existsSync(oldJob), 'the exited rank older than the retention is gone, with its attempt and job directories');
    assert.ok(existsSync(join(newJob, '1', 'rank-0', 'rank.json')), 'the younger exited rank is kept');
    assert.deepEqual(readdirSync(commands), [replies[0]], 'only the young reply is kept');
    assert.match(agent.output(), /housekeeping: removed 1 stored command reply and 1 exited rank directory older than 604800 s/);

    // the agent keeps serving; a kept rank's record still answers Status
    const status = await ctl.client.send(NODE, { kind: 'status', job: 'hk-new' });
    assert.equal(status.ok, true);
    assert.equal(status.ok && status.result?.kind === 'status' && status.result.ranks.length, 1);
    const gone = await ctl.client.send(NODE, { kind: 'status', job: 'hk-old' });
    assert.equal(gone.ok && gone.result?.kind === 'status' && gone.result.ranks.length, 0);
    await agent.stop('SIGTERM');
    agent = undefined;
  });

  it('--retention-days 0 keeps everything; a bad value is a usage error naming the flag', async () => {
    const stateDir = join(dir, 'b');
    agent = await start(stateDir, ['--retention-days', '0']);
    await runJob('hk-keep');
    await agent.stop('SIGTERM');
    const job = join(stateDir, 'jobs', safeToken('hk-keep'));
    backdate(job, 400 * DAY_MS);
    backdate(join(stateDir, 'commands'), 400 * DAY_MS);
    agent = await start(stateDir, ['--retention-days', '0']);
    await agent.stop('SIGTERM');
    agent = undefined;
    assert.ok(existsSync(join(job, '1', 'rank-0', 'rank.json')));
    assert.equal(readdirSync(join(stateDir, 'commands')).length, 1);

    const bad = spawnAgent({ url: server.url, node: 'hk-bad', stateDir: join(dir, 'c'), runtimes, extra: ['--retention-days', 'soon'] });
    assert.notEqual(await bad.exited, 0);
    assert.match(bad.output(), /--retention-days: soon is not a number in \[0, 3650\]/);
  });
});
