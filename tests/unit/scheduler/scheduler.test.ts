import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { NodeInventory } from '../../../controller/src/domain/cluster.js';
import type { Plan, Stage } from '../../../controller/src/domain/plan.js';
import {
  canonicalSlice,
  eligibleNodes,
  fitGpus,
  freeMap,
  orderQueue,
  placePlan,
  rankOf,
  schedulePass,
  worldSize,
  type QueueEntry,
} from '../../../controller/src/scheduler/index.js';

type MiniPlan = Pick<Plan, 'id' | 'stages'>;

function mkPlan(pp: number, dp: number, tp: number, gpusPerNode: number, id = 'p'): MiniPlan {
  const off = { weights: 0, grads: 0, optimizer: 0, activations: 0 };
  const per = dp * tp;
  const nodes = Math.max(1, per / gpusPerNode);
  const stages: Stage[] = Array.from({ length: pp }, (_, s) => ({
    layers: [s, s] as [number, number],
    nodes,
    gpusPerNode: Math.min(gpusPerNode, per),
    dp,
    tp,
    microBatch: 1,
    zero: 0,
    ckpt: { mode: 'none' },
    offload: off,
  }));
  return { id, stages };
}

function node(name: string, gpuType: string, devices: number, busy: number[] = [], labels: Record<string, string> = {}, schedulable = true): NodeInventory {
  return { name, gpuType, labels, schedulable, devices: Array.from({ length: devices }, (_, i) => ({ index: i, free: !busy.includes(i) })) };
}

const H = 'h100-80gb';

function place(plan: MiniPlan, inv: NodeInventory[], req: { gpuType: string; nodeSelector?: Record<string, string> } = { gpuType: H }) {
  const nodes = eligibleNodes(inv, req);
  return placePlan(plan, nodes, freeMap(nodes), req);
}

function entry(name: string, plan: MiniPlan, over: Partial<QueueEntry> = {}): QueueEntry {
  const n = worldSize(plan);
  return { name, priority: 0, createdAt: 0, plan, resources: { gpuType: H, min: n, max: n }, ...over };
}

describe('scheduler: rank order and placement', () => {
  it('rank = ((stage · dp) + dpRank) · tp + tpRank', () => {
    const p = mkPlan(3, 2, 4, 8);
    assert.equal(rankOf(p, 0, 0, 0), 0);
    assert.equal(rankOf(p, 0, 1, 3), 7);
    assert.equal(rankOf(p, 2, 1, 2), (2 * 2 + 1) * 4 + 2);
    assert.equal(worldSize(p), 24);
  });

  it('places a 2-stage dp2 tp2 plan on one 8-device node: contiguous, in rank order', () => {
    const r = place(mkPlan(2, 2, 2, 4), [node('a', H, 8)]);
    assert.ok(r.ok);
    assert.deepEqual(
      r.placement.map((p) => [p.rank, p.node, p.device, p.stage, p.dpRank, p.tpRank]),
      [
        [0, 'a', 0, 0, 0, 0], [1, 'a', 1, 0, 0, 1], [2, 'a', 2, 0, 1, 0], [3, 'a', 3, 0, 1, 1],
        [4, 'a', 4, 1, 0, 0], [5, 'a', 5, 1, 0, 1], [6, 'a', 6, 1, 1, 0], [7, 'a', 7, 1, 1, 1],
      ],
    );
  });

  it('a 4-node plan (tp 8 per node, pp 4) puts each stage on its own node', () => {
    const inv = ['n1', 'n2', 'n3', 'n4'].map((n) => node(n, H, 8));
    const r = place(mkPlan(4, 1, 8, 8), inv);
    assert.ok(r.ok);
    for (let s = 0; s < 4; s++) assert.deepEqual([...new Set(r.placement.filter((p) => p.stage === s).map((p) => p.node))], [`n${s + 1}`]);
  });

  it('best fit: a small job goes to the fullest node that takes it whole', () => {
    const r = place(mkPlan(1, 1, 2, 2), [node('a', H, 8), node('b', H, 8, [0, 1, 2, 3, 4, 5])]);
    assert.ok(r.ok);
    assert.deepEqual(r.placement.map((p) => `${p.node}/${p.device}`), ['b/6', 'b/7']);
  });

  it('prefers an aligned contiguous run of devices', () => {
    const r = place(mkPlan(1, 1, 4, 4), [node('a', H, 8, [1])]);
    assert.ok(r.ok);
    assert.deepEqual(r.placement.map((p) => p.device), [4, 5, 6, 7]);
  });

  it('honours gpuType, nodeSelector and unschedulable nodes', () => {
    const inv = [node('l4', 'l4-24gb', 8), node('cordoned', H, 8, [], { zone: 'a' }, false), node('other-zone', H, 8, [], { zone: 'b' }), node('good', H, 8, [], { zone: 'a' })];
    const r = place(mkPlan(1, 2, 2, 4), inv, { gpuType: H, nodeSelector: { zone: 'a' } });
    assert.ok(r.ok);
    assert.deepEqual([...new Set(r.placement.map((p) => p.node))], ['good']);
  });

  it('not enough free devices: "needs 16 × h100-80gb, 8 free"', () => {
    const r = place(mkPlan(2, 1, 8, 8), [node('a', H, 8), node('b', H, 8, [0, 1, 2, 3, 4, 5, 6, 7])]);
    assert.deepEqual(r, { ok: false, reason: 'needs 16 × h100-80gb, 8 free' });
  });

  it('fragmented devices: enough free in total, but TP groups cannot span nodes', () => {
    const r = place(mkPlan(1, 1, 8, 8), [node('a', H, 8, [0, 1, 2, 3]), node('b', H, 8, [4, 5, 6, 7])]);
    assert.equal(r.ok, false);
    assert.match((r as { reason: string }).reason, /needs 8 × h100-80gb in groups of 8 on one node; 8 free, but only 0 groups of 8 fit/);
  });

  it('no matching node names the selector', () => {
    const r = place(mkPlan(1, 1, 1, 1), [node('a', H, 8)], { gpuType: H, nodeSelector: { pool: 'x' } });
    assert.deepEqual(r, { ok: false, reason: 'needs 1 × h100-80gb with pool=x, no schedulable node matches' });
  });

  const slices: Array<{ name: string; size: number; gpus: number; want: [number, number] | null }> = [
    { name: 'fits one node', size: 8, gpus: 4, want: [1, 4] },
    { name: 'whole nodes', size: 8, gpus: 32, want: [4, 8] },
    { name: 'not a multiple of the node size', size: 8, gpus: 12, want: [2, 6] },
    { name: 'a prime count', size: 8, gpus: 13, want: [13, 1] },
    { name: 'no node', size: 0, gpus: 4, want: null },
  ];
  for (const c of slices) {
    it(`canonicalSlice: ${c.name}`, () => {
      const nodes = c.size ? [node('a', H, c.size)] : [];
      const s = canonicalSlice(nodes, H, c.gpus);
      assert.deepEqual(s && [s.nodes, s.gpusPerNode], c.want);
    });
  }

  it('fitGpus: the largest count in range that fits the free devices, on as few nodes as possible', () => {
    const nodes = [node('a', H, 8, [0, 1, 2, 3]), node('b', H, 8, [0, 1])];
    assert.deepEqual(fitGpus(nodes, freeMap(nodes), H, 2, 16), { gpus: 10, slice: { gpu: H, nodes: 5, gpusPerNode: 2 } });
    assert.deepEqual(fitGpus(nodes, freeMap(nodes), H, 2, 6), { gpus: 6, slice: { gpu: H, nodes: 1, gpusPerNode: 6 } });
    assert.equal(fitGpus(nodes, freeMap(nodes), H, 11, 16), null);
  });
});

describe('scheduler: queue', () => {
  it('orders by priority, then creation time, then name', () => {
    const p = mkPlan(1, 1, 1, 1);
    const q = orderQueue([entry('c', p, { createdAt: 5 }), entry('b', p, { createdAt: 5 }), entry('a', p, { createdAt: 9 }), entry('z', p, { priority: 10, createdAt: 99 })]);
    assert.deepEqual(q.map((e) => e.name), ['z', 'b', 'c', 'a']);
  });

  it('places jobs in order without double-booking', () => {
    const inv = [node('a', H, 8)];
    const out = schedulePass([entry('one', mkPlan(1, 1, 4, 4), { createdAt: 1 }), entry('two', mkPlan(1, 1, 4, 4), { createdAt: 2 }), entry('three', mkPlan(1, 1, 4, 4), { createdAt: 3 })], inv);
    assert.deepEqual(out.map((o) => [o.name, o.ok]), [['one', true], ['two', true], ['three', false]]);
    assert.match((out[2] as { reason: string }).reason, /needs 4 × h100-80gb, 0 free/);
  });

  it('strict: a blocked head fences its pool, so a later small job waits; other pools still run', () => {
    const inv = [node('a', H, 8, [0, 1, 2, 3]), node('l', 'l4-24gb', 4)];
    const out = schedulePass(
      [
        entry('big', mkPlan(1, 1, 8, 8), { createdAt: 1 }),
        entry('small', mkPlan(1, 1, 2, 2), { createdAt: 2 }),
        entry('l4', mkPlan(1, 1, 2, 2), { createdAt: 3, resources: { gpuType: 'l4-24gb', min: 2, max: 2 } }),
      ],
      inv,
    );
    assert.equal(out[0]!.ok, false);
    assert.equal((out[0] as { fencing: boolean }).fencing, true);
    assert.equal(out[1]!.ok, false);
    assert.match((out[1] as { reason: string }).reason, /held for big, ahead in the queue/);
    assert.equal(out[2]!.ok, true);
  });

  it('a job that can never fit does not block its pool', () => {
    const inv = [node('a', H, 8)];
    const out = schedulePass([entry('huge', mkPlan(2, 1, 8, 8), { createdAt: 1 }), entry('small', mkPlan(1, 1, 2, 2), { createdAt: 2 })], inv);
    assert.equal(out[0]!.ok, false);
    assert.match((out[0] as { reason: string }).reason, /needs 16 × h100-80gb, the cluster has 8 on 1 schedulable node/);
    assert.equal((out[0] as { fencing: boolean }).fencing, false);
    assert.equal(out[1]!.ok, true);
  });

  it('a range job that does not fit gets a resize to the largest count that does', () => {
    const inv = [node('a', H, 8, [0, 1, 2, 3, 4, 5])];
    const out = schedulePass([entry('elastic', mkPlan(1, 4, 1, 4), { request: 3, resources: { gpuType: H, min: 2, max: 4 } })], inv);
    assert.deepEqual(out[0], {
      name: 'elastic',
      request: 3,
      position: 0,
      ok: false,
      reason: 'needs 4 × h100-80gb, 2 free',
      resize: { gpus: 2, slice: { gpu: H, nodes: 1, gpusPerNode: 2 } },
      fencing: true,
    });
  });

  it('rejects a job queued twice', () => {
    assert.throws(() => schedulePass([entry('a', mkPlan(1, 1, 1, 1)), entry('a', mkPlan(1, 1, 1, 1))], []), /queue: job a is queued twice/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Properties

const invArb = fc
  .array(
    fc.record({
      size: fc.constantFrom(1, 2, 4, 8),
      busy: fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 6 }),
      type: fc.constantFrom(H, H, 'l4-24gb'),
      zone: fc.constantFrom('a', 'b'),
      schedulable: fc.constantFrom(true, true, true, false),
    }),
    { minLength: 1, maxLength: 8 },
  )
  .map((ns) => ns.map((n, i) => node(`n${i}`, n.type, n.size, n.busy, { zone: n.zone }, n.schedulable)));

const planArb = fc
  .record({ pp: fc.integer({ min: 1, max: 4 }), dp: fc.integer({ min: 1, max: 4 }), tp: fc.constantFrom(1, 2, 4, 8), gpn: fc.constantFrom(1, 2, 4, 8) })
  .filter((r) => r.gpn % r.tp === 0 && (r.dp * r.tp) % Math.min(r.gpn, r.dp * r.tp) === 0)
  .map((r) => mkPlan(r.pp, r.dp, r.tp, r.gpn));

const jobsArb = fc.array(
  fc.record({ plan: planArb, priority: fc.integer({ min: 0, max: 3 }), createdAt: fc.integer({ min: 0, max: 100 }), zone: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }), type: fc.constantFrom(H, 'l4-24gb') }),
  { minLength: 1, maxLength: 6 },
);

describe('scheduler: properties', () => {
  it('no device is double-booked or busy, every rank is placed exactly once, TP groups stay on one node, selectors hold, coordinates match the rank order', () => {
    fc.assert(
      fc.property(invArb, jobsArb, (inv, jobs) => {
        const entries = jobs.map((j, i) =>
          entry(`j${i}`, j.plan, { priority: j.priority, createdAt: j.createdAt, resources: { gpuType: j.type, ...(j.zone ? { nodeSelector: { zone: j.zone } } : {}), min: worldSize(j.plan), max: worldSize(j.plan) } }),
        );
        const out = schedulePass(entries, inv);
        assert.equal(out.length, entries.length);
        const used = new Set<string>();
        const byName = new Map(inv.map((n) => [n.name, n]));
        for (const o of out) {
          const e = entries.find((x) => x.name === o.name)!;
          if (!o.ok) {
            assert.ok(o.reason.length > 0);
            continue;
          }
          const world = worldSize(e.plan);
          assert.deepEqual(o.placement.map((p) => p.rank), Array.from({ length: world }, (_, r) => r));
          const tpNode = new Map<string, string>();
          for (const p of o.placement) {
            const k = `${p.node}/${p.device}`;
            assert.ok(!used.has(k), `double-booked ${k}`);
            used.add(k);
            const n = byName.get(p.node)!;
            assert.equal(n.gpuType, e.resources.gpuType);
            assert.notEqual(n.schedulable, false);
            assert.ok(n.devices.find((d) => d.index === p.device)?.free, `busy device ${k}`);
            for (const [lk, lv] of Object.entries(e.resources.nodeSelector ?? {})) assert.equal(n.labels[lk], lv);
            assert.equal(rankOf(e.plan, p.stage, p.dpRank, p.tpRank), p.rank);
            const g = `${p.stage}/${p.dpRank}`;
            assert.equal(tpNode.get(g) ?? p.node, p.node, `TP group ${g} spans nodes`);
            tpNode.set(g, p.node);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a single job on an idle pool is placed whenever every chunk fits a node by count', () => {
    fc.assert(
      fc.property(invArb, planArb, (inv, plan) => {
        const idle = inv.map((n) => ({ ...n, devices: n.devices.map((d) => ({ ...d, free: true })) }));
        const nodes = eligibleNodes(idle, { gpuType: H });
        const chunk = plan.stages[0]!.gpusPerNode;
        const slots = nodes.reduce((a, n) => a + Math.floor(n.devices.length / chunk), 0);
        const chunks = plan.stages.reduce((a, s) => a + (s.dp * s.tp) / s.gpusPerNode, 0);
        const r = placePlan(plan, nodes, freeMap(nodes), { gpuType: H });
        assert.equal(r.ok, slots >= chunks, r.ok ? 'placed' : r.reason);
      }),
      { numRuns: 300 },
    );
  });
});
