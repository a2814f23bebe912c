/**
 * The real `mist submit/jobs/describe/cancel/logs/nodes` processes against an API server in this process
 * (FakeControllerService): exit codes, --json shapes, error messages, how the server and token are found.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_TOKEN, READ_TOKEN, runMistAsync, scratchDir, startTestApi, type TestApi } from '../../support/api-harness.js';

const JOB_YAML = `apiVersion: mist.io/v1alpha1
kind: MistJob
metadata:
  name: tiny-llm
spec:
  model: tiny-gpt
  resources: {gpus: 2, gpuType: cpu}
  training: {globalBatch: 8, steps: 10}
`;

describe('mist client commands against a live API', () => {
  let api: TestApi;
  let scratch: { dir: string; remove(): void };
  /** Runs mist with --server and the admin token (unless the test passes its own). */
  const mist = (args: string[], env: NodeJS.ProcessEnv = {}, input?: string) => runMistAsync([...args], { env: { MIST_SERVER: api.url, MIST_TOKEN: ADMIN_TOKEN, ...env }, input });

  beforeEach(async () => {
    api = await startTestApi();
    scratch = scratchDir();
  });

  afterEach(async () => {
    await api.close();
    scratch.remove();
  });

  describe('mist jobs', () => {
    it('prints a table with the documented columns, filters by --phase, and --json is one document', async () => {
      api.fake.addJob({ name: 'llm-a', phase: 'Running', gpus: 8, planSummary: 'pp2 tp2 dp2', step: 120, tokensPerSecond: 12345.6, restarts: 1, createdAt: new Date(Date.now() - 3 * 60_000).toISOString() });
      api.fake.addJob({ name: 'lvm-b', phase: 'Pending', createdAt: new Date().toISOString() });
      let r = await mist(['jobs']);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split('\n');
      assert.match(lines[0], /^NAME\s+PHASE\s+GPUS\s+PLAN\s+STEP\s+TOKENS\/S\s+RESTARTS\s+AGE$/);
      assert.match(lines[1], /^llm-a\s+Running\s+8\s+pp2 tp2 dp2\s+120\s+12,346\s+1\s+3m$/);
      assert.match(lines[2], /^lvm-b\s+Pending\s+-\s+-\s+-\s+-\s+0\s+\d+s$/);
      r = await mist(['jobs', '--phase', 'Pending', '--json']);
      assert.equal(r.code, 0);
      const doc = JSON.parse(r.stdout) as { jobs: Array<{ name: string; phase: string; restarts: number }> };
      assert.deepEqual(doc.jobs.map((j) => j.name), ['lvm-b']);
      assert.equal(doc.jobs[0].restarts, 0);
    });

    it('with no jobs says so on stderr and exits 0', async () => {
      const r = await mist(['jobs']);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /No jobs/);
    });
  });

  describe('mist submit', () => {
    it('submits a YAML file; --json prints the JobView', async () => {
      const file = join(scratch.dir, 'job.yaml');
      writeFileSync(file, JOB_YAML);
      let r = await mist(['submit', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'job/tiny-llm submitted (phase Pending)\n');
      assert.deepEqual(api.fake.calls.find((c) => c[0] === 'submit')?.[1], { text: JOB_YAML, format: 'yaml' });
      const json = join(scratch.dir, 'job2.json');
      writeFileSync(json, JSON.stringify({ kind: 'MistJob', metadata: { name: 'second' }, spec: { resources: { gpus: 1 } } }));
      r = await mist(['submit', json, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const view = JSON.parse(r.stdout) as { name: string; phase: string; gpus: number; restarts: number; createdAt: string };
      assert.equal(view.name, 'second');
      assert.equal(view.phase, 'Pending');
      assert.equal(view.gpus, 1);
      assert.equal(typeof view.createdAt, 'string');
      assert.equal((api.fake.calls.filter((c) => c[0] === 'submit')[1][1] as { format: string }).format, 'json');
    });

    it('reads stdin with -', async () => {
      const r = await mist(['submit', '-'], {}, JOB_YAML);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(api.fake.jobs.has('tiny-llm'));
    });

    it('bad input exits 2 with the server\'s field message; a taken name exits 1; a missing file exits 2', async () => {
      const file = join(scratch.dir, 'bad.yaml');
      writeFileSync(file, JOB_YAML.replace('gpus: 2', 'gpus: 0'));
      let r = await mist(['submit', file]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /spec\.resources\.gpus: expected an integer ≥ 1/);
      r = await mist(['submit', file, '--json']);
      assert.equal(r.code, 2);
      assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'BAD_INPUT');
      const broken = join(scratch.dir, 'broken.yaml');
      writeFileSync(broken, 'kind: MistJob\n  metadata: [oops\n');
      r = await mist(['submit', broken]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /body: is not valid YAML/);
      const good = join(scratch.dir, 'good.yaml');
      writeFileSync(good, JOB_YAML);
      assert.equal((await mist(['submit', good])).code, 0);
      r = await mist(['submit', good]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /already exists/);
      r = await mist(['submit', join(scratch.dir, 'nope.yaml')]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /FILE: no such file/);
    });

    it('--wait polls until Succeeded (exit 0) with progress on stderr and one JSON document on stdout', async () => {
      api.fake.scriptFor('tiny-llm', [{ phase: 'Pending' }, { phase: 'Running', step: 5, tokensPerSecond: 100 }, { phase: 'Running', step: 10, tokensPerSecond: 110 }, { phase: 'Succeeded', step: 10 }]);
      const file = join(scratch.dir, 'job.yaml');
      writeFileSync(file, JOB_YAML);
      const r = await mist(['submit', file, '--wait', '--poll-interval', '0.02', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as { name: string; phase: string; conditions: unknown[] };
      assert.equal(doc.phase, 'Succeeded');
      assert.ok(Array.isArray(doc.conditions), 'the final JobDetail');
      assert.match(r.stderr, /job\/tiny-llm: Running · step 5 · 100 tokens\/s/);
      assert.match(r.stderr, /job\/tiny-llm: Succeeded/);
    });

    it('--wait exits 1 when the job Failed', async () => {
      api.fake.scriptFor('tiny-llm', [{ phase: 'Running' }, { phase: 'Failed', message: 'rank 1 ran out of memory' }]);
      const r = await mist(['submit', '-', '--wait', '--poll-interval', '0.02'], {}, JOB_YAML);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, 'job/tiny-llm Failed: rank 1 ran out of memory\n');
    });
  });

  describe('mist describe', () => {
    it('shows phase, plan, conditions, attempts and events; --json is the JobDetail; unknown job exits 1', async () => {
      api.fake.addJob(
        { name: 'llm-a', phase: 'Running', planId: 'p-1', planSummary: 'pp2 tp1 dp1', restarts: 1, message: 'training' },
        {
          conditions: [{ type: 'Admitted', status: 'True', reason: 'Placed', message: 'on n1', lastTransitionTime: new Date().toISOString() }],
          events: [{ type: 'Warning', reason: 'Restarted', message: 'rank 0 exited 137', time: new Date().toISOString() }],
          attempts: [{ attempt: 1, planId: 'p-0', result: 'Failed', failureClass: 'out_of_memory' }],
          plan: { id: 'p-1', space: 'mist', cluster: { gpu: 'cpu', nodes: 1, gpusPerNode: 2 }, globalBatch: 8, seqLen: 128, gradAccum: 4, stages: [{ layers: [0, 1], dp: 1, tp: 1, microBatch: 2, zero: 1, ckpt: { mode: 'layers', count: 1 } }, { layers: [2, 3], dp: 1, tp: 1, microBatch: 2, zero: 1, ckpt: { mode: 'none' } }] },
        },
      );
      let r = await mist(['describe', 'llm-a']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Name:\s+llm-a$/m);
      assert.match(r.stdout, /^Phase:\s+Running \(training\)$/m);
      assert.match(r.stdout, /^Plan:\s+pp2 tp1 dp1$/m);
      assert.match(r.stdout, /stage 0: layers 0-1 · dp 1 tp 1 mb 2 zero 1 ckpt last 1/);
      assert.match(r.stdout, /Conditions:\n\s+TYPE\s+STATUS\s+REASON\s+MESSAGE\s+AGE\n\s+Admitted\s+True\s+Placed\s+on n1\s+\d+s/);
      assert.match(r.stdout, /Attempts:\n.*\n\s+1\s+p-0\s+Failed\s+out_of_memory/);
      assert.match(r.stdout, /Events:\n\s+AGE\s+TYPE\s+REASON\s+MESSAGE\n\s+\d+s\s+Warning\s+Restarted\s+rank 0 exited 137/);
      r = await mist(['describe', 'llm-a', '--json']);
      const d = JSON.parse(r.stdout) as { name: string; conditions: unknown[]; events: unknown[]; plan: { id: string } };
      assert.equal(d.plan.id, 'p-1');
      assert.equal(d.events.length, 1);
      r = await mist(['describe', 'nope']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /job "nope" does not exist/);
      r = await mist(['describe', 'nope', '--json']);
      assert.equal(r.code, 1);
      assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'NOT_FOUND');
    });
  });

  describe('mist cancel', () => {
    it('cancels (exit 0, --json JobView); a read token exits 1 with a clear 403 message; unknown job exits 1', async () => {
      api.fake.addJob({ name: 'a', phase: 'Running' });
      api.fake.addJob({ name: 'b', phase: 'Running' });
      let r = await mist(['cancel', 'a']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'job/a cancelled (phase Cancelled)\n');
      r = await mist(['cancel', 'b', '--json', '--token', READ_TOKEN]);
      assert.equal(r.code, 1);
      assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'FORBIDDEN');
      assert.match(r.stderr, /403 forbidden.*needs an admin token.*use an admin token/);
      assert.equal(api.fake.jobs.get('b')?.detail.phase, 'Running');
      r = await mist(['cancel', 'b', '--json']);
      assert.equal((JSON.parse(r.stdout) as { phase: string }).phase, 'Cancelled');
      r = await mist(['cancel', 'zzz']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /does not exist/);
    });
  });

  describe('mist logs', () => {
    beforeEach(() => {
      api.fake.addJob({ name: 'a', phase: 'Running' });
      api.fake.addLog('a', { rank: 0, stream: 'stdout', line: 'step 1 loss 10.1' });
      api.fake.addLog('a', { rank: 1, stream: 'stderr', line: 'warning: slow' });
      api.fake.addLog('a', { rank: 0, stream: 'stdout', line: 'step 2 loss 9.8' });
    });

    it('prints lines with rank prefixes (stderr lines on stderr); --rank and --tail narrow; --json is {lines}', async () => {
      let r = await mist(['logs', 'a']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '[r0] step 1 loss 10.1\n[r0] step 2 loss 9.8\n');
      assert.equal(r.stderr, '[r1] warning: slow\n');
      r = await mist(['logs', 'a', '--rank', '0', '--tail', '1']);
      assert.equal(r.stdout, 'step 2 loss 9.8\n');
      r = await mist(['logs', 'a', '--json', '--tail', '2']);
      assert.deepEqual(JSON.parse(r.stdout), { lines: [{ rank: 1, stream: 'stderr', line: 'warning: slow' }, { rank: 0, stream: 'stdout', line: 'step 2 loss 9.8' }] });
      r = await mist(['logs', 'a', '--rank', 'x']);
      assert.equal(r.code, 2);
      r = await mist(['logs', 'a', '--follow', '--json']);
      assert.equal(r.code, 2);
      r = await mist(['logs', 'zz']);
      assert.equal(r.code, 1);
    });

    it('--follow streams new lines and returns when the job ends', async () => {
      const followed = once(api.fake.events, 'follow');
      const run = mist(['logs', 'a', '--follow', '--rank', '0', '--tail', '1']);
      await followed;
      api.fake.addLog('a', { rank: 0, stream: 'stdout', line: 'step 3 loss 9.5' });
      api.fake.addLog('a', { rank: 1, stream: 'stdout', line: 'not this rank' });
      api.fake.update('a', { phase: 'Succeeded' });
      const r = await run;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'step 2 loss 9.8\nstep 3 loss 9.5\n');
    });
  });

  describe('mist nodes', () => {
    it('prints a table and --json {nodes}', async () => {
      const GiB = 1024 ** 3;
      api.fake.nodeList = [
        { name: 'gpu-1', devices: Array.from({ length: 8 }, (_, i) => ({ index: i, kind: 'gpu', model: 'h100-80gb', memoryBytes: 80 * GiB })), heartbeatAgeSeconds: 2.2, lost: false, labels: { pool: 'a' } },
        { name: 'cpu-1', devices: [{ index: 0, kind: 'cpu', model: 'cpu', memoryBytes: 0 }], heartbeatAgeSeconds: null, lost: true },
      ];
      let r = await mist(['nodes'], { MIST_TOKEN: READ_TOKEN });
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split('\n');
      assert.match(lines[0], /^NAME\s+STATUS\s+DEVICES\s+HEARTBEAT\s+LABELS$/);
      assert.match(lines[1], /^gpu-1\s+Ready\s+8× h100-80gb \(80 GiB\)\s+2s ago\s+pool=a$/);
      assert.match(lines[2], /^cpu-1\s+Lost\s+1× cpu\s+never\s+-$/);
      r = await mist(['nodes', '--json']);
      assert.deepEqual(JSON.parse(r.stdout), { nodes: api.fake.nodeList });
    });
  });

  describe('finding the controller and the token', () => {
    it('an unreachable controller exits 1 and says what to start', async () => {
      const other = await startTestApi();
      const url = other.url;
      await other.close();
      const r = await runMistAsync(['jobs', '--server', url, '--token', ADMIN_TOKEN]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`cannot reach the controller at ${url.replace(/[.]/g, '\\.')}.*: is \`mist controller\` \\(or \`mist up\`\\) running\\?`));
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      const j = await runMistAsync(['nodes', '--json', '--server', url]);
      assert.equal(j.code, 1);
      assert.equal((JSON.parse(j.stdout) as { error: { code: string } }).error.code, 'UNAVAILABLE');
    });

    it('without a token: exit 1 with a 401 message that says where it looked', async () => {
      const r = await runMistAsync(['jobs', '--server', api.url], { env: { MIST_STATE_DIR: scratch.dir } });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /401 unauthenticated\): no token was given \(looked at --token, MIST_TOKEN, MIST_API_TOKENS and .*api-tokens\)/);
      const bad = await runMistAsync(['jobs', '--server', api.url, '--token', 'wrong-token-0123456789']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /the token from --token is not valid/);
    });

    it('takes the token from MIST_STATE_DIR/api-tokens and the server from MIST_SERVER', async () => {
      writeFileSync(join(scratch.dir, 'api-tokens'), `# tokens\n${READ_TOKEN} read viewer\n${ADMIN_TOKEN} admin ops\n`, { mode: 0o600 });
      api.fake.addJob({ name: 'a', phase: 'Running' });
      const r = await runMistAsync(['cancel', 'a', '--json'], { env: { MIST_SERVER: api.url, MIST_STATE_DIR: scratch.dir } });
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { phase: string }).phase, 'Cancelled', 'the admin token of the file was used');
    });

    it('a malformed --server is bad input (exit 2)', async () => {
      const r = await runMistAsync(['jobs', '--server', 'not a url']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--server: "not a url" is not a URL/);
    });
  });
});
