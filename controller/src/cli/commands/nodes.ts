/** `mist nodes`: the agents the controller knows, their devices and heartbeat age. */
import type { Command } from 'commander';
import type { NodeView } from '../../api/service.js';
import { clientFrom, formatBytes, renderTable, withClientOptions, type ClientFlags } from '../client.js';
import { printJson } from '../output.js';

/** "8× h100-80gb (80 GiB)", or a list when a node mixes models. */
function devicesText(n: NodeView): string {
  if (n.devices.length === 0) return '-';
  const groups = new Map<string, number>();
  for (const d of n.devices) {
    const key = `${d.model}${d.memoryBytes > 0 ? ` (${formatBytes(d.memoryBytes)})` : ''}`;
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  return [...groups].map(([k, c]) => `${c}× ${k}`).join(', ');
}

export function formatNodes(nodes: NodeView[]): string {
  const rows = [['NAME', 'STATUS', 'DEVICES', 'HEARTBEAT', 'LABELS']];
  for (const n of nodes) {
    const hb = n.heartbeatAgeSeconds === null ? 'never' : `${Math.round(n.heartbeatAgeSeconds)}s ago`;
    const labels = Object.entries(n.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '-';
    rows.push([n.name, n.lost ? 'Lost' : 'Ready', devicesText(n), hb, labels]);
  }
  return renderTable(rows);
}

export function registerNodes(program: Command, summary: string): void {
  withClientOptions(program.command('nodes').description(summary)).action(async (opts: ClientFlags) => {
    const nodes = await clientFrom(opts).nodes();
    if (opts.json) {
      printJson({ nodes });
      return;
    }
    if (nodes.length === 0) {
      process.stderr.write('No nodes: no agent has registered (start one with `mist agent`).\n');
      return;
    }
    process.stdout.write(formatNodes(nodes) + '\n');
  });
}
