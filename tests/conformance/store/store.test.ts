/**
 * One suite, every Store backend: SQLite on a temp file and PostgreSQL on a fresh schema. Each area round-trips,
 * the plan queries filter and order as documented, optimistic concurrency and the epoch hold under concurrent
 * callers, migrations are idempotent, data survives close/reopen, and malformed input is BAD_INPUT naming the field.
 */
import assert from 'node:assert/strict';
import { MistError } from '../../../protocol/src/errors.js';
import { LATEST_VERSION } from '../../../controller/src/plans/migrations.js';
import type { PlanSummary, ProfileRow, Store } from '../../../controller/src/plans/store.js';
import { BACKENDS, makePlan, type Backend } from './backends.js';

function isCode(code: string, pattern?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof MistError, `expected a MistError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

const T0 = Date.parse('2025-03-01T00:00:00.000Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000);

for (const { name, make } of BACKENDS) {
  describe(`store conformance: ${name}`, function () {
    this.timeout(60_000);
    let backend: Backend;
    let store: Store;

    beforeEach(async () => {
      backend = make();
      store = await backend.open();
    });

    afterEach(async () => {
      await store.close();
      await backend.cleanup();
    });

    describe('migrations', () => {
      it('opening applies every migration once; opening again (also concurrently) is a no-op', async () => {
        assert.equal(store.backend, name);
        assert.equal(await store.schemaVersion(), LATEST_VERSION);
        await store.createJob({ name: 'keep', spec: { a: 1 } });
        const [a, b] = await Promise.all([backend.open(), backend.open()]);
        try {
          assert.equal(await a.schemaVersion(), LATEST_VERSION);
          assert.equal(await b.schemaVersion(), LATEST_VERSION);
          assert.deepEqual((await a.getJob('keep'))?.spec, { a: 1 });
        } finally {
          await a.close();
          await b.close();
        }
      });
    });

    describe('plans', () => {
      it('round-trips a plan, its summary and its decision record', async () => {
        const plan = makePlan({ id: 'p-1', nodes: 2, gpusPerNode: 8, iterationSeconds: 2.25 });
        const record = { space: 'mist', frontiers: [[{ stable: 0.1, delta: 0.02 }]], alternatives: [{ id: 'x', score: 1.5 }], baselines: { 'megatron-paper': { iterationSeconds: 3.1 } }, big: 'x'.repeat(200_000) };
        const createdAt = new Date('2025-01-02T03:04:05.678Z');
        const summary = await store.savePlan(plan, { job: 'job-a', record, createdAt });
        const want: PlanSummary = {
          id: 'p-1', createdAt, job: 'job-a', model: 'gpt3-1.3b', arch: 'gpt', layers: 24, hidden: 2048, gpu: 'a100-80gb', nodes: 2, gpusPerNode: 8, gpus: 16,
          globalBatch: 512, seqLen: 2048, stages: 2, space: 'mist', solver: 'glpk', status: 'optimal', tunerSeconds: 0.42, fits: true, iterationSeconds: 2.25,
          tokensPerSecond: (512 * 2048) / 2.25, mfu: 0.41, hasRecord: true,
        };
        assert.deepStrictEqual(summary, want);
        const got = await store.getPlan('p-1');
        assert.deepStrictEqual(got, { ...want, plan });
        assert.deepStrictEqual(await store.getDecisionRecord('p-1'), record);
        assert.equal(await store.getPlan('nope'), null);
        assert.equal(await store.getDecisionRecord('nope'), null);
      });

      it('a plan without job, record, prediction or tuner block stores nulls', async () => {
        const plan = makePlan({ id: 'bare' });
        delete plan.predicted;
        delete plan.tuner;
        delete plan.model.name;
        const s = await store.savePlan(plan);
        assert.equal(s.job, null);
        assert.equal(s.model, null);
        assert.equal(s.fits, null);
        assert.equal(s.iterationSeconds, null);
        assert.equal(s.solver, null);
        assert.equal(s.hasRecord, false);
        assert.ok(Math.abs(s.createdAt.getTime() - Date.now()) < 60_000);
        assert.deepStrictEqual((await store.getPlan('bare'))?.plan, plan);
        assert.equal(await store.getDecisionRecord('bare'), null);
      });

      it('saving the same decision twice is idempotent; a different plan under a used id is CONFLICT', async () => {
        const plan = makePlan({ id: 'dup' });
        await store.savePlan(plan, { job: 'j' });
        await store.savePlan(plan, { job: 'j' });
        assert.equal((await store.queryPlans({})).length, 1);
        await assert.rejects(store.savePlan(makePlan({ id: 'dup', iterationSeconds: 9 }), { job: 'j' }), isCode('CONFLICT', /plan dup already exists/));
        await assert.rejects(store.savePlans([{ plan: makePlan({ id: 'new-1' }) }, { plan: makePlan({ id: 'dup' }) }]), isCode('CONFLICT'));
        assert.equal(await store.getPlan('new-1'), null, 'a failed batch saves nothing');
      });

      describe('queryPlans', () => {
        // 40 plans over two models, three GPU types, three sizes, two spaces, two jobs, one per minute.
        const MODELS = ['gpt3-1.3b', 'llama2-7b'];
        const GPUS = ['a100-80gb', 'h100-80gb', 'l4-24gb'];
        const NODES = [1, 2, 4];
        const SPACES = ['mist', 'megatron'];
        const seed = Array.from({ length: 40 }, (_, i) => ({
          i,
          id: `q-${String(i).padStart(2, '0')}`,
          model: MODELS[i % 2]!,
          gpu: GPUS[i % 3]!,
          nodes: NODES[Math.floor(i / 3) % 3]!,
          space: SPACES[Math.floor(i / 5) % 2]!,
          job: i % 4 === 0 ? 'job-x' : i % 4 === 1 ? 'job-y' : undefined,
          iterationSeconds: 1 + ((i * 7) % 13) / 10,
          fits: i % 9 !== 4,
          createdAt: at(i),
        }));

        beforeEach(async () => {
          await store.savePlans(
            seed.map((s) => ({
              plan: makePlan({ id: s.id, model: s.model, gpu: s.gpu, nodes: s.nodes, space: s.space, iterationSeconds: s.iterationSeconds, fits: s.fits }),
              job: s.job,
              createdAt: s.createdAt,
              record: s.i % 2 ? { n: s.i } : undefined,
            })),
          );
        });

        const newest = (xs: typeof seed) => [...xs].sort((a, b) => b.i - a.i).map((s) => s.id);
        const ids = (xs: PlanSummary[]) => xs.map((x) => x.id);

        it('newest first by default, with limit and offset', async () => {
          assert.deepEqual(ids(await store.queryPlans()), newest(seed));
          assert.deepEqual(ids(await store.queryPlans({ limit: 5 })), newest(seed).slice(0, 5));
          assert.deepEqual(ids(await store.queryPlans({ limit: 5, offset: 5 })), newest(seed).slice(5, 10));
          assert.deepEqual(ids(await store.queryPlans({ offset: 39 })), ['q-00']);
        });

        it('filters by model, gpu, gpus, space, job, since and until, alone and combined', async () => {
          const cases: Array<[Parameters<Store['queryPlans']>[0], (s: (typeof seed)[number]) => boolean]> = [
            [{ model: 'llama2-7b' }, (s) => s.model === 'llama2-7b'],
            [{ gpu: 'h100-80gb' }, (s) => s.gpu === 'h100-80gb'],
            [{ model: 'gpt3-1.3b', gpu: 'l4-24gb' }, (s) => s.model === 'gpt3-1.3b' && s.gpu === 'l4-24gb'],
            [{ gpus: 16 }, (s) => s.nodes * 8 === 16],
            [{ space: 'megatron' }, (s) => s.space === 'megatron'],
            [{ job: 'job-x' }, (s) => s.job === 'job-x'],
            [{ since: at(30) }, (s) => s.i >= 30],
            [{ until: at(3) }, (s) => s.i < 3],
            [{ since: at(10), until: at(20), space: 'mist' }, (s) => s.i >= 10 && s.i < 20 && s.space === 'mist'],
            [{ model: 'nope' }, () => false],
          ];
          for (const [filter, keep] of cases) {
            assert.deepEqual(ids(await store.queryPlans(filter)), newest(seed.filter(keep)), JSON.stringify(filter));
          }
        });

        it('order fastest: feasible plans by iteration time, then infeasible ones', async () => {
          const want = [...seed]
            .sort((a, b) => Number(b.fits) - Number(a.fits) || a.iterationSeconds - b.iterationSeconds || b.i - a.i)
            .map((s) => s.id);
          assert.deepEqual(ids(await store.queryPlans({ order: 'fastest', limit: 100 })), want);
          const gpt = await store.queryPlans({ order: 'fastest', model: 'gpt3-1.3b', limit: 3 });
          assert.deepEqual(ids(gpt), want.filter((id) => seed.find((s) => s.id === id)!.model === 'gpt3-1.3b').slice(0, 3));
        });

        it('summaries carry the record flag and the stored job', async () => {
          const [s] = await store.queryPlans({ limit: 1 });
          assert.equal(s!.id, 'q-39');
          assert.equal(s!.hasRecord, true);
          assert.equal(s!.job, null);
          assert.deepEqual(await store.getDecisionRecord('q-39'), { n: 39 });
        });
      });
    });

    describe('jobs', () => {
      it('create, get, list by phase, update, delete', async () => {
        const created = await store.createJob({ name: 'train-a', spec: { model: 'gpt3-1.3b', gpus: 8, nested: { list: [1, 'two', null, true] } }, priority: 5, createdAt: at(0) });
        assert.deepStrictEqual(created, {
          name: 'train-a', spec: { model: 'gpt3-1.3b', gpus: 8, nested: { list: [1, 'two', null, true] } }, priority: 5, phase: 'Pending', status: null, version: 1, createdAt: at(0), updatedAt: at(0),
        });
        await store.createJob({ name: 'train-b', spec: {}, priority: 0, phase: 'Running', createdAt: at(1) });
        assert.deepStrictEqual(await store.getJob('train-a'), created);
        assert.equal(await store.getJob('missing'), null);
        assert.deepEqual((await store.listJobs()).map((j) => j.name), ['train-a', 'train-b']);
        assert.deepEqual((await store.listJobs({ phase: 'Running' })).map((j) => j.name), ['train-b']);

        const status = { conditions: [{ type: 'Planned', status: 'True' }], planId: 'p-1', restarts: 0 };
        const u = await store.updateJob('train-a', 1, { phase: 'Running', status });
        assert.equal(u.version, 2);
        assert.equal(u.phase, 'Running');
        assert.deepStrictEqual(u.status, status);
        assert.deepStrictEqual(u.spec, created.spec);
        assert.ok(u.updatedAt.getTime() >= created.updatedAt.getTime());
        const u2 = await store.updateJob('train-a', 2, { spec: { model: 'llama2-7b' }, status: null });
        assert.equal(u2.version, 3);
        assert.equal(u2.status, null);
        assert.deepStrictEqual((await store.getJob('train-a'))?.spec, { model: 'llama2-7b' });
        assert.deepEqual((await store.listJobs({ phase: 'Running' })).map((j) => j.name), ['train-a', 'train-b']);

        await store.recordAttempt({ job: 'train-a', attempt: 0, planId: 'p-1', startedAt: at(2) });
        await store.appendEvent({ job: 'train-a', type: 'Normal', reason: 'Planned', message: 'm', at: at(2) });
        await store.appendProfiles([{ job: 'train-a', attempt: 0, node: 'n1', rank: 0, step: 1, stepSeconds: 1, at: at(3) }]);
        assert.equal(await store.deleteJob('train-a'), true);
        assert.equal(await store.deleteJob('train-a'), false);
        assert.equal(await store.getJob('train-a'), null);
        assert.deepEqual(await store.listAttempts('train-a'), []);
        assert.deepEqual(await store.listEvents('train-a'), []);
        assert.deepEqual(await store.listProfiles('train-a'), []);
      });

      it('a second job with the same name is CONFLICT', async () => {
        await store.createJob({ name: 'same', spec: {}, priority: 0, createdAt: at(0) });
        await assert.rejects(store.createJob({ name: 'same', spec: { other: true }, priority: 1, createdAt: at(1) }), isCode('CONFLICT', /job same already exists/));
      });

      it('optimistic concurrency: of two updates with the same expected version exactly one wins; the loser gets a retryable CONFLICT', async () => {
        await store.createJob({ name: 'race', spec: {}, priority: 0, createdAt: at(0) });
        const other = await backend.open();
        try {
          for (let round = 1; round <= 5; round++) {
            const results = await Promise.allSettled([
              store.updateJob('race', round, { phase: 'A', status: { by: 'a', round } }),
              other.updateJob('race', round, { phase: 'B', status: { by: 'b', round } }),
            ]);
            const won = results.filter((r) => r.status === 'fulfilled');
            const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
            assert.equal(won.length, 1, `round ${round}: ${JSON.stringify(results.map((r) => r.status))}`);
            assert.equal(lost.length, 1);
            assert.ok(lost[0]!.reason instanceof MistError);
            assert.equal(lost[0]!.reason.code, 'CONFLICT');
            assert.equal(lost[0]!.reason.retryable, true);
            const now = await store.getJob('race');
            assert.equal(now?.version, round + 1);
            assert.deepEqual(now?.status, (won[0] as PromiseFulfilledResult<{ status: unknown }>).value.status);
          }
          await assert.rejects(store.updateJob('race', 1, { phase: 'stale' }), isCode('CONFLICT', /at version 6, not 1/));
          await assert.rejects(store.updateJob('ghost', 1, { phase: 'x' }), isCode('NOT_FOUND', /job ghost/));
        } finally {
          await other.close();
        }
      });
    });

    describe('attempts', () => {
      beforeEach(async () => {
        await store.createJob({ name: 'j', spec: {}, priority: 0, createdAt: at(0) });
      });

      it('record, finish and list', async () => {
        const a0 = await store.recordAttempt({ job: 'j', attempt: 0, planId: 'p-1', startedAt: at(1) });
        assert.deepStrictEqual(a0, { job: 'j', attempt: 0, planId: 'p-1', startedAt: at(1), endedAt: null, outcome: null, failureClass: null, message: null });
        const f0 = await store.finishAttempt('j', 0, { endedAt: at(2), outcome: 'failed', failureClass: 'out_of_memory', message: 'CUDA out of memory on rank 3' });
        assert.deepStrictEqual(f0, { ...a0, endedAt: at(2), outcome: 'failed', failureClass: 'out_of_memory', message: 'CUDA out of memory on rank 3' });
        await store.recordAttempt({ job: 'j', attempt: 1, planId: 'p-2', startedAt: at(3) });
        const f1 = await store.finishAttempt('j', 1, { endedAt: at(4), outcome: 'succeeded' });
        assert.equal(f1.failureClass, null);
        assert.equal(f1.message, null);
        assert.deepStrictEqual(await store.listAttempts('j'), [f0, f1]);
        assert.deepStrictEqual(await store.listAttempts('other'), []);
      });

      it('unknown job or attempt is NOT_FOUND; a repeated attempt or a second finish is CONFLICT', async () => {
        await assert.rejects(store.recordAttempt({ job: 'ghost', attempt: 0, planId: 'p', startedAt: at(1) }), isCode('NOT_FOUND', /job ghost/));
        await store.recordAttempt({ job: 'j', attempt: 0, planId: 'p', startedAt: at(1) });
        await assert.rejects(store.recordAttempt({ job: 'j', attempt: 0, planId: 'p', startedAt: at(1) }), isCode('CONFLICT', /attempt 0 of job j/));
        await assert.rejects(store.finishAttempt('j', 7, { endedAt: at(2), outcome: 'failed' }), isCode('NOT_FOUND', /attempt 7 of job j/));
        await store.finishAttempt('j', 0, { endedAt: at(2), outcome: 'cancelled', failureClass: 'killed' });
        await assert.rejects(store.finishAttempt('j', 0, { endedAt: at(3), outcome: 'failed' }), isCode('CONFLICT', /already finished \(cancelled\)/));
      });
    });

    describe('profiles', () => {
      const full: ProfileRow = { job: 'j', attempt: 0, node: 'n1', rank: 0, stage: 0, step: 1, loss: 10.8125, stepSeconds: 1.25, forwardSeconds: [0.1, 0.2], backwardSeconds: [0.3, 0.45], peakMemoryBytes: 61_234_567_890, tokens: 1_048_576, at: at(1) };
      const minimal: ProfileRow = { job: 'j', attempt: 0, node: 'n2', rank: 1, step: 1, stepSeconds: 1.5, at: at(1) };

      it('round-trips rows with and without the optional fields, in (attempt, step, node, rank) order', async () => {
        const later: ProfileRow = { ...full, attempt: 1, step: 0, at: at(5) };
        assert.equal(await store.appendProfiles([later, minimal, full]), 3);
        assert.deepStrictEqual(await store.listProfiles('j'), [full, minimal, later]);
        assert.deepStrictEqual(await store.listProfiles('j', { attempt: 1 }), [later]);
        assert.deepStrictEqual(await store.listProfiles('other'), []);
        assert.equal(await store.appendProfiles([]), 0);
      });

      it('is idempotent by (job, attempt, node, rank, step): duplicates, also within one batch, are ignored', async () => {
        assert.equal(await store.appendProfiles([full]), 1);
        const changed = { ...full, loss: 99, stepSeconds: 9 };
        assert.equal(await store.appendProfiles([changed, minimal, minimal]), 1);
        const [a, b] = await Promise.all([store.appendProfiles([{ ...full, step: 2 }]), store.appendProfiles([{ ...full, step: 2 }])]);
        assert.equal(a + b, 1);
        const rows = await store.listProfiles('j');
        assert.equal(rows.length, 3);
        assert.deepStrictEqual(rows[0], full, 'the first write wins');
      });
    });

    describe('events', () => {
      it('oldest first; a limit keeps the latest', async () => {
        const evs = [
          { job: 'j', type: 'Normal' as const, reason: 'Planned', message: 'plan p-1: 1.2 s/iter', at: at(1) },
          { job: 'j', type: 'Normal' as const, reason: 'Launched', message: '16 ranks on 2 nodes', at: at(2) },
          { job: 'j', type: 'Warning' as const, reason: 'Failed', message: 'rank 3: out of memory', at: at(3) },
          { job: 'j', type: 'Normal' as const, reason: 'Restarted', message: 'attempt 1', at: at(3) },
          { job: 'k', type: 'Normal' as const, reason: 'Planned', message: 'other job', at: at(1) },
        ];
        for (const e of evs) await store.appendEvent(e);
        assert.deepStrictEqual(await store.listEvents('j'), evs.slice(0, 4));
        assert.deepStrictEqual(await store.listEvents('j', { limit: 2 }), evs.slice(2, 4));
        assert.deepStrictEqual(await store.listEvents('k'), [evs[4]]);
        assert.deepStrictEqual(await store.listEvents('none'), []);
      });
    });

    describe('calibrations', () => {
      it('latest per (cluster, gpu) by fit time', async () => {
        assert.equal(await store.latestCalibration('c1', 'l4-24gb'), null);
        const old = { cluster: 'c1', gpu: 'l4-24gb', params: { peakFlops: 1.1e14, efficiency: { gemm: [0.5, 0.7] } }, fittedAt: at(1), fromJobs: ['a'] };
        const newer = { cluster: 'c1', gpu: 'l4-24gb', params: { peakFlops: 1.2e14 }, fittedAt: at(5), fromJobs: ['a', 'b'], score: { before: 0.21, after: 0.06 } };
        const otherGpu = { cluster: 'c1', gpu: 'a100-80gb', params: {}, fittedAt: at(9), fromJobs: [] };
        await store.saveCalibration(newer);
        await store.saveCalibration(old);
        await store.saveCalibration(otherGpu);
        assert.deepStrictEqual(await store.latestCalibration('c1', 'l4-24gb'), newer);
        assert.deepStrictEqual(await store.latestCalibration('c1', 'a100-80gb'), otherGpu);
        assert.equal(await store.latestCalibration('c2', 'l4-24gb'), null);
      });
    });

    describe('epoch', () => {
      it('is monotonic across close/reopen and distinct under concurrent callers on two connections', async () => {
        assert.equal(await store.nextEpoch(), 1);
        assert.equal(await store.nextEpoch(), 2);
        await store.close();
        store = await backend.open();
        assert.equal(await store.nextEpoch(), 3);
        const other = await backend.open();
        try {
          const got = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? other : store).nextEpoch()));
          const sorted = [...got].sort((a, b) => a - b);
          assert.deepEqual(sorted, Array.from({ length: 40 }, (_, i) => i + 4));
        } finally {
          await other.close();
        }
        assert.equal(await store.nextEpoch(), 44);
      });
    });

    describe('durability', () => {
      it('every area survives close and reopen', async () => {
        const plan = makePlan({ id: 'durable' });
        await store.savePlan(plan, { job: 'd', record: { r: [1, 2, 3] }, createdAt: at(0) });
        await store.createJob({ name: 'd', spec: { s: 1 }, priority: 3, createdAt: at(0) });
        await store.updateJob('d', 1, { phase: 'Running', status: { ok: true } });
        await store.recordAttempt({ job: 'd', attempt: 0, planId: 'durable', startedAt: at(1) });
        await store.appendProfiles([{ job: 'd', attempt: 0, node: 'n', rank: 0, step: 0, stepSeconds: 0.5, at: at(2) }]);
        await store.appendEvent({ job: 'd', type: 'Normal', reason: 'Launched', message: 'ok', at: at(1) });
        await store.saveCalibration({ cluster: 'c', gpu: 'cpu', params: { x: 1 }, fittedAt: at(3), fromJobs: ['d'] });
        const epoch = await store.nextEpoch();
        const snapshot = async () => ({
          plan: await store.getPlan('durable'),
          record: await store.getDecisionRecord('durable'),
          job: await store.getJob('d'),
          attempts: await store.listAttempts('d'),
          profiles: await store.listProfiles('d'),
          events: await store.listEvents('d'),
          calibration: await store.latestCalibration('c', 'cpu'),
        });
        const before = await snapshot();
        await store.close();
        store = await backend.open();
        assert.deepStrictEqual(
          await snapshot(),
          before,
        );
        assert.equal(before.job?.version, 2);
        assert.equal(await store.nextEpoch(), epoch + 1);
      });

      it('a closed store refuses calls', async () => {
        await store.close();
        await assert.rejects(store.getJob('x'), isCode('UNAVAILABLE', /closed/));
        store = await backend.open();
      });
    });

    describe('bad input', () => {
      it('is BAD_INPUT naming the field, and stores nothing', async () => {
        const good = makePlan({ id: 'ok' });
        const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
          ['plan not an object', () => store.savePlan(null as never), /^plan: expected an object/],
          ['plan without id', () => store.savePlan({ ...good, id: '' }), /^plan\.id: expected a non-empty string/],
          ['plan gpu', () => store.savePlan({ ...good, cluster: { ...good.cluster, gpu: 3 as never } }), /^plan\.cluster\.gpu:/],
          ['plan nodes', () => store.savePlan({ ...good, cluster: { ...good.cluster, nodes: 1.5 } }), /^plan\.cluster\.nodes: expected an integer/],
          ['plan layers', () => store.savePlan({ ...good, model: { ...good.model, layers: 0 } }), /^plan\.model\.layers:/],
          ['plan NaN inside', () => store.savePlan({ ...good, predicted: { ...good.predicted!, mfu: Number.NaN } }), /^plan\.predicted\.mfu: NaN is not representable in JSON/],
          ['record with a function', () => store.savePlan(good, { record: { f: () => 1 } }), /^opts\.record\.f: expected a JSON value/],
          ['record with NUL', () => store.savePlan(good, { record: { s: 'a\u0000b' } }), /^opts\.record\.s: contains a NUL/],
          ['createdAt', () => store.savePlan(good, { createdAt: new Date('nope') }), /^opts\.createdAt: expected a Date/],
          ['query gpus', () => store.queryPlans({ gpus: -1 }), /^filter\.gpus:/],
          ['query limit', () => store.queryPlans({ limit: 0 }), /^filter\.limit:/],
          ['query order', () => store.queryPlans({ order: 'slowest' as never }), /^filter\.order: unknown value "slowest"; valid: newest, fastest/],
          ['query since', () => store.queryPlans({ since: 'yesterday' as never }), /^filter\.since:/],
          ['job name', () => store.createJob({ name: '', spec: {}, priority: 0, createdAt: at(0) }), /^job\.name:/],
          ['job spec', () => store.createJob({ name: 'x', spec: undefined, priority: 0, createdAt: at(0) }), /^job\.spec: is required/],
          ['job priority', () => store.createJob({ name: 'x', spec: {}, priority: 0.5, createdAt: at(0) }), /^job\.priority:/],
          ['update version', () => store.updateJob('x', 0, {}), /^expectedVersion:/],
          ['update status', () => store.updateJob('x', 1, { status: { n: Infinity } }), /^patch\.status\.n:/],
          ['attempt number', () => store.recordAttempt({ job: 'x', attempt: -1, planId: 'p', startedAt: at(0) }), /^attempt\.attempt:/],
          ['failure class', () => store.finishAttempt('x', 0, { endedAt: at(0), outcome: 'failed', failureClass: 'oops' as never }), /^end\.failureClass: unknown failure class "oops"; valid: user_error, out_of_memory/],
          ['profile rows', () => store.appendProfiles({} as never), /^rows: expected an array/],
          ['profile step', () => store.appendProfiles([{ job: 'j', attempt: 0, node: 'n', rank: 0, step: 1, stepSeconds: 1, at: at(0) }, { job: 'j', attempt: 0, node: 'n', rank: 0, step: 'two' as never, stepSeconds: 1, at: at(0) }]), /^rows\[1\]\.step:/],
          ['profile forward', () => store.appendProfiles([{ job: 'j', attempt: 0, node: 'n', rank: 0, step: 1, stepSeconds: 1, forwardSeconds: [0.1, -1], at: at(0) }]), /^rows\[0\]\.forwardSeconds\[1\]:/],
          ['event type', () => store.appendEvent({ job: 'j', type: 'Error' as never, reason: 'R', message: 'm', at: at(0) }), /^event\.type: unknown value "Error"; valid: Normal, Warning/],
          ['calibration fromJobs', () => store.saveCalibration({ cluster: 'c', gpu: 'g', params: {}, fittedAt: at(0), fromJobs: 'a' as never }), /^calibration\.fromJobs: expected an array/],
          ['calibration params', () => store.saveCalibration({ cluster: 'c', gpu: 'g', params: undefined, fittedAt: at(0), fromJobs: [] }), /^calibration\.params: is required/],
        ];
        for (const [what, call, pattern] of cases) {
          await assert.rejects(call(), (e: unknown) => {
            assert.ok(e instanceof MistError, `${what}: expected a MistError, got ${String(e)}`);
            assert.equal(e.code, 'BAD_INPUT', `${what}: ${e.message}`);
            assert.match(e.message, pattern, what);
            return true;
          }, what);
        }
        assert.deepEqual(await store.queryPlans(), []);
        assert.deepEqual(await store.listJobs(), []);
        assert.deepEqual(await store.listProfiles('j'), []);
      });
    });
  });
}
