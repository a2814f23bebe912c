/**
 * Gang placement of a plan's ranks onto free devices (PURE; docs/jobs.md "Placement").
 *
 * Rank order (the reference runtime follows it): ranks are numbered stage-major, then data-parallel rank, then
 * tensor-parallel rank:   rank = stageBase(s) + dpRank · tp + tpRank,   stageBase(s) = Σ_{j<s} dp_j · tp_j,
 * which for v1's uniform mesh is ((stage · dp) + dpRank) · tp + tpRank. A TP group is therefore tp consecutive
 * ranks and a stage is a consecutive block of dp · tp ranks.
 *
 * Each stage is cut, in rank order, into chunks of `stage.gpusPerNode` ranks (whole TP groups; a chunk of one TP
 * group when gpusPerNode is not a multiple of tp); every chunk lands on one node, so a TP group never spans nodes
 * and the plan's nodes × gpusPerNode shape is honoured (two chunks may share a larger node). Chunks are placed in
 * rank order, filling one node before the next, so a stage's ranks sit together; within a node a chunk takes an
 * aligned run of consecutive device indices when one is free, else any run, else the lowest free indices.
 */
import type { NodeInventory, ResourceRequest } from '../domain/cluster.js';
import type { ClusterSlice, Placement, Plan } from '../domain/plan.js';

/** The rank of (stage, dpRank, tpRank) in a plan (see the file comment). */
export function rankOf(plan: Pick<Plan, 'stages'>, stage: number, dpRank: number, tpRank: number): number {
  let base = 0;
  for (let j = 0; j < stage; j++) base += plan.stages[j]!.dp * plan.stages[j]!.tp;
  return base + dpRank * plan.stages[stage]!.tp + tpRank;
}

/** Ranks of a plan: Σ dp · tp over its stages. */
export function worldSize(plan: Pick<Plan, 'stages'>): number {
  return plan.stages.reduce((a, s) => a + s.dp * s.tp, 0);
}

function labelsMatch(labels: Record<string, string>, selector: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Nodes a request may use: the GPU type, every nodeSelector label, schedulable. Sorted by name. */
export function eligibleNodes(inventory: readonly NodeInventory[], req: Pick<ResourceRequest, 'gpuType' | 'nodeSelector'>): NodeInventory[] {
  return inventory
    .filter((n) => n.gpuType === req.gpuType && n.schedulable !== false && labelsMatch(n.labels ?? {}, req.nodeSelector))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function describeRequest(req: Pick<ResourceRequest, 'gpuType' | 'nodeSelector'>, gpus: number): string {
  const sel = req.nodeSelector && Object.keys(req.nodeSelector).length ? ` with ${Object.entries(req.nodeSelector).map(([k, v]) => `${k}=${v}`).join(',')}` : '';
  return `${gpus} × ${req.gpuType}${sel}`;
}

interface Chunk {
  stage: number;
  /** First rank; the chunk holds ranks first .. first + size − 1. */
  first: number;
  size: number;
}

function chunksOf(plan: Pick<Plan, 'stages'>): Chunk[] {
  const out: Chunk[] = [];
  let base = 0;
  plan.stages.forEach((s, i) => {
    const n = s.dp * s.tp;
    const size = s.gpusPerNode > 0 && s.gpusPerNode % s.tp === 0 && n % s.gpusPerNode === 0 ? s.gpusPerNode : s.tp;
    for (let k = 0; k < n; k += size) out.push({ stage: i, first: base + k, size });
    base += n;
  });
  return out;
}

/** Free device indices per node (ascending), as a mutable working copy. */
export type FreeMap = Map<string, number[]>;

export function freeMap(nodes: readonly NodeInventory[], blocked?: ReadonlySet<string>): FreeMap {
  const m: FreeMap = new Map();
  for (const n of nodes) {
    m.set(
      n.name,
      n.devices
        .filter((d) => d.free && !blocked?.has(deviceKey(n.name, d.index)))
        .map((d) => d.index)
        .sort((a, b) => a - b),
    );
  }
  return m;
}

export function deviceKey(node: string, index: number): string {
  return `${node}/${index}`;
}

/** Picks `size` devices from a node's sorted free list: aligned run, else any run, else the lowest. */
function pickDevices(free: number[], size: number): number[] {
  const set = new Set(free);
  let anyRun: number | undefined;
  for (const start of free) {
    let ok = true;
    for (let k = 1; k < size; k++) if (!set.has(start + k)) ok = false;
    if (!ok) continue;
    if (start % size === 0) return Array.from({ length: size }, (_, k) => start + k);
    anyRun ??= start;
  }
  if (anyRun !== undefined) return Array.from({ length: size }, (_, k) => anyRun! + k);
  return free.slice(0, size);
}

interface Assigned {
  chunk: Chunk;
  node: string;
  devices: number[];
}

function assign(list: readonly Chunk[], order: readonly string[], free: FreeMap): Assigned[] | null {
  const work: FreeMap = new Map(order.map((n) => [n, [...free.get(n)!]]));
  const out: Assigned[] = [];
  for (const c of list) {
    const node = order.find((n) => work.get(n)!.length >= c.size);
    if (node === undefined) return null;
    const devs = pickDevices(work.get(node)!, c.size);
    work.set(node, work.get(node)!.filter((d) => !devs.includes(d)));
    out.push({ chunk: c, node, devices: devs });
  }
  return out;
}

export type PlaceResult = { ok: true; placement: Placement[] } | { ok: false; reason: string };

/**
 * Places every rank of `plan` on the free devices of `nodes` (already filtered to the eligible ones), all or
 * nothing. `free` is consumed on success (pass a copy to probe). Deterministic.
 */
export function placePlan(plan: Pick<Plan, 'stages'>, nodes: readonly NodeInventory[], free: FreeMap, req: Pick<ResourceRequest, 'gpuType' | 'nodeSelector'>): PlaceResult {
  const chunks = chunksOf(plan);
  const need = chunks.reduce((a, c) => a + c.size, 0);
  const names = nodes.map((n) => n.name).filter((n) => free.has(n));
  const avail = (n: string) => free.get(n)!.length;
  const totalFree = names.reduce((a, n) => a + avail(n), 0);
  if (names.length === 0) return { ok: false, reason: `needs ${describeRequest(req, need)}, no schedulable node matches` };
  if (totalFree < need) return { ok: false, reason: `needs ${describeRequest(req, need)}, ${totalFree} free` };

  const uniform = chunks.every((c) => c.size === chunks[0]!.size);
  const cap = (n: string, size: number) => Math.floor(avail(n) / size);
  const single = names.filter((n) => (uniform ? cap(n, chunks[0]!.size) >= chunks.length : avail(n) >= need));
  const orders: string[][] = [];
  // best fit: the node with the fewest free devices that takes the whole job
  if (single.length) orders.push([single.sort((a, b) => avail(a) - avail(b) || (a < b ? -1 : 1))[0]!]);
  orders.push([...names].sort((a, b) => avail(b) - avail(a) || (a < b ? -1 : 1)));
  let assigned: Assigned[] | null = null;
  for (const order of orders) {
    // first-fit of chunks in rank order over the node order (fills one node before the next); then largest first
    assigned = assign(chunks, order, free) ?? assign([...chunks].sort((a, b) => b.size - a.size || a.first - b.first), order, free);
    if (assigned) break;
  }
  if (!assigned) {
    const size = Math.max(...chunks.map((c) => c.size));
    const fits = names.reduce((a, n) => a + cap(n, size), 0);
    return {
      ok: false,
      reason: `needs ${describeRequest(req, need)} in groups of ${size} on one node; ${totalFree} free, but only ${fits} group${fits === 1 ? '' : 's'} of ${size} fit${fits === 1 ? 's' : ''}`,
    };
  }
  const placement: Placement[] = [];
  for (const a of assigned) {
    const s = plan.stages[a.chunk.stage]!;
    let base = 0;
    for (let j = 0; j < a.chunk.stage; j++) base += plan.stages[j]!.dp * plan.stages[j]!.tp;
    a.devices.forEach((device, k) => {
      const rank = a.chunk.first + k;
      const local = rank - base;
      placement.push({ rank, node: a.node, device, stage: a.chunk.stage, dpRank: Math.floor(local / s.tp), tpRank: local % s.tp });
    });
  }
  placement.sort((x, y) => x.rank - y.rank);
  for (const a of assigned) free.set(a.node, free.get(a.node)!.filter((d) => !a.devices.includes(d)));
  return { ok: true, placement };
}

/** The largest device count of the eligible nodes (the node size a plan's gpusPerNode may use). */
export function nodeSize(nodes: readonly NodeInventory[]): number {
  return nodes.reduce((a, n) => Math.max(a, n.devices.length), 0);
}

/**
 * The cluster slice to plan `gpus` devices on, from the node shape alone (not the current load): one node when
 * they fit on one, else as few nodes as possible with the same count on each (nodes × gpusPerNode = gpus).
 * Null when no eligible node exists.
 */
export function canonicalSlice(nodes: readonly NodeInventory[], gpuType: string, gpus: number): ClusterSlice | null {
  const size = nodeSize(nodes);
  if (size === 0 || gpus < 1) return null;
  if (gpus <= size) return { gpu: gpuType, nodes: 1, gpusPerNode: gpus };
  for (let d = size; d >= 1; d--) if (gpus % d === 0) return { gpu: gpuType, nodes: gpus / d, gpusPerNode: d };
  return null;
}

/**
 * The largest device count in [min, max] that fits the free devices now, with a slice that fits (as few nodes as
 * possible); null when even `min` does not fit. A node with free ≥ k · gpusPerNode counts as k slice nodes.
 */
export function fitGpus(nodes: readonly NodeInventory[], free: FreeMap, gpuType: string, min: number, max: number): { gpus: number; slice: ClusterSlice } | null {
  const size = nodeSize(nodes);
  const frees = nodes.map((n) => free.get(n.name)?.length ?? 0);
  const total = frees.reduce((a, b) => a + b, 0);
  for (let g = Math.min(max, total); g >= min; g--) {
    for (let d = Math.min(size, g); d >= 1; d--) {
      if (g % d !== 0) continue;
      const slots = frees.reduce((a, f) => a + Math.floor(f / d), 0);
      if (slots >= g / d) return { gpus: g, slice: { gpu: gpuType, nodes: g / d, gpusPerNode: d } };
    }
  }
  return null;
}
