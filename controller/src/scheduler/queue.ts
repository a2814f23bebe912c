/**
 * The job queue and one scheduling pass (PURE; docs/jobs.md "Queue"). Order: higher priority first, then older
 * (creation time), then name. Strict: a job that cannot be placed *fences* every free device it could use (its
 * GPU type and nodeSelector), so a later job is placed only on devices the blocked one could never take. A later
 * job therefore never delays an earlier one, and smaller jobs still run on other pools. A job that could not fit
 * even on an idle cluster does not fence (it would block its pool forever); it waits with that reason.
 * No preemption, no fair sharing, no aging: a steady stream of higher-priority jobs can starve lower ones.
 */
import { badInput } from '../../../protocol/src/errors.js';
import type { NodeInventory, ResourceRequest } from '../domain/cluster.js';
import type { ClusterSlice, Placement, Plan } from '../domain/plan.js';
import { describeRequest, deviceKey, eligibleNodes, fitGpus, freeMap, placePlan, worldSize } from './placement.js';

export interface QueueEntry {
  /** Unique job name (namespace/name for Kubernetes jobs). */
  name: string;
  priority: number;
  /** Creation time (ms). */
  createdAt: number;
  /** Echoed in the outcome: the lifecycle's schedule request this entry answers. */
  request?: number;
  /** The plan to place (its stages give the rank layout). */
  plan: Pick<Plan, 'id' | 'stages'>;
  resources: ResourceRequest;
}

export type ScheduleOutcome = {
  name: string;
  request?: number;
  /** 0-based position in the queue order of this pass. */
  position: number;
} & (
  | { ok: true; placement: Placement[] }
  | {
      ok: false;
      reason: string;
      /** A different device count in the spec's range that fits now (the controller re-plans for it). */
      resize?: { gpus: number; slice: ClusterSlice };
      /** Whether this job fenced its eligible free devices from later jobs. */
      fencing: boolean;
    }
);

export function compareEntries(a: QueueEntry, b: QueueEntry): number {
  return b.priority - a.priority || a.createdAt - b.createdAt || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

export function orderQueue<T extends QueueEntry>(entries: readonly T[]): T[] {
  return [...entries].sort(compareEntries);
}

/**
 * One pass: places queued jobs in order onto the free devices of `inventory`, gang by gang. Returns one outcome per
 * entry, in queue order. No device is handed out twice, nor to a job while it is held by the agents (free: false).
 */
export function schedulePass(entries: readonly QueueEntry[], inventory: readonly NodeInventory[]): ScheduleOutcome[] {
  const names = new Set<string>();
  for (const e of entries) {
    if (names.has(e.name)) throw badInput('queue', `job ${e.name} is queued twice`, 'one entry per job');
    names.add(e.name);
  }
  const taken = new Set<string>();
  const fenced = new Map<string, string>(); // device key -> job that fenced it
  const out: ScheduleOutcome[] = [];
  orderQueue(entries).forEach((e, position) => {
    const base = { name: e.name, ...(e.request !== undefined ? { request: e.request } : {}), position };
    const nodes = eligibleNodes(inventory, e.resources);
    const blocked = new Set<string>([...taken, ...fenced.keys()]);
    const free = freeMap(nodes, blocked);
    const r = placePlan(e.plan, nodes, free, e.resources);
    if (r.ok) {
      for (const p of r.placement) taken.add(deviceKey(p.node, p.device));
      out.push({ ...base, ok: true, placement: r.placement });
      return;
    }
    const need = worldSize(e.plan);
    // could it fit at all, on the eligible nodes with every device free?
    const idle = new Map(nodes.map((n) => [n.name, n.devices.map((d) => d.index).sort((a, b) => a - b)]));
    const everFits = placePlan(e.plan, nodes, idle, e.resources).ok;
    let reason = r.reason;
    const heldBy = new Set<string>();
    for (const n of nodes) for (const d of n.devices) if (d.free && !taken.has(deviceKey(n.name, d.index)) && fenced.has(deviceKey(n.name, d.index))) heldBy.add(fenced.get(deviceKey(n.name, d.index))!);
    if (heldBy.size) reason += ` (other free devices are held for ${[...heldBy].sort().join(', ')}, ahead in the queue)`;
    if (!everFits) {
      const total = nodes.reduce((a, n) => a + n.devices.length, 0);
      reason = `needs ${describeRequest(e.resources, need)}, the cluster has ${total}${nodes.length ? ` on ${nodes.length} schedulable node${nodes.length === 1 ? '' : 's'}` : ''}${r.reason.includes('groups') ? ` (${r.reason})` : ''}`;
    }
    let resize: { gpus: number; slice: ClusterSlice } | undefined;
    if (e.resources.min < e.resources.max) {
      const fit = fitGpus(nodes, freeMap(nodes, blocked), e.resources.gpuType, e.resources.min, e.resources.max);
      if (fit && fit.gpus !== need) resize = fit;
    }
    const fencing = everFits;
    if (fencing) {
      for (const n of nodes) for (const d of n.devices) if (d.free && !blocked.has(deviceKey(n.name, d.index))) fenced.set(deviceKey(n.name, d.index), e.name);
    }
    out.push({ ...base, ok: false, reason, ...(resize ? { resize } : {}), fencing });
  });
  return out;
}
