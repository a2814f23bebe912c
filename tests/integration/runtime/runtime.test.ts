/**
 * The reference runtime (agent/runtime/torch) through `mist run-local`, on CPU/gloo with tiny-llama and tiny-lvm:
 * parity of every parallel plan with a single process, resume (also under a different plan), the built-in LVM
 * visual-sentence path, and the accounted device-pool memory under checkpointing (layers, pointwise) and offloading. Runs are shared
 * across assertions to keep the suite lean (2 cores).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMist } from '../../support/cli.js';
import { repoRoot } from '../../support/paths.js';

const PYTHON = process.env.MIST_PYTHON ?? '/usr/bin/python3';

interface Step {
  step: number;
  loss: number;
  stepSeconds: number;
  peakMemoryBytes: number;
}
interface RunOut {
  startStep: number;
  steps: Step[];
}
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const dir = mkdtempSync(join(tmpdir(), 'mist-runtime-test-'));

function basePlan(model: string, devices: number, dp: number, tp: number, pp: number, micro: number): Json {
  const r = runMist(['predict', '--model', model, '--gpu', 'cpu', '--nodes', '1', '--gpus-per-node', String(devices), '--global-batch', '8',
    '--seq-len', '64', '--dp', String(dp), '--tp', String(tp), '--pp', String(pp), '--micro-batch', String(micro), '--grad-accum', '2',
    '--zero', '0', '--ckpt', 'none', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Json;
}

function withStages(plan: Json, f: (s: Json, i: number) => void): Json {
  const p = structuredClone(plan);
  p.stages.forEach(f);
  return p;
}

function writePlan(name: string, plan: Json): string {
  const f = join(dir, `${name}.plan.json`);
  writeFileSync(f, JSON.stringify(plan));
  return f;
}

function runLocal(planFile: string, devices: number, extra: string[] = [], env: NodeJS.ProcessEnv = {}): { code: number; out?: RunOut; stderr: string; ms: number } {
  const t0 = Date.now();
  const r = runMist(['run-local', '--plan', planFile, '--devices', String(devices), '--seed', '7', '--json', ...extra], { env });
  const ms = Date.now() - t0;
  let out: RunOut | undefined;
  if (r.code === 0) out = JSON.parse(r.stdout) as RunOut;
  return { code: r.code, out, stderr: r.stderr, ms };
}

function maxRel(a: number[], b: number[]): number {
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]!) / Math.abs(b[i]!)));
}

const losses = (o: RunOut | undefined): number[] => (o ? o.steps.map((s) => s.loss) : []);

describe('reference runtime through mist run-local (integration, CPU/gloo)', function () {
  this.timeout(600_000);
  const plans: Record<string, { file: string; devices: number }> = {};
  let single: RunOut;

  before(function () {
    // The set-up step installs python3-torch; a missing torch is a failure here, never a skip.
    const torch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
    assert.equal(torch.status, 0, `${PYTHON} cannot import torch: ${torch.stderr}`);
    const p1 = basePlan('tiny-llama', 1, 1, 1, 1, 4);
    const dp2 = basePlan('tiny-llama', 2, 2, 1, 1, 2);
    const tp2 = basePlan('tiny-llama', 2, 1, 2, 1, 4);
    const pp2 = basePlan('tiny-llama', 2, 1, 1, 2, 4);
    plans.single = { file: writePlan('single', p1), devices: 1 };
    plans.dp2 = { file: writePlan('dp2', dp2), devices: 2 };
    plans.tp2 = { file: writePlan('tp2', tp2), devices: 2 };
    plans.pp2 = { file: writePlan('pp2', withStages(pp2, (s, i) => (s.layers = i === 0 ? [0, 0] : [1, 3]))), devices: 2 };
    const z3 = withStages(dp2, (s) => ((s.zero = 3), (s.ckpt = { mode: 'full' })));
    z3.prePost.zero = 3;
    plans.zero3 = { file: writePlan('zero3', z3), devices: 2 };
    const off = withStages(dp2, (s) => ((s.zero = 1), (s.offload.optimizer = 1)));
    off.prePost.zero = 1;
    plans.offload = { file: writePlan('offload', off), devices: 2 };
    plans.pointwiseTp2 = { file: writePlan('pointwise-tp2', withStages(tp2, (s) => (s.ckpt = { mode: 'pointwise' }))), devices: 2 };
    // split backward: weight gradients after the input gradient's send; on the second stage one layer is fully
    // recomputed (computes its weight gradients at once) and the others recompute pointwise (queued by
    // _PointwiseThenLinears); under ZeRO-2 the reduce-scatter follows the weight pass; under TP the queued
    // linears are column- and row-parallel
    const splitPp2 = withStages(pp2, (s, i) => {
      s.layers = i === 0 ? [0, 0] : [1, 3];
      s.splitBackward = true;
      if (i === 1) s.ckpt = { mode: 'layers', count: 1, others: 'pointwise' };
    });
    plans.splitPp2 = { file: writePlan('split-pp2', splitPp2), devices: 2 };
    const splitZero2 = withStages(dp2, (s) => ((s.zero = 2), (s.splitBackward = true)));
    splitZero2.prePost.zero = 2;
    plans.splitZero2 = { file: writePlan('split-zero2', splitZero2), devices: 2 };
    plans.splitTp2 = { file: writePlan('split-tp2', withStages(tp2, (s) => (s.splitBackward = true))), devices: 2 };
    plans.ckptFull1 = { file: writePlan('ckpt-full-1', withStages(p1, (s) => (s.ckpt = { mode: 'full' }))), devices: 1 };
    plans.pointwise1 = { file: writePlan('pointwise-1', withStages(p1, (s) => (s.ckpt = { mode: 'pointwise' }))), devices: 1 };
    plans.norms1 = { file: writePlan('norms-1', withStages(p1, (s) => (s.ckpt = { mode: 'norms' }))), devices: 1 };
    plans.layersPointwise1 = { file: writePlan('layers-pointwise-1', withStages(p1, (s) => (s.ckpt = { mode: 'layers', count: 2, others: 'pointwise' }))), devices: 1 };
    plans.ckptLayers1 = { file: writePlan('ckpt-layers-1', withStages(p1, (s) => (s.ckpt = { mode: 'layers', count: 2 }))), devices: 1 };
    plans.offOpt1 = { file: writePlan('off-opt-1', withStages(p1, (s) => (s.offload.optimizer = 1))), devices: 1 };
    plans.offAct1 = { file: writePlan('off-act-1', withStages(p1, (s) => (s.offload.activations = 0.5))), devices: 1 };
    const drop = { ...structuredClone(p1), workload: { ...p1.workload, dropout: 0.1 } };
    plans.drop1 = { file: writePlan('drop-1', drop), devices: 1 };
    plans.dropFull1 = { file: writePlan('drop-full-1', withStages(drop, (s) => (s.ckpt = { mode: 'full' }))), devices: 1 };
    const lvm = basePlan('tiny-lvm', 1, 1, 1, 1, 4);
    plans.lvm = { file: writePlan('lvm', lvm), devices: 1 };
    const r = runLocal(plans.single.file, 1, ['--steps', '12']);
    assert.equal(r.code, 0, r.stderr);
    single = r.out!;
    console.log(`      single (12 steps, ${r.ms} ms): ${losses(single).map((x) => x.toFixed(6)).join(' ')}`);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a single process learns: the loss falls over 10 steps', () => {
    assert.equal(single.steps.length, 12);
    assert.ok(single.steps[9]!.loss < single.steps[0]!.loss - 0.5, `losses ${losses(single).join(' ')}`);
  });

  for (const name of ['dp2', 'tp2', 'pp2', 'zero3', 'offload', 'pointwiseTp2', 'splitPp2', 'splitZero2', 'splitTp2']) {
    it(`${name} equals the single process step by step (rel. 1e-4 over 10 steps)`, () => {
      const r = runLocal(plans[name]!.file, plans[name]!.devices, ['--steps', '10']);
      assert.equal(r.code, 0, r.stderr);
      const l = losses(r.out);
      assert.equal(l.length, 10);
      const rel = maxRel(l, losses(single).slice(0, 10));
      console.log(`      ${name} (${r.ms} ms): max rel diff ${rel.toExponential(2)}`);
      assert.ok(rel <= 1e-4, `${name}: rel diff ${rel}; ${l.join(' ')}`);
    });
  }

  it('the accounted device-pool peak falls with checkpointing and with offloading, and the loss is unchanged', () => {
    const peak = (o: RunOut): number => Math.max(...o.steps.map((s) => s.peakMemoryBytes));
    const base = peak(single);
    const got: Record<string, number> = {};
    for (const name of ['ckptLayers1', 'ckptFull1', 'offOpt1', 'offAct1', 'norms1', 'pointwise1', 'layersPointwise1']) {
      const r = runLocal(plans[name]!.file, 1, ['--steps', '2']);
      assert.equal(r.code, 0, r.stderr);
      got[name] = peak(r.out!);
      assert.ok(maxRel(losses(r.out), losses(single).slice(0, 2)) <= 1e-5, `${name} changes the loss`);
    }
    console.log(`      peak bytes: none ${base}, ${Object.entries(got).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    assert.ok(got.ckptLayers1! < base, 'checkpointing the last 2 layers lowers the peak');
    assert.ok(got.ckptFull1! < got.ckptLayers1!, 'full checkpointing lowers it further');
    assert.ok(got.offOpt1! < base, 'optimizer offload lowers the peak');
    assert.ok(got.offAct1! < base, 'activation offload lowers the peak');
    assert.ok(got.norms1! < base, 'recomputing the norms lowers the peak');
    assert.ok(got.pointwise1! < got.norms1!, 'recomputing the activation function too lowers it further');
    assert.ok(got.layersPointwise1! < got.ckptLayers1!, 'pointwise recomputation of the other layers lowers it below layer recomputation alone');
  });

  it('workload.dropout is applied, and checkpointed recomputation replays the same dropout masks', () => {
    const plain = runLocal(plans.drop1!.file, 1, ['--steps', '3']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.ok(maxRel(losses(plain.out), losses(single).slice(0, 3)) > 1e-6, 'dropout 0.1 must change the losses');
    const full = runLocal(plans.dropFull1!.file, 1, ['--steps', '3']);
    assert.equal(full.code, 0, full.stderr);
    assert.ok(maxRel(losses(full.out), losses(plain.out)) <= 1e-5, `full recompute under dropout: ${losses(full.out).join(' ')} vs ${losses(plain.out).join(' ')}`);
  });

  it('a failing rank stops the run (exit 1, its stderr tail); resume continues to the uninterrupted loss, also under another plan', () => {
    const ck = join(dir, 'ckpt');
    const failed = runLocal(plans.dp2!.file, 2, ['--steps', '12', '--checkpoint-dir', ck, '--checkpoint-every', '6'], { MIST_TEST_FAIL_AT_STEP: '7', MIST_TEST_FAIL_RANK: '1' });
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /rank 1 exited with status 1/);
    assert.match(failed.stderr, /failing on purpose/);
    assert.ok(existsSync(join(ck, 'step-00000006', 'meta.json')));
    const ck2 = join(dir, 'ckpt2');
    cpSync(ck, ck2, { recursive: true });

    const same = runLocal(plans.dp2!.file, 2, ['--steps', '12', '--checkpoint-dir', ck, '--resume']);
    assert.equal(same.code, 0, same.stderr);
    assert.equal(same.out!.startStep, 6);
    assert.deepEqual(same.out!.steps.map((s) => s.step), [7, 8, 9, 10, 11, 12]);
    const ref = losses(single).slice(6);
    const relSame = maxRel(losses(same.out), ref);
    const final = same.out!.steps[5]!.loss;
    console.log(`      resume dp2->dp2: final ${final} vs uninterrupted ${single.steps[11]!.loss}; max rel ${relSame.toExponential(2)}`);
    assert.ok(relSame <= 1e-4);

    const other = runLocal(plans.pp2!.file, 2, ['--steps', '12', '--checkpoint-dir', ck2, '--resume']);
    assert.equal(other.code, 0, other.stderr);
    const relOther = maxRel(losses(other.out), ref);
    console.log(`      resume dp2->pp2 (1+3): max rel ${relOther.toExponential(2)}`);
    assert.ok(relOther <= 1e-4);
  });

  it('tiny-lvm trains on built-in visual sentences for 30 steps and the loss falls', () => {
    const r = runLocal(plans.lvm!.file, 1, ['--steps', '30']);
    assert.equal(r.code, 0, r.stderr);
    const l = losses(r.out);
    assert.equal(l.length, 30);
    const tail = l.slice(-5).reduce((a, b) => a + b, 0) / 5;
    console.log(`      lvm (${r.ms} ms): first ${l[0]!.toFixed(4)}, mean of last 5 ${tail.toFixed(4)}`);
    assert.ok(tail < 0.8 * l[0]!, l.join(' '));
  });

  it('visual-sentence shards written by the maker feed training (uint16 .bin + index.json)', () => {
    const data = join(dir, 'vis');
    const mk = spawnSync(PYTHON, ['-m', 'mist_runtime.visual', 'make', '--out', data, '--sentences', '64', '--images-per-sentence', '4', '--tokens-per-image', '16', '--vocab', '256'],
      { cwd: join(repoRoot, 'agent', 'runtime', 'torch'), encoding: 'utf8' });
    assert.equal(mk.status, 0, mk.stderr);
    const index = JSON.parse(readFileSync(join(data, 'index.json'), 'utf8')) as Json;
    assert.equal(index.kind, 'visual');
    assert.equal(index.dtype, 'uint16');
    const r = runLocal(plans.lvm!.file, 1, ['--steps', '2', '--data', data]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out!.steps.length, 2);
  });

  it('rejects a devices mismatch and a broken plan with exit 2 before starting ranks', () => {
    const r = runLocal(plans.dp2!.file, 3);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /needs 2 ranks/);
    const bad = writePlan('bad', { version: 1 });
    assert.equal(runLocal(bad, 1).code, 2);
    const splitOff = writePlan('split-offload', withStages(basePlan('tiny-llama', 1, 1, 1, 1, 4), (s) => ((s.splitBackward = true), (s.offload.activations = 0.5))));
    const rs = runLocal(splitOff, 1);
    assert.equal(rs.code, 2);
    assert.match(rs.stderr, /splitBackward/);
  });
});
