/**
 * Node inventory: NVIDIA GPUs from `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits`
 * when it is installed and answers, otherwise `cpuDevices` CPU devices (each with an equal share of host memory).
 */
import { execFile } from 'node:child_process';
import { totalmem } from 'node:os';
import type { Device } from '../../protocol/src/types.js';

const MIB = 1024 * 1024;

/** Parses nvidia-smi's CSV (index, name, memory.total in MiB); lines that do not parse are skipped. */
export function parseNvidiaSmi(csv: string): Device[] {
  const out: Device[] = [];
  for (const line of csv.split('\n')) {
    const parts = line.split(',').map((s) => s.trim());
    if (parts.length < 3) continue;
    const index = Number(parts[0]);
    const mib = Number(parts[parts.length - 1]);
    const model = parts.slice(1, -1).join(',');
    if (!Number.isInteger(index) || index < 0 || !Number.isFinite(mib) || mib <= 0 || model === '') continue;
    out.push({ index, kind: 'gpu', model, memoryBytes: Math.round(mib * MIB) });
  }
  return out;
}

export function cpuDevices(n: number): Device[] {
  const share = Math.floor(totalmem() / Math.max(1, n));
  return Array.from({ length: n }, (_, index) => ({ index, kind: 'cpu' as const, model: 'cpu', memoryBytes: share }));
}

/** GPUs when nvidia-smi reports any, else `cpuCount` CPU devices. */
export function detectDevices(cpuCount: number, nvidiaSmi = process.env.MIST_NVIDIA_SMI ?? 'nvidia-smi'): Promise<Device[]> {
  return new Promise((resolve) => {
    execFile(nvidiaSmi, ['--query-gpu=index,name,memory.total', '--format=csv,noheader,nounits'], { timeout: 15_000 }, (err, stdout) => {
      const gpus = err ? [] : parseNvidiaSmi(stdout);
      resolve(gpus.length > 0 ? gpus : cpuDevices(cpuCount));
    });
  });
}
