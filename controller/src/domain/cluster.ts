/**
 * The cluster as the scheduler sees it: nodes (from the agents' registered inventory) with their devices. Plain
 * data; the bus/ registry builds it, the scheduler reads it.
 */

export interface DeviceInventory {
  /** Device index on the node (CUDA ordinal, or CPU device number). */
  index: number;
  /** False while a rank of some job holds the device (or the agent reports it unusable). */
  free: boolean;
}

export interface NodeInventory {
  name: string;
  /** GPU type of every device on the node (the catalog's names: h100-80gb, l4-24gb, cpu, …). */
  gpuType: string;
  labels: Record<string, string>;
  devices: DeviceInventory[];
  /** False for a cordoned, draining or stale node: nothing new is placed there. Default true. */
  schedulable?: boolean;
}

/** What a job asks of the cluster: a device type, node labels, and a device count (range). */
export interface ResourceRequest {
  gpuType: string;
  nodeSelector?: Record<string, string>;
  min: number;
  max: number;
}
