/**
 * Harness of the controller integration tests: a real nats-server, a real SQLite store, the controller (in this
 * process, or as a `mist controller` child process that a test can SIGKILL), and `mist agent` child processes
 * with the reference PyTorch runtime (one thread per rank).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, type ControllerOptions } from '../../../controller/src/operator/controller.js';
import { TokenStore } from '../../../controller/src/api/auth.js';
import { createMetrics } from '../../../controller/src/api/metrics.js';
import { referenceRuntimeScript } from '../../../controller/src/local/ranks.js';
import { freePort } from '../../support/nats-server.js';
import { killLeftoverRanks, pidAlive, spawnAgent, waitFor, type AgentProc } from '../control-plane/harness.js';
import { mistBin, repoRoot } from '../../support/paths.js';

export { waitFor, pidAlive };

export const ADMIN_TOKEN = 'mist_test_admin_token_0123456789abcdef';
export const READ_TOKEN = 'mist_test_read_token_0123456789abcdefgh';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `mist-${prefix}-`));
}

export function writeTokens(dir: string): string {
  const f = join(dir, 'tokens');
  writeFileSync(f, `${ADMIN_TOKEN} admin tester\n${READ_TOKEN} read viewer\n`, { mode: 0o600 });
  return f;
}

export function writeReferenceRuntimes(dir: string): string {
  const f = join(dir, 'runtimes.json');
  writeFileSync(f, JSON.stringify({ runtimes: { reference: { argv: ['{python}', '-u', referenceRuntimeScript(), '--plan', '{planFile}'] } } }));
  return f;
}

export async function startInProcess(o: { nats: string; dir: string; lifecycle?: ControllerOptions['lifecycle'] }): Promise<Controller> {
  const c = new Controller({
    nats: o.nats,
    stateDir: join(o.dir, 'controller'),
    db: join(o.dir, 'controller', 'mist.db'),
    lostAfterMs: 5000,
    stopGraceSeconds: 2,
    ...(o.lifecycle ? { lifecycle: o.lifecycle } : {}),
    http: { addr: '127.0.0.1:0', tokens: TokenStore.fromFile(writeTokens(o.dir)), metrics: createMetrics({ defaultMetrics: false }) },
    log: { info: (m) => process.env.MIST_TEST_VERBOSE && process.stderr.write(`[ctl] ${m}\n`), warn: (m) => process.env.MIST_TEST_VERBOSE && process.stderr.write(`[ctl] ${m}\n`) },
  });
  await c.start();
  return c;
}

export interface ControllerProc {
  url: string;
  child: ChildProcess;
  output(): string;
  exited: Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** `mist controller` as a child process on a free port (its URL once it serves). */
export async function spawnController(o: { nats: string; dir: string }): Promise<ControllerProc> {
  const port = await freePort();
  const stateDir = join(o.dir, 'controller');
  mkdirSync(stateDir, { recursive: true });
  const tokens = join(o.dir, 'tokens');
  if (!existsSync(tokens)) writeTokens(o.dir);
  const child = spawn(process.execPath, [mistBin, 'controller', '--nats', o.nats, '--db', join(stateDir, 'mist.db'), '--http-addr', `127.0.0.1:${port}`, '--state-dir', stateDir, '--tokens', tokens], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  await waitFor('mist controller to serve', () => /mist controller: serving/.test(out) || child.exitCode !== null, 30_000);
  if (child.exitCode !== null) throw new Error(`mist controller exited: ${out}`);
  return {
    url,
    child,
    output: () => out,
    exited,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

export function startAgents(o: { nats: string; dir: string; count: number }): AgentProc[] {
  const runtimes = writeReferenceRuntimes(o.dir);
  const out: AgentProc[] = [];
  for (let i = 1; i <= o.count; i++) {
    out.push(spawnAgent({ url: o.nats, node: `n${i}`, stateDir: join(o.dir, `agent-n${i}`), runtimes, extra: ['--stop-ranks-on-exit'], heartbeatSeconds: 0.5 }));
  }
  return out;
}

export async function stopAgents(dir: string, agents: AgentProc[]): Promise<void> {
  await Promise.all(agents.map((a) => a.stop()));
  for (const a of agents) killLeftoverRanks(a.stateDir);
  void dir;
}

/** The pid of a running rank (from the agent's pid.json), or undefined. */
export function rankPid(agentStateDir: string, job: string, attempt: number, rank: number): number | undefined {
  try {
    const j = JSON.parse(readFileSync(join(agentStateDir, 'jobs', job, String(attempt), `rank-${rank}`, 'pid.json'), 'utf8')) as { pid: number };
    return j.pid;
  } catch {
    return undefined;
  }
}

/** A tiny CPU job (YAML): tiny-llama, 2 devices, `steps` steps, a checkpoint every `every` steps. */
export function tinyJob(name: string, o: { steps?: number; every?: number; model?: string; gpus?: number; globalBatch?: number; maxRestarts?: number } = {}): string {
  return `apiVersion: mist.io/v1alpha1
kind: MistJob
metadata:
  name: ${name}
spec:
  model:
    preset: ${o.model ?? 'tiny-llama'}
  training:
    globalBatch: ${o.globalBatch ?? 16}
    steps: ${o.steps ?? 30}
${o.every ? `    checkpoint:\n      dir: ${join(tmpdir(), `mist-ckpt-${name}-${process.pid}-${Date.now()}`)}\n      intervalSteps: ${o.every}\n` : ''}  resources:
    gpus: ${o.gpus ?? 2}
    gpuType: cpu
  tuner:
    timeBudgetSeconds: 10
  runtime: reference
  restartPolicy:
    maxRestarts: ${o.maxRestarts ?? 3}
    backoffSeconds: 1
`;
}

/** A REST call with a token; returns status and parsed body. */
export async function api(url: string, path: string, o: { method?: string; token?: string | null; body?: string; contentType?: string } = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  const token = o.token === undefined ? ADMIN_TOKEN : o.token;
  if (token) headers.authorization = `Bearer ${token}`;
  if (o.body !== undefined) headers['content-type'] = o.contentType ?? 'application/yaml';
  const res = await fetch(`${url}${path}`, { method: o.method ?? 'GET', headers, ...(o.body !== undefined ? { body: o.body } : {}) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body };
}
