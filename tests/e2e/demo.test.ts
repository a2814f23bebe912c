/**
 * `mist up --demo --once` end to end on CPU: a real nats-server, the controller with SQLite, two local CPU agents
 * and real PyTorch ranks of the reference runtime. Both demo jobs succeed, their plans and profiles are in the
 * store, the calibration fitted on the LLM job lowers the held-out prediction error of the LVM job, and nothing
 * the command started outlives it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../controller/src/plans/store.js';
import { mistBin, repoRoot } from '../support/paths.js';

interface Row {
  name: string;
  kind: string;
  phase: string;
  planId: string;
  predictedStepSeconds: number;
  measuredStepSeconds: number;
  predictionErrorBefore: number;
  predictionErrorAfter: number;
}

/** Processes whose command line mentions `needle` (the state dir: agents, ranks and nats-server all name it). */
function processesMentioning(needle: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle) && Number(pid) !== process.pid) out.push(`${pid}: ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

describe('e2e: mist up --demo --once', function () {
  this.timeout(15 * 60_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mist-e2e-demo-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('tunes, trains and profiles a tiny LLM and a tiny LVM; calibration lowers the LVM error; cleans up', async () => {
    const state = join(dir, 'state');
    const env: NodeJS.ProcessEnv = { ...process.env, MIST_STATE_DIR: state, MIST_HTTP_ADDR: '127.0.0.1:0' };
    delete env.MIST_NATS_URL;
    delete env.MIST_DB;
    delete env.MIST_API_TOKENS;
    const child = spawn(process.execPath, [mistBin, 'up', '--demo', '--once', '--steps', '24'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 0, `mist up exited ${code}:\n${stderr.slice(-4000)}`);
    assert.match(stderr, /Dashboard: http:\/\/127\.0\.0\.1:\d+\/\?token=mist_/);

    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 1, `stdout is one JSON line:\n${stdout}`);
    const summary = JSON.parse(lines[0]!) as { jobs: Row[] };
    assert.equal(summary.jobs.length, 2);
    const [llm, lvm] = summary.jobs as [Row, Row];
    assert.equal(llm.kind, 'llm');
    assert.equal(lvm.kind, 'lvm');
    for (const j of summary.jobs) {
      assert.equal(j.phase, 'Succeeded', JSON.stringify(j));
      for (const k of ['predictedStepSeconds', 'measuredStepSeconds', 'predictionErrorBefore', 'predictionErrorAfter'] as const) assert.equal(typeof j[k], 'number', `${j.name}.${k}`);
      assert.ok(j.measuredStepSeconds > 0);
    }
    assert.ok(Math.abs(lvm.predictionErrorAfter) < Math.abs(lvm.predictionErrorBefore), `LVM: |after| ${lvm.predictionErrorAfter} < |before| ${lvm.predictionErrorBefore}`);

    const store = await openStore(join(state, 'mist.db'));
    try {
      for (const j of summary.jobs) {
        const plan = await store.getPlan(j.planId);
        assert.ok(plan, `plan ${j.planId} is stored`);
        assert.equal(plan.job, j.name);
        assert.ok(plan.hasRecord, 'with its decision record');
        const profiles = await store.listProfiles(j.name);
        assert.ok(new Set(profiles.map((p) => p.step)).size >= 24, `${j.name}: a profile per step (${profiles.length} rows)`);
        const job = await store.getJob(j.name);
        assert.equal(job?.phase, 'Succeeded');
        const attempts = await store.listAttempts(j.name);
        assert.equal(attempts.at(-1)?.outcome, 'succeeded');
      }
      // the LVM job was planned with the calibration fitted on the LLM job
      const lvmPlan = await store.getPlan(lvm.planId);
      const usedCal = (lvmPlan!.plan.tuner as { calibration?: { fromJobs?: string[] } }).calibration;
      assert.deepEqual(usedCal?.fromJobs, [llm.name]);
      const cal = await store.latestCalibration('default', 'cpu');
      assert.ok(cal && cal.fromJobs.includes(lvm.name));
    } finally {
      await store.close();
    }
    assert.deepEqual(processesMentioning(state), [], 'no nats-server, agent or rank outlives mist up');
  });
});
