/** Shared harness of the control-plane integration tests: a controller in-process, agents as real child processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/nats-core';
import { AgentRegistry } from '../../../controller/src/bus/registry.js';
import { CommandClient } from '../../../controller/src/bus/commands.js';
import { connectBus, type BusAuth } from '../../../controller/src/bus/connect.js';
import { ensureControlPlane } from '../../../controller/src/bus/infra.js';
import { ReportConsumer } from '../../../controller/src/bus/reports.js';
import { FileEpochStore } from '../../../controller/src/bus/epoch.js';
import type { Report } from '../../../protocol/src/types.js';
import type { Placement } from '../../../controller/src/domain/plan.js';
import { mistBin, repoRoot } from '../../support/paths.js';

export const RANK_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'rank.js');

/** Polls `cond` every 25 ms until it returns a truthy value or `timeoutMs` passes (then throws naming `what`). */
export async function waitFor<T>(what: string, cond: () => T | Promise<T>, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `mist-${prefix}-`));
}

/** An epoch file in `dir` holding `epoch`, for startController (what a previous controller left behind). */
export function epochFileAt(dir: string, epoch: number): string {
  const file = join(dir, 'epoch.json');
  writeFileSync(file, JSON.stringify({ epoch }));
  return file;
}

export function writeRuntimes(dir: string): string {
  const file = join(dir, 'runtimes.json');
  writeFileSync(file, JSON.stringify({ runtimes: { test: { argv: ['{node}', RANK_SCRIPT, '--plan', '{planFile}', '--rank', '{rank}'] } } }));
  return file;
}

export interface AgentProc {
  node: string;
  stateDir: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnAgent(o: { url: string; node: string; stateDir: string; runtimes: string; extra?: string[]; heartbeatSeconds?: number }): AgentProc {
  const args = [mistBin, 'agent', '--nats', o.url, '--node', o.node, '--state-dir', o.stateDir, '--runtimes', o.runtimes, '--cpu-devices', '2', '--heartbeat-seconds', String(o.heartbeatSeconds ?? 0.5), ...(o.extra ?? [])];
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    node: o.node,
    stateDir: o.stateDir,
    child,
    output: () => out,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

export interface Controller {
  nc: NatsConnection;
  registry: AgentRegistry;
  consumer: ReportConsumer;
  client: CommandClient;
  epoch: number;
  reports: Report[];
  close(): Promise<void>;
}

export async function startController(auth: BusAuth, o: { lostAfterMs?: number; epochFile?: string; ackWaitMs?: number } = {}): Promise<Controller> {
  const nc = await connectBus(auth);
  const kv = await ensureControlPlane(nc, { ackWaitMs: o.ackWaitMs ?? 5000, agentsTtlMs: 60_000 });
  const registry = new AgentRegistry(kv, { lostAfterMs: o.lostAfterMs ?? 3000 });
  await registry.start();
  const reports: Report[] = [];
  const consumer = new ReportConsumer(nc, (r) => {
    reports.push(r);
  });
  await consumer.start();
  const epochFile = o.epochFile ?? join(tempDir('epoch'), 'epoch.json');
  const epoch = await new FileEpochStore(epochFile).acquire();
  const client = new CommandClient(nc, epoch, { timeoutMs: 15_000 });
  return {
    nc,
    registry,
    consumer,
    client,
    epoch,
    reports,
    async close() {
      registry.stop();
      await consumer.stop();
      await nc.close();
    },
  };
}

/** A minimal plan: `ranksPerNode` ranks on each node, devices 0.., one stage. */
export function testPlan(nodes: string[], ranksPerNode: number): { id: string; placement: Placement[] } {
  const placement: Placement[] = [];
  let rank = 0;
  for (const node of nodes) for (let d = 0; d < ranksPerNode; d++) placement.push({ rank: rank++, node, device: d, stage: 0, dpRank: rank - 1, tpRank: 0 });
  return { id: 'test-plan', placement };
}

/** A suite's teardown: its agents (SIGTERM), controller and nats-server stop, leftover ranks are killed, dir removed. */
export async function teardown(o: { agents: Array<AgentProc | undefined>; ctl?: Controller; server?: { stop(): Promise<void> }; dir?: string }): Promise<void> {
  await Promise.all(o.agents.map((a) => a?.stop('SIGTERM')));
  await o.ctl?.close();
  await o.server?.stop();
  if (o.dir) {
    killLeftoverRanks(o.dir);
    rmrf(o.dir);
  }
}

export function rmrf(...dirs: string[]): void {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/** Lines of a rank's stdout log in an agent state dir. */
export function rankStdout(stateDir: string, jobToken: string, attempt: number, rank: number): string {
  try {
    return readFileSync(join(stateDir, 'jobs', jobToken, String(attempt), `rank-${rank}`, 'stdout.log'), 'utf8');
  } catch {
    return '';
  }
}

/** Kills every rank process group recorded under `root` (cleanup after a failed test; a no-op when all ended). */
export function killLeftoverRanks(root: string): void {
  const { readdirSync, statSync } = fs;
  const walk = (d: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e);
      if (e === 'pid.json') {
        try {
          const { pgid, wrapperPid } = JSON.parse(readFileSync(p, 'utf8')) as { pgid: number; wrapperPid: number };
          for (const g of [pgid, wrapperPid]) {
            try {
              if (g > 1) process.kill(-g, 'SIGKILL');
            } catch {
              /* already gone */
            }
          }
        } catch {
          /* unreadable: nothing to kill */
        }
      } else if (statSync(p).isDirectory()) walk(p);
    }
  };
  walk(root);
}
