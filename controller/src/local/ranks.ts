/**
 * Runs the ranks of one job as local processes: a free loopback port for the gloo/nccl rendezvous,
 * RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT in each rank's environment (an allow-list of the rest),
 * argv arrays (no shell), stdout parsed line by line, a tail of each rank's stderr kept for error messages, and
 * every rank killed as soon as one fails (or when this process is interrupted), so no rank outlives the run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MistError } from '../../../protocol/src/errors.js';

export interface RankLine {
  rank: number;
  /** Parsed JSON when the line is a JSON object, else undefined. */
  json?: Record<string, unknown>;
  text: string;
}

export interface RunRanksOptions {
  python: string;
  script: string;
  args: readonly string[];
  world: number;
  /** Extra environment entries for every rank (on top of the allow-list). */
  env?: Record<string, string>;
  onLine?: (line: RankLine) => void;
  /** Lines of stderr kept per rank (default 40). */
  tailLines?: number;
  /** Grace period between SIGTERM and SIGKILL when stopping ranks (default 3000 ms). */
  killGraceMs?: number;
}

export class RankFailedError extends Error {
  constructor(
    readonly rank: number,
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly stderrTail: string[],
  ) {
    const how = signal ? `was killed by ${signal}` : `exited with status ${exitCode}`;
    const tail = stderrTail.length ? `; last lines of its stderr:\n  ${stderrTail.join('\n  ')}` : ' (no stderr)';
    super(`rank ${rank} ${how}${tail}`);
    this.name = 'RankFailedError';
  }
}

const ENV_ALLOW = ['PATH', 'HOME', 'USER', 'LANG', 'LC_ALL', 'TMPDIR', 'PYTHONPATH', 'CUDA_VISIBLE_DEVICES', 'OMP_NUM_THREADS'];
const ENV_PREFIX_ALLOW = ['MIST_', 'NCCL_', 'GLOO_', 'TORCH_'];

export function rankEnv(base: NodeJS.ProcessEnv, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) {
    if (v === undefined) continue;
    if (ENV_ALLOW.includes(k) || ENV_PREFIX_ALLOW.some((p) => k.startsWith(p))) env[k] = v;
  }
  env.OMP_NUM_THREADS ??= '1';
  env.PYTHONUNBUFFERED = '1';
  return { ...env, ...extra };
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** The Python that runs ranks: $MIST_PYTHON, else /usr/bin/python3 (Debian's python3-torch), else python3. */
export function findPython(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MIST_PYTHON) return env.MIST_PYTHON;
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/**
 * Fails fast, with the fix, when `python` cannot import PyTorch: otherwise every rank of every job would end with a
 * ModuleNotFoundError that reads like a bug in the user's job (the default `python3` on PATH may lack torch).
 */
export function requireTorch(python: string): void {
  const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8', timeout: 120_000 });
  if (r.status === 0) return;
  const why = r.error ? r.error.message : (r.stderr ?? '').trim().split('\n').pop() || `exit code ${r.status}`;
  throw new MistError('SETUP_MISSING', `the reference runtime needs PyTorch, and ${python} cannot import torch (${why}): install python3-torch (apt-get install python3-torch) or set MIST_PYTHON to a python with torch`);
}

/** agent/runtime/torch/train.py, from the compiled (dist/) or the source layout, or $MIST_RUNTIME_DIR. */
export function referenceRuntimeScript(env: NodeJS.ProcessEnv = process.env): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    env.MIST_RUNTIME_DIR ? join(env.MIST_RUNTIME_DIR, 'train.py') : '',
    resolve(here, '../../../../agent/runtime/torch/train.py'),
    resolve(here, '../../../agent/runtime/torch/train.py'),
  ].filter(Boolean);
  for (const c of candidates) if (existsSync(c)) return c;
  return candidates[candidates.length - 1]!;
}

/** Starts `world` ranks and resolves when all exit 0; rejects with RankFailedError on the first failure. */
export async function runRanks(opts: RunRanksOptions): Promise<void> {
  const port = await freePort();
  const tailMax = opts.tailLines ?? 40;
  const grace = opts.killGraceMs ?? 3000;
  const children: ChildProcess[] = [];
  const tails: string[][] = [];
  const exited = new Set<number>();
  let failure: RankFailedError | null = null;
  let settle: (() => void) | null = null;
  let killTimer: NodeJS.Timeout | null = null;

  const killAll = (): void => {
    for (let r = 0; r < children.length; r++) {
      if (!exited.has(r)) children[r]!.kill('SIGTERM');
    }
    killTimer ??= setTimeout(() => {
      for (let r = 0; r < children.length; r++) if (!exited.has(r)) children[r]!.kill('SIGKILL');
    }, grace);
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    killAll();
    for (const c of children) c.kill('SIGKILL');
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const done = new Promise<void>((res) => (settle = res));
  try {
    for (let rank = 0; rank < opts.world; rank++) {
      const env = rankEnv(process.env, {
        ...(opts.env ?? {}),
        RANK: String(rank),
        WORLD_SIZE: String(opts.world),
        LOCAL_RANK: String(rank),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
      });
      const child = spawn(opts.python, [opts.script, ...opts.args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      tails.push([]);
      const rl = createInterface({ input: child.stdout! });
      rl.on('line', (text) => {
        let json: Record<string, unknown> | undefined;
        if (text.startsWith('{')) {
          try {
            const v = JSON.parse(text) as unknown;
            if (v && typeof v === 'object' && !Array.isArray(v)) json = v as Record<string, unknown>;
          } catch {
            /* not JSON: passed on as text */
          }
        }
        opts.onLine?.({ rank, json, text });
      });
      const el = createInterface({ input: child.stderr! });
      el.on('line', (text) => {
        const t = tails[rank]!;
        t.push(text);
        if (t.length > tailMax) t.shift();
      });
      let stderrClosed = false;
      let exitInfo: [number | null, NodeJS.Signals | null] | null = null;
      const finish = (): void => {
        if (!exitInfo || !stderrClosed) return;
        const [code, signal] = exitInfo;
        exited.add(rank);
        if ((code !== 0 || signal) && !failure) {
          failure = new RankFailedError(rank, code, signal, tails[rank]!.slice());
          killAll();
        }
        if (exited.size === opts.world) settle?.();
      };
      el.on('close', () => {
        stderrClosed = true;
        finish();
      });
      child.on('error', (e) => {
        if (!failure) failure = new RankFailedError(rank, null, null, [`could not start ${opts.python}: ${e.message}`]);
        exitInfo = [null, null];
        stderrClosed = true;
        finish();
      });
      child.on('exit', (code, signal) => {
        exitInfo = [code, signal];
        finish();
      });
    }
    await done;
  } finally {
    if (killTimer) clearTimeout(killTimer);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  if (failure) throw failure;
}
