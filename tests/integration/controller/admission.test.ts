/**
 * Admission and the API in front of the controller core: bad job specs are refused at submit with the field
 * named and nothing stored; an infeasible job ends Failed with the tuner's reason; tokens are enforced.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { isMistError } from '../../../protocol/src/errors.js';
import type { Controller } from '../../../controller/src/operator/controller.js';
import { startNatsServer, type NatsServer } from '../../support/nats-server.js';
import { READ_TOKEN, api, startInProcess, tempDir, tinyJob, waitFor } from './harness.js';

describe('controller: admission, infeasible jobs, tokens', function () {
  this.timeout(120_000);
  let nats: NatsServer;
  let dir: string;
  let ctl: Controller;

  before(async () => {
    nats = await startNatsServer();
    dir = tempDir('ctl-admission');
    ctl = await startInProcess({ nats: nats.url, dir });
  });
  after(async () => {
    await ctl?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const bad: Array<[string, string, RegExp]> = [
    ['unknown model', tinyJob('bad-model', { model: 'no-such-model' }), /^spec\.model/],
    ['zero GPUs', tinyJob('bad-gpus', { gpus: 0 }), /^spec\.resources\.gpus/],
    ['batch not divisible', tinyJob('bad-batch').replace('  tuner:\n', '  tuner:\n    pins: {dp: 3}\n'), /^spec\.training\.globalBatch/],
    ['unknown runtime', tinyJob('bad-runtime').replace('runtime: reference', 'runtime: bash'), /^spec\.runtime/],
    ['malformed YAML', 'apiVersion: mist.io/v1alpha1\nkind: MistJob\nmetadata: {name: broken\nspec: [', /malformed YAML at line \d+/],
  ];
  for (const [what, text, field] of bad) {
    it(`refuses ${what} at submit, naming the field, and stores nothing`, async () => {
      await assert.rejects(ctl.submit({ text, format: 'yaml' }), (e: unknown) => isMistError(e) && e.code === 'BAD_INPUT' && field.test(e.message));
      const r = await api(ctl.url!, '/api/v1/jobs', { method: 'POST', body: text });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'BAD_INPUT');
      assert.deepEqual(await ctl.storeHandle.listJobs(), []);
      assert.deepEqual(await ctl.listJobs(), []);
    });
  }

  it('enforces tokens: 401 without, 403 for a read token that submits, 200 for reads', async () => {
    const text = tinyJob('token-job');
    assert.equal((await api(ctl.url!, '/api/v1/jobs', { token: null })).status, 401);
    assert.equal((await api(ctl.url!, '/api/v1/jobs', { token: 'mist_not_a_known_token_000000' })).status, 401);
    const forbidden = await api(ctl.url!, '/api/v1/jobs', { method: 'POST', token: READ_TOKEN, body: text });
    assert.equal(forbidden.status, 403);
    assert.equal(await ctl.storeHandle.getJob('token-job'), null, 'a refused submit stores nothing');
    const list = await api(ctl.url!, '/api/v1/jobs', { token: READ_TOKEN });
    assert.equal(list.status, 200);
    assert.equal((await api(ctl.url!, '/api/v1/nodes', { token: READ_TOKEN })).status, 200);
  });

  it('an infeasible job ends Failed with the tuner\'s reason', async () => {
    const text = tinyJob('too-big', { model: 'gpt3-175b', globalBatch: 8, steps: 10 });
    const r = await api(ctl.url!, '/api/v1/jobs', { method: 'POST', body: text });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const st = await waitFor('too-big to fail', () => {
      const s = ctl.status('too-big');
      return s?.phase === 'Failed' ? s : undefined;
    }, 60_000);
    assert.equal(st.reason, 'PlanInfeasible');
    assert.match(st.message, /no plan for 2 × cpu: .*(GiB|memory|fit)/i);
    const d = await api(ctl.url!, '/api/v1/jobs/too-big');
    assert.equal(d.body.phase, 'Failed');
    assert.ok(d.body.events.some((e: { reason: string }) => e.reason === 'PlanInfeasible'));
    assert.equal((await ctl.storeHandle.getJob('too-big'))?.phase, 'Failed');
  });
});
