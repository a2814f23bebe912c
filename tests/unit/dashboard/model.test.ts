/** The dashboard's pure helpers (controller/src/dashboard/model.js), the Prometheus text parser and the CLI colour rule. */
import assert from 'node:assert/strict';
import {
  applyJobsDelta,
  comparePlans,
  deviceOverview,
  etaSeconds,
  filterSortPlans,
  fmtBytes,
  fmtSeconds,
  paretoFrontier,
  parseRoute,
  phaseCounts,
  planGrid,
  rankProfiles,
  seqFollows,
  stepSeries,
} from '../../../controller/src/dashboard/model.js';
import { colourEnabled } from '../../../controller/src/cli/progress.js';
import { parsePrometheusText } from '../../support/prom-text.js';

const plan = {
  model: { layers: 4 },
  gradAccum: 2,
  stages: [
    { layers: [0, 1], dp: 1, tp: 1, microBatch: 4, zero: 1, ckpt: { mode: 'none' }, offload: { weights: 0, grads: 0, optimizer: 0.5, activations: 0 }, nodes: 1, gpusPerNode: 1 },
    { layers: [2, 3], dp: 1, tp: 1, microBatch: 4, zero: 0, ckpt: { mode: 'layers', count: 1, others: 'pointwise' }, offload: { weights: 0, grads: 0, optimizer: 0, activations: 0 }, nodes: 1, gpusPerNode: 1 },
  ],
  predicted: { iterationSeconds: 0.5, tokensPerSecond: 1000, mfu: 0.4, stages: [{ stableSeconds: 0.1, deltaSeconds: 0.02, peakMemoryBytes: 1024 }, { stableSeconds: 0.12, deltaSeconds: 0.01, peakMemoryBytes: 2048 }] },
};

describe('dashboard model', () => {
  it('counts devices by node and type: total, allocated (held by a job), idle; lost nodes have no idle devices', () => {
    const nodes = [
      { name: 'a', devices: [{ index: 0, kind: 'gpu', model: 'h100' }, { index: 1, kind: 'gpu', model: 'h100' }], heartbeatAgeSeconds: 1, lost: false },
      { name: 'b', devices: [{ index: 0, kind: 'cpu', model: 'cpu' }], heartbeatAgeSeconds: 30, lost: true },
    ];
    const o = deviceOverview(nodes, [{ node: 'a', device: 1, job: 'j' }]);
    assert.deepEqual(o.total, { total: 3, allocated: 1, idle: 1 });
    assert.deepEqual(o.byNode.map((n) => [n.node, n.total, n.allocated, n.idle, n.jobs]), [['a', 2, 1, 1, ['j']], ['b', 1, 0, 0, []]]);
    assert.deepEqual(o.byType.map((t) => [t.type, t.total]), [['cpu:cpu', 1], ['gpu:h100', 2]]);
  });

  it('draws the plan as stages × layers with each stage’s knobs and predictions', () => {
    const g = planGrid(plan);
    assert.equal(g.layers, 4);
    assert.equal(planGrid({ stages: plan.stages }).layers, 4, 'inclusive ranges: layers 0–3 are 4 layers');
    assert.deepEqual(g.stages.map((s) => [s.first, s.last, s.count, s.zero, s.ckpt]), [[0, 2, 2, 1, 'none'], [2, 4, 2, 0, 'last 1 + pointwise']]);
    assert.equal(g.stages[0]!.offload, 'optimizer 50%');
    assert.deepEqual(g.stages.map((s) => s.splitBackward), [false, false]);
    assert.deepEqual(planGrid({ ...plan, stages: plan.stages.map((s, i) => ({ ...s, splitBackward: i === 1 })) }).stages.map((s) => s.splitBackward), [false, true]);
    assert.ok(Math.abs(g.stages[1]!.predictedSeconds! - 0.13) < 1e-12);
    assert.deepEqual(planGrid(null), { layers: 0, stages: [] });
  });

  it('builds step series of the latest attempt (slowest rank per step) against the predicted step time', () => {
    const p = (attempt: number, rank: number, step: number, s: number, loss: number | null = null) => ({ attempt, rank, step, stepSeconds: s, loss, node: 'n', stage: rank, peakMemoryBytes: 10 * rank, tokens: 64, at: '' });
    const profiles = [p(1, 0, 1, 9), p(2, 0, 2, 0.4), p(2, 1, 2, 0.6, 3.2), p(2, 0, 1, 0.5), p(2, 1, 1, 0.45, 3.5)];
    const s = stepSeries(profiles, plan);
    assert.equal(s.attempt, 2);
    assert.deepEqual(s.steps, [1, 2]);
    assert.deepEqual(s.measured, [0.5, 0.6]);
    assert.deepEqual(s.predicted, [0.5, 0.5]);
    assert.deepEqual(s.loss, [3.5, 3.2]);
    const ranks = rankProfiles(profiles);
    assert.deepEqual(ranks.map((r) => [r.rank, r.steps, r.lastStep]), [[0, 2, 2], [1, 2, 2]]);
    assert.equal(etaSeconds(8, 10, [1, 1, 1]), 2);
    assert.equal(etaSeconds(10, 10, [1]), null);
  });

  it('filters, sorts and compares plans; the Pareto frontier keeps only undominated points', () => {
    const plans = [
      { id: 'p1', job: 'llm', model: 'tiny-llama', gpu: 'cpu', space: 'mist', iterationSeconds: 0.3, createdAt: '2025-01-02' },
      { id: 'p2', job: 'lvm', model: 'tiny-lvm', gpu: 'cpu', space: 'mist', iterationSeconds: 0.2, createdAt: '2025-01-01' },
      { id: 'p3', job: 'big', model: 'gpt3-22b', gpu: 'h100', space: 'megatron', iterationSeconds: null, createdAt: '2025-01-03' },
    ];
    assert.deepEqual(filterSortPlans(plans, 'cpu tiny', 'iterationSeconds', false).map((p) => p.id), ['p2', 'p1']);
    assert.deepEqual(filterSortPlans(plans, '', 'iterationSeconds', false).map((p) => p.id), ['p2', 'p1', 'p3'], 'nulls last');
    assert.deepEqual(filterSortPlans(plans, 'megatron', 'createdAt', true).map((p) => p.id), ['p3']);
    const rows = comparePlans({ ...plans[0], plan }, { ...plans[1], plan: { ...plan, gradAccum: 4 } });
    assert.equal(rows.find((r) => r.field === 'model')!.differs, true);
    assert.equal(rows.find((r) => r.field === 'grad accum')!.b, '4');
    assert.equal(rows.find((r) => r.field === 'shape')!.differs, false);
    assert.ok(rows.some((r) => r.field === 'stage 1'));
    const front = paretoFrontier([{ x: 1, y: 5 }, { x: 2, y: 3 }, { x: 3, y: 4 }, { x: 4, y: 1 }, { x: 2, y: 6 }]);
    assert.deepEqual(front, [{ x: 1, y: 5 }, { x: 2, y: 3 }, { x: 4, y: 1 }]);
  });

  it('applies jobs deltas, checks sequence numbers and parses hash routes', () => {
    const m = new Map([['a', { name: 'a', phase: 'Running' }]]);
    applyJobsDelta(m, { upsert: [{ name: 'a', phase: 'Succeeded' }, { name: 'b', phase: 'Pending' }], remove: [] });
    applyJobsDelta(m, { upsert: [], remove: ['b'] });
    assert.deepEqual([...m.values()], [{ name: 'a', phase: 'Succeeded' }]);
    assert.equal(seqFollows(3, 4), true);
    assert.equal(seqFollows(3, 5), false);
    assert.equal(parseRoute('').page, 'overview');
    assert.deepEqual([parseRoute('#/jobs/tiny-llm-1').page, parseRoute('#/jobs/tiny-llm-1').name], ['job', 'tiny-llm-1']);
    assert.equal(parseRoute('#/plans/a%3Ab').id, 'a:b');
    assert.equal(parseRoute('#/tuner').page, 'tuner');
    assert.equal(parseRoute('#/nope').page, 'notfound');
    assert.deepEqual(phaseCounts([{ phase: 'Succeeded' }, { phase: 'Running' }, { phase: 'Succeeded' }]), [['Running', 1], ['Succeeded', 2]]);
    assert.equal(fmtSeconds(0.0123), '12.3 ms');
    assert.equal(fmtBytes(3 * 1024 * 1024), '3.0 MiB');
  });
});

describe('CLI colour rule', () => {
  it('colour only on a terminal, never with NO_COLOR or TERM=dumb', () => {
    assert.equal(colourEnabled({}, true), true);
    assert.equal(colourEnabled({}, false), false);
    assert.equal(colourEnabled({ NO_COLOR: '1' }, true), false);
    assert.equal(colourEnabled({ NO_COLOR: '' }, true), true);
    assert.equal(colourEnabled({ TERM: 'dumb' }, true), false);
  });
});

describe('Prometheus text parser (tests/support/prom-text.ts)', () => {
  it('accepts well-formed exposition and reads labels, values and histograms', () => {
    const text = [
      '# HELP a_total Things.',
      '# TYPE a_total counter',
      'a_total{k="v\\"q",z="1"} 3',
      '# HELP h Seconds.',
      '# TYPE h histogram',
      'h_bucket{le="0.1"} 1',
      'h_bucket{le="+Inf"} 2',
      'h_sum 0.3',
      'h_count 2',
      '',
    ].join('\n');
    const f = parsePrometheusText(text);
    assert.deepEqual(f.get('a_total')!.samples[0], { name: 'a_total', labels: { k: 'v"q', z: '1' }, value: 3 });
    assert.equal(f.get('h')!.type, 'histogram');
  });
  it('rejects malformed lines, samples without TYPE, non-contiguous families and broken histograms', () => {
    assert.throws(() => parsePrometheusText('# TYPE a gauge\na{k=v} 1\n'), /label syntax/);
    assert.throws(() => parsePrometheusText('b 1\n'), /no HELP\/TYPE/);
    assert.throws(() => parsePrometheusText('# TYPE a gauge\n# TYPE b gauge\nb 1\na 2\n'), /not contiguous|after its samples/);
    assert.throws(() => parsePrometheusText('# TYPE a gauge\na one\n'), /not a number/);
    assert.throws(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 3\n'), /must equal _count/);
    assert.throws(() => parsePrometheusText('# TYPE a gauge\na 1'), /newline/);
  });
});
