/** `mist plans`, `mist plans show`, `mist plans compare`: the real CLI against a temp SQLite store seeded through the Store API. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore } from '../../../controller/src/plans/store.js';
import { runMist } from '../../support/cli.js';
import { makePlan, PG_URL } from '../../conformance/store/backends.js';

interface Summary {
  id: string;
  createdAt: string;
  job: string | null;
  model: string;
  gpus: number;
  iterationSeconds: number;
}

describe('mist plans', function () {
  this.timeout(120_000);
  let dir: string;
  let db: string;
  const env = () => ({ MIST_DB: '', MIST_STATE_DIR: join(dir, 'no-state') });
  const ids = (stdout: string) => (JSON.parse(stdout) as Summary[]).map((s) => s.id);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mist-plans-cli-'));
    db = join(dir, 'mist.db');
    const store = await openStore(db);
    try {
      const t0 = Date.now() - 10 * 86_400_000;
      await store.savePlan(makePlan({ id: 'old-gpt', model: 'gpt3-1.3b', gpu: 'l4-24gb', nodes: 1, iterationSeconds: 3.2 }), { job: 'train-a', createdAt: new Date(t0) });
      await store.savePlan(makePlan({ id: 'mid-llama', model: 'llama2-7b', arch: 'llama', gpu: 'h100-80gb', nodes: 2, iterationSeconds: 1.1 }), { job: 'train-b', createdAt: new Date(t0 + 5 * 86_400_000), record: { frontiers: [[1, 2]], baselines: { megatron: { iterationSeconds: 1.4 } } } });
      await store.savePlan(makePlan({ id: 'new-gpt', model: 'gpt3-1.3b', gpu: 'l4-24gb', nodes: 1, space: 'megatron', iterationSeconds: 2.4, stages: 4 }), { job: 'train-a', createdAt: new Date(t0 + 9 * 86_400_000) });
    } finally {
      await store.close();
    }
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('--help explains the filters and the show/compare subcommands', () => {
    const r = runMist(['plans', '--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const s of ['--model', '--gpus', '--since', '--csv', '--db', 'show [options] <id>', 'compare [options] <a> <b>', 'MIST_DB']) assert.ok(r.stdout.includes(s), s);
  });

  it('lists newest first as a table', () => {
    const r = runMist(['plans', '--db', db], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^ID\s+CREATED \(UTC\)\s+JOB\s+MODEL\s+GPU\s+GPUS\s+SPACE\s+STAGES\s+FITS\s+ITER S\s+TOKENS\/S\s+MFU$/);
    assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/)[0]), ['new-gpt', 'mid-llama', 'old-gpt']);
    assert.match(lines[1]!, /new-gpt .* train-a\s+gpt3-1\.3b\s+l4-24gb\s+8\s+megatron\s+4\s+yes\s+2\.400\s+436,907\s+41\.0%/);
  });

  it('filters: --model, --gpu, --gpus, --space, --job, --since, --until, --order, --limit', () => {
    const cases: Array<[string[], string[]]> = [
      [['--model', 'gpt3-1.3b'], ['new-gpt', 'old-gpt']],
      [['--gpu', 'h100-80gb'], ['mid-llama']],
      [['--gpus', '16'], ['mid-llama']],
      [['--space', 'megatron'], ['new-gpt']],
      [['--job', 'train-a', '--model', 'gpt3-1.3b', '--gpu', 'l4-24gb'], ['new-gpt', 'old-gpt']],
      [['--since', '7d'], ['new-gpt', 'mid-llama']],
      [['--since', new Date(Date.now() - 2 * 86_400_000).toISOString().slice(0, 10), '--until', '2999-01-01'], ['new-gpt']],
      [['--order', 'fastest'], ['mid-llama', 'new-gpt', 'old-gpt']],
      [['--limit', '1', '--offset', '1'], ['mid-llama']],
      [['--model', 'none'], []],
    ];
    for (const [flags, want] of cases) {
      const r = runMist(['plans', '--db', db, '--json', ...flags], { env: env() });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(ids(r.stdout), want, flags.join(' '));
    }
  });

  it('--json prints one array of summaries; --csv a header and one line per plan', () => {
    const j = runMist(['plans', '--db', db, '--json', '--job', 'train-b'], { env: env() });
    assert.equal(j.code, 0, j.stderr);
    const [s] = JSON.parse(j.stdout) as Array<Summary & Record<string, unknown>>;
    assert.equal(s!.model, 'llama2-7b');
    assert.equal(s!.gpus, 16);
    assert.equal(s!.hasRecord, true);
    assert.equal(s!.plan, undefined, 'summaries leave the Plan out');
    assert.match(s!.createdAt, /^\d{4}-\d\d-\d\dT/);

    const c = runMist(['plans', '--db', db, '--csv'], { env: env() });
    assert.equal(c.code, 0, c.stderr);
    const lines = c.stdout.trim().split('\n');
    assert.equal(lines[0], 'id,createdAt,job,model,arch,layers,hidden,gpu,nodes,gpusPerNode,gpus,globalBatch,seqLen,stages,space,solver,status,tunerSeconds,fits,iterationSeconds,tokensPerSecond,mfu,hasRecord');
    assert.equal(lines.length, 4);
    assert.match(lines[2]!, /^mid-llama,\d{4}-[^,]+,train-b,llama2-7b,llama,24,2048,h100-80gb,2,8,16,512,2048,2,mist,glpk,optimal,0\.42,true,1\.1,/);
  });

  it('MIST_DB and MIST_STATE_DIR choose the database when --db is absent', () => {
    const viaEnv = runMist(['plans', '--json'], { env: { MIST_DB: db } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.equal(ids(viaEnv.stdout).length, 3);
    const viaState = runMist(['plans', '--json'], { env: { MIST_DB: '', MIST_STATE_DIR: dir } });
    assert.equal(viaState.code, 0, viaState.stderr);
    assert.equal(ids(viaState.stdout).length, 3);
    const none = runMist(['plans', '--json'], { env: env() });
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(JSON.parse(none.stdout), []);
    assert.match(none.stderr, /no plan history at .*no-state\/mist\.db/);
  });

  it('show: stages, knobs and predictions; --json the summary with the Plan; --record the decision record', () => {
    const r = runMist(['plans', 'show', 'mid-llama', '--db', db], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^plan mid-llama\ncreated .* for job train-b · space mist · solver glpk \(optimal\) · tuned in 0\.42 s/);
    assert.match(r.stdout, /stage\s+layers\s+dp\s+tp\s+mb\s+zero\s+ckpt/);
    assert.match(r.stdout, /iteration 1\.100 s/);
    assert.match(r.stdout, /vs megatron: 1\.30× faster/);
    assert.match(r.stdout, /decision record stored/);

    const j = runMist(['plans', 'show', 'mid-llama', '--db', db, '--json', '--record'], { env: env() });
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as { id: string; plan: { id: string; cluster: { nodes: number } }; record: unknown };
    assert.equal(doc.id, 'mid-llama');
    assert.equal(doc.plan.id, 'mid-llama');
    assert.equal(doc.plan.cluster.nodes, 2);
    assert.deepEqual(doc.record, { frontiers: [[1, 2]], baselines: { megatron: { iterationSeconds: 1.4 } } });

    const noRec = runMist(['plans', 'show', 'old-gpt', '--record'], { env: { MIST_DB: db } });
    assert.equal(noRec.code, 0, noRec.stderr);
    assert.match(noRec.stdout, /decision record:\n\(none stored\)/);
  });

  it('compare: side by side with differences marked; --json lists the differences', () => {
    const r = runMist(['plans', 'compare', 'old-gpt', 'new-gpt', '--db', db], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /FIELD\s+A: old-gpt\s+B: new-gpt/);
    assert.match(r.stdout, /\*\s+space\s+mist\s+megatron/);
    assert.match(r.stdout, /\*\s+stages\s+2\s+4/);
    assert.match(r.stdout, /\n\s+gradAccum\s+64\s+64/, 'equal rows are not marked');
    assert.match(r.stdout, /\[stage 3\]\n\*\s+layers\s+-\s+18-23/);
    assert.match(r.stdout, /B is 1\.33× faster than A \(predicted\)/);

    const j = runMist(['plans', 'compare', 'old-gpt', 'new-gpt', '--db', db, '--json'], { env: env() });
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as { a: { id: string }; b: { id: string }; differences: Array<{ field: string; a: string; b: string }> };
    assert.equal(doc.a.id, 'old-gpt');
    assert.equal(doc.b.id, 'new-gpt');
    assert.deepEqual(doc.differences.find((d) => d.field === 'iteration s'), { field: 'iteration s', a: '3.2', b: '2.4' });
    assert.ok(!doc.differences.some((d) => d.field === 'gradAccum'));
  });

  it('bad input exits 2 naming the flag', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--gpus', 'abc'], /--gpus: expected an integer ≥ 1, got "abc"/],
      [['--limit', '0'], /--limit: expected an integer in 1\.\.10000/],
      [['--since', 'last tuesday'], /--since: "last tuesday" is not a date; valid: an ISO date/],
      [['--order', 'slowest'], /--order: unknown value "slowest"; valid: newest, fastest/],
      [['--json', '--csv'], /--csv: cannot be combined with --json/],
      [['--model', ' '], /--model: is empty/],
    ];
    for (const [flags, pattern] of cases) {
      const r = runMist(['plans', '--db', db, ...flags], { env: env() });
      assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
    const j = runMist(['plans', '--db', db, '--gpus', 'x', '--json'], { env: env() });
    assert.equal((JSON.parse(j.stdout) as { error: { code: string } }).error.code, 'BAD_INPUT');
    assert.equal(runMist(['plans', 'show', '--db', db], { env: env() }).code, 2, 'a missing id is a usage error');
  });

  it('an unknown id exits 1 with NOT_FOUND', () => {
    const r = runMist(['plans', 'show', 'nope', '--db', db], { env: env() });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /plan nope not found in .*mist\.db/);
    const j = runMist(['plans', 'compare', 'old-gpt', 'nope', '--db', db, '--json'], { env: env() });
    assert.equal(j.code, 1);
    assert.equal((JSON.parse(j.stdout) as { error: { code: string } }).error.code, 'NOT_FOUND');
  });

  it('reads plan history from PostgreSQL when MIST_DB is a postgres:// URL', async () => {
    const schema = `mist_test_${randomBytes(6).toString('hex')}`;
    const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
    const store = await openStore(url);
    try {
      await store.savePlan(makePlan({ id: 'pg-plan', gpu: 'h200-141gb' }), { job: 'pg-job' });
      await store.close();
      const r = runMist(['plans', '--json'], { env: { MIST_DB: url } });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(ids(r.stdout), ['pg-plan']);
      const s = runMist(['plans', 'show', 'pg-plan', '--db', url], { env: env() });
      assert.equal(s.code, 0, s.stderr);
      assert.match(s.stdout, /for job pg-job/);
    } finally {
      await store.close();
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    }
  });
});
