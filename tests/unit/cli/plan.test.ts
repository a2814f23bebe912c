import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Plan } from '../../../controller/src/domain/plan.js';
import { runMist } from '../../support/cli.js';

const SMALL = ['--model', 'gpt3-1.3b', '--gpu', 'l4-24gb', '--nodes', '1', '--gpus-per-node', '2', '--global-batch', '32'];

describe('mist plan', function () {
  this.timeout(120_000);

  it('--json prints exactly one Plan, and --explain writes the decision record', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mist-plan-'));
    const file = join(dir, 'record.json');
    const r = runMist(['plan', ...SMALL, '--json', '--explain', file]);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as Plan;
    assert.equal(plan.version, 1);
    assert.equal(plan.space, 'mist');
    assert.equal(plan.predicted?.fits, true);
    const s0 = plan.stages[0]!;
    assert.equal(s0.dp * s0.microBatch * plan.gradAccum, 32);
    const record = JSON.parse(readFileSync(file, 'utf8')) as { space: string; frontiers: unknown[]; baselines: Record<string, unknown> };
    assert.equal(record.space, 'mist');
    assert.ok(record.frontiers.length > 0);
    assert.ok('megatron-paper' in record.baselines);
  });

  it('prints a readable summary with the speedup over each baseline space', () => {
    const r = runMist(['plan', ...SMALL, '--space', 'mist', '--pin', 'tp=1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /stage\s+layers\s+dp\s+tp/);
    assert.match(r.stdout, /iteration [\d.]+ s · [\d,]+ tokens\/s · MFU/);
    assert.match(r.stdout, /vs megatron-paper: [\d.]+× faster/);
  });

  it('infeasible: exit 3 with the closest plan and what is missing', () => {
    const r = runMist(['plan', '--model', 'gpt3-175b', '--gpu', 'l4-24gb', '--nodes', '1', '--gpus-per-node', '2', '--global-batch', '32']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /infeasible: needs [\d.]+ GiB per GPU with every reduction on .*capacity [\d.]+ GiB/);
    assert.match(r.stdout, /closest plan/);
  });

  it('a bad pin is bad input (exit 2) naming the pin and the valid values', () => {
    const r = runMist(['plan', ...SMALL, '--pin', 'zero=7']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--pin zero: invalid value "7"; valid: 0, 1, 2 or 3/);
    const j = runMist(['plan', ...SMALL, '--pin', 'bogus=1', '--json']);
    assert.equal(j.code, 2);
    assert.equal((JSON.parse(j.stdout) as { error: { code: string } }).error.code, 'BAD_INPUT');
  });
});
