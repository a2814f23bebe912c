import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Plan } from '../../../controller/src/domain/plan.js';
import { runMist } from '../../support/cli.js';

const TINY = ['--model', 'tiny-gpt', '--gpu', 'cpu', '--nodes', '1', '--gpus-per-node', '8', '--global-batch', '16', '--tp', '2', '--pp', '2', '--dp', '2', '--micro-batch', '2', '--grad-accum', '4'];

function withFlag(args: string[], flag: string, value: string): string[] {
  const i = args.indexOf(flag);
  const out = [...args];
  out[i + 1] = value;
  return out;
}

describe('mist predict', () => {
  it('--json prints one Plan with predicted filled (fits, reason, times, per-stage memory)', () => {
    const r = runMist(['predict', ...TINY, '--zero', '2', '--ckpt', 'selective', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as Plan;
    assert.equal(plan.version, 1);
    assert.equal(plan.stages.length, 2);
    assert.deepEqual(plan.stages.map((s) => s.layers), [[0, 1], [2, 3]]);
    assert.ok(plan.stages.every((s) => s.dp === 2 && s.tp === 2 && s.microBatch === 2 && s.zero === 2 && s.ckpt.mode === 'selective'));
    const p = plan.predicted!;
    assert.equal(p.fits, true);
    assert.equal(p.reason, null);
    assert.ok(p.iterationSeconds > 0 && p.tokensPerSecond > 0 && p.mfu > 0 && p.mfu < 1);
    assert.equal(p.stages.length, 2);
    for (const s of p.stages) assert.ok(s.stableSeconds > 0 && s.deltaSeconds >= 0 && s.peakMemoryBytes > 0);
    // tokens/s is consistent with the iteration time
    assert.ok(Math.abs(p.tokensPerSecond * p.iterationSeconds - 16 * 64) < 1e-6 * 16 * 64);
  });

  it('--plan FILE and --plan - (stdin) predict the same as the flag form', () => {
    const first = JSON.parse(runMist(['predict', ...TINY, '--json']).stdout) as Plan;
    const dir = mkdtempSync(join(tmpdir(), 'mist-predict-'));
    const file = join(dir, 'plan.json');
    const { predicted: _drop, ...bare } = first;
    writeFileSync(file, JSON.stringify(bare));
    const fromFile = runMist(['predict', '--plan', file, '--json']);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.deepEqual((JSON.parse(fromFile.stdout) as Plan).predicted, first.predicted);
    const fromStdin = runMist(['predict', '--plan', '-', '--json'], { input: JSON.stringify(bare) });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.deepEqual((JSON.parse(fromStdin.stdout) as Plan).predicted, first.predicted);
  });

  it('a plan that does not fit is still a prediction: exit 0, fits false, the reason names the stage and the shortfall', () => {
    const r = runMist(['predict', '--model', 'gpt3-175b', '--gpu', 'a100-80gb', '--nodes', '1', '--gpus-per-node', '8', '--global-batch', '32', '--tp', '8', '--pp', '1', '--dp', '1', '--micro-batch', '1', '--grad-accum', '32', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const p = (JSON.parse(r.stdout) as Plan).predicted!;
    assert.equal(p.fits, false);
    assert.match(p.reason ?? '', /stage 0 needs [\d.]+ GiB\/GPU, capacity [\d.]+ GiB \(short by [\d.]+ GiB\)/);
  });

  it('prints a readable table without --json', () => {
    const r = runMist(['predict', ...TINY]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /stage\s+layers\s+dp\s+tp/);
    assert.match(r.stdout, /tokens\/s/);
    assert.match(r.stdout, /fits: yes/);
  });

  it('--sequence-parallel and --tp-comm-overlap reach the workload and speed up a tp 4 plan on H100', () => {
    const args = ['--model', 'gpt3-1.3b', '--gpu', 'h100-80gb', '--nodes', '1', '--gpus-per-node', '8', '--global-batch', '16', '--tp', '4', '--pp', '1', '--dp', '2', '--micro-batch', '1', '--grad-accum', '8', '--flash'];
    const plain = JSON.parse(runMist(['predict', ...args, '--json']).stdout) as Plan;
    const r = runMist(['predict', ...args, '--sequence-parallel', '--tp-comm-overlap', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as Plan;
    assert.equal(plan.workload.sequenceParallel, true);
    assert.equal(plan.workload.tpCommOverlap, true);
    assert.equal(plain.workload.sequenceParallel, undefined);
    assert.ok(plan.predicted!.iterationSeconds < plain.predicted!.iterationSeconds, `${plan.predicted!.iterationSeconds} < ${plain.predicted!.iterationSeconds}`);
  });

  const bad: Array<{ name: string; args: string[]; field: RegExp; valid?: RegExp }> = [
    { name: '--tp-comm-overlap without --sequence-parallel', args: [...TINY, '--tp-comm-overlap'], field: /--tp-comm-overlap/, valid: /--sequence-parallel/ },
    { name: 'unknown preset', args: withFlag(TINY, '--model', 'gpt5-9t'), field: /--model/, valid: /tiny-gpt/ },
    { name: 'heads not divisible by tp', args: withFlag(withFlag(withFlag(withFlag(TINY, '--tp', '8'), '--dp', '1'), '--pp', '1'), '--global-batch', '8'), field: /heads 4/, valid: /tp/ },
    { name: 'zero GPUs', args: withFlag(TINY, '--nodes', '0'), field: /--nodes/ },
    { name: 'batch not divisible by dp × micro-batch × grad-accum', args: withFlag(TINY, '--global-batch', '15'), field: /globalBatch|global-batch/ },
    { name: 'unknown GPU type', args: withFlag(TINY, '--gpu', 'v100'), field: /gpu/, valid: /h100-80gb/ },
    { name: 'G < pp under 1F1B', args: withFlag(withFlag(withFlag(TINY, '--grad-accum', '1'), '--global-batch', '4'), '--micro-batch', '2'), field: /gradAccum|grad-accum/ },
    { name: 'dp·tp·pp ≠ GPUs', args: withFlag(TINY, '--dp', '1'), field: /dp/ },
    { name: 'a ratio out of range', args: [...TINY, '--offload-optimizer', '1.5'], field: /--offload-optimizer/ },
    { name: 'a non-integer flag', args: withFlag(TINY, '--tp', 'two'), field: /--tp/ },
    { name: 'an unknown ckpt mode', args: [...TINY, '--ckpt', 'some'], field: /--ckpt/, valid: /selective/ },
    { name: 'a missing required flag', args: TINY.slice(2), field: /--model/ },
    { name: 'a missing plan file', args: ['--plan', '/nonexistent/plan.json'], field: /--plan/ },
  ];
  for (const c of bad) {
    it(`bad input exits 2 naming the field: ${c.name}`, () => {
      const r = runMist(['predict', ...c.args]);
      assert.equal(r.code, 2, `exit ${r.code}: ${r.stderr}`);
      assert.match(r.stderr, c.field);
      if (c.valid) assert.match(r.stderr, c.valid);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }
});
