/**
 * `mist up --demo` end to end on CPU: a real nats-server, the controller with SQLite, two local CPU agents and real
 * PyTorch ranks of the reference runtime. The run is the one shared with the browser suite (tests/support/
 * demo-run.ts; `--summary-file` carries the same JSON summary `--once` prints). Both demo jobs succeed, their plans
 * and profiles are in the store, the calibration fitted on the LLM job lowers the held-out prediction error of the
 * LVM job, and nothing the command started outlives it.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openStore } from '../../controller/src/plans/store.js';
import { processesMentioning, sharedDemo, type DemoRow as Row, type DemoRun } from '../support/demo-run.js';

describe('e2e: mist up --demo (shared run)', function () {
  this.timeout(15 * 60_000);
  let demo: DemoRun;
  let summary: { jobs: Row[] };

  before(async () => {
    demo = await sharedDemo();
  });

  it('tunes, trains and profiles a tiny LLM and a tiny LVM; calibration lowers the LVM error', async () => {
    assert.match(demo.dashboard, /^http:\/\/127\.0\.0\.1:\d+\/\?token=mist_/);
    summary = await demo.summary();
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
    // the same jobs through the API the run serves
    const r = await fetch(`${demo.base}/api/v1/jobs`, { headers: { Authorization: `Bearer ${demo.token}` } });
    const { jobs } = (await r.json()) as { jobs: Array<{ name: string; phase: string }> };
    for (const j of summary.jobs) assert.equal(jobs.find((x) => x.name === j.name)?.phase, 'Succeeded');
  });

  it('stops cleanly (nothing outlives mist up); plans, records, profiles, attempts and calibrations are in the store', async () => {
    if (!summary) summary = await demo.summary();
    const code = await demo.stop();
    assert.equal(code, 0, `mist up exited ${code}:\n${demo.output().stderr.slice(-4000)}`);
    const [llm, lvm] = summary.jobs as [Row, Row];
    const store = await openStore(join(demo.stateDir, 'mist.db'));
    try {
      for (const j of summary.jobs) {
        const plan = await store.getPlan(j.planId);
        assert.ok(plan, `plan ${j.planId} is stored`);
        assert.equal(plan.job, j.name);
        assert.ok(plan.hasRecord, 'with its decision record');
        const profiles = await store.listProfiles(j.name);
        assert.ok(new Set(profiles.map((p) => p.step)).size >= demo.steps, `${j.name}: a profile per step (${profiles.length} rows)`);
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
    assert.deepEqual(processesMentioning(demo.stateDir), [], 'no nats-server, agent or rank outlives mist up');
  });
});
