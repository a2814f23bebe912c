/**
 * The scheduler's view of the cluster (domain/cluster.ts NodeInventory) built from the agent registry: every
 * registered node with its devices, GPU type from the catalog, labels; devices held by the ranks of running jobs
 * are not free; lost nodes are not schedulable.
 */
import type { AgentInfo } from '../bus/registry.js';
import type { NodeInventory } from '../domain/cluster.js';
import type { Device } from '../../../protocol/src/types.js';

/** Label an agent may set to name its GPU type explicitly (overrides the guess from the device model). */
export const GPU_TYPE_LABEL = 'mist.io/gpu-type';
/** Label an agent may set to the address ranks use to reach it (MASTER_ADDR when it holds rank 0). */
export const ADDRESS_LABEL = 'mist.io/address';

/** The catalog's GPU type of a device (tuner/hardware.ts GPU_TYPES), guessed from what the driver reports. */
export function gpuTypeOf(d: Device): string {
  if (d.kind === 'cpu') return 'cpu';
  const m = d.model.toLowerCase();
  const gib = d.memoryBytes / 2 ** 30;
  if (/h200/.test(m)) return 'h200-141gb';
  if (/h100/.test(m)) return 'h100-80gb';
  if (/a100/.test(m)) return gib > 50 ? 'a100-80gb' : 'a100-40gb';
  if (/\bl4\b/.test(m)) return 'l4-24gb';
  return m;
}

/** Nodes as the scheduler sees them; `held` holds "node/device" keys taken by live ranks of jobs. */
export function inventoryFrom(agents: readonly AgentInfo[], held: ReadonlySet<string>): NodeInventory[] {
  const out: NodeInventory[] = [];
  for (const a of agents) {
    const hello = a.hello;
    if (!hello) continue;
    const devices = hello.devices.filter((d) => d.kind !== 'other');
    if (devices.length === 0) continue;
    const gpuType = hello.labels[GPU_TYPE_LABEL] ?? gpuTypeOf(devices[0]!);
    out.push({
      name: a.node,
      gpuType,
      labels: { ...hello.labels },
      devices: devices.map((d) => ({ index: d.index, free: !held.has(`${a.node}/${d.index}`) })),
      schedulable: a.state === 'alive',
    });
  }
  return out.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
}
