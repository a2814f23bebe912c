/**
 * One `mist up --demo` per test process, shared by the e2e suite (tests/e2e/demo.test.ts) and the browser suite
 * (tests/browser): a real nats-server, the controller with SQLite, two CPU agents, real PyTorch ranks and the
 * dashboard. The run keeps serving after the demo jobs end (so the browser can look at them) and writes its JSON
 * summary to `summaryFile` (`mist up --summary-file`). `stop()` ends it with SIGTERM (mist up stops its agents,
 * their ranks and nats-server); a root `after` hook stops it when the suites are done, whoever started it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mistBin, repoRoot } from './paths.js';

export interface DemoRow {
  name: string;
  kind: string;
  phase: string;
  planId: string;
  predictedStepSeconds: number;
  measuredStepSeconds: number;
  predictionErrorBefore: number;
  predictionErrorAfter: number;
}

export interface DemoRun {
  /** `http://127.0.0.1:PORT/?token=…`, as printed. */
  dashboard: string;
  /** `http://127.0.0.1:PORT`. */
  base: string;
  token: string;
  stateDir: string;
  summaryFile: string;
  steps: number;
  startedAt: number;
  /** What mist up wrote so far. */
  output(): { stdout: string; stderr: string };
  /** Waits (bounded) for the summary file: both demo jobs ended and were scored. */
  summary(timeoutMs?: number): Promise<{ jobs: DemoRow[] }>;
  /** SIGTERM, then waits for the exit (SIGKILL after 60 s); resolves with the exit code. */
  stop(): Promise<number | null>;
  readonly stopped: boolean;
}

export const DEMO_STEPS = 24;
let current: Promise<DemoRun> | undefined;
let currentRun: DemoRun | undefined;
const dirs: string[] = [];

/** Processes whose command line mentions `needle` (the state dir: agents, ranks and nats-server all name it). */
export function processesMentioning(needle: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle) && Number(pid) !== process.pid) out.push(`${pid}: ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

function start(): Promise<DemoRun> {
  const dir = mkdtempSync(join(tmpdir(), 'mist-demo-run-'));
  dirs.push(dir);
  const stateDir = join(dir, 'state');
  const summaryFile = join(dir, 'summary.json');
  const env: NodeJS.ProcessEnv = { ...process.env, MIST_STATE_DIR: stateDir, MIST_HTTP_ADDR: '127.0.0.1:0' };
  delete env.MIST_NATS_URL;
  delete env.MIST_DB;
  delete env.MIST_API_TOKENS;
  delete env.MIST_DASHBOARD_DIR;
  const child: ChildProcess = spawn(process.execPath, [mistBin, 'up', '--demo', '--steps', String(DEMO_STEPS), '--summary-file', summaryFile], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r((exitCode = c))));
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise<DemoRun>((resolveRun, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`mist up printed no Dashboard line within 120 s:\n${stderr.slice(-3000)}`));
    }, 120_000);
    const onData = () => {
      const m = /Dashboard: (http:\/\/127\.0\.0\.1:(\d+)\/\?token=(\S+))/.exec(stdout);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      let stopping: Promise<number | null> | undefined;
      const run: DemoRun = {
        dashboard: m[1]!,
        base: `http://127.0.0.1:${m[2]}`,
        token: m[3]!,
        stateDir,
        summaryFile,
        steps: DEMO_STEPS,
        startedAt: Date.now(),
        output: () => ({ stdout, stderr }),
        async summary(timeoutMs = 12 * 60_000) {
          const end = Date.now() + timeoutMs;
          while (!existsSync(summaryFile)) {
            if (exitCode !== undefined) throw new Error(`mist up exited ${exitCode} before writing its summary:\n${stderr.slice(-4000)}`);
            if (Date.now() > end) throw new Error(`no demo summary after ${timeoutMs / 1000} s:\n${stderr.slice(-4000)}`);
            await new Promise<void>((r) => setTimeout(r, 250)); // bounded polling of the summary file
          }
          return JSON.parse(readFileSync(summaryFile, 'utf8')) as { jobs: DemoRow[] };
        },
        stop() {
          stopping ??= (async () => {
            if (exitCode === undefined) {
              child.kill('SIGTERM');
              const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
              await exited;
              clearTimeout(t);
            }
            return exitCode ?? null;
          })();
          return stopping;
        },
        get stopped() {
          return stopping !== undefined || exitCode !== undefined;
        },
      };
      currentRun = run;
      resolveRun(run);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (c) => {
      clearTimeout(timer);
      reject(new Error(`mist up exited ${c} before printing the Dashboard line:\n${stderr.slice(-3000)}`));
    });
  });
}

/** The shared demo run of this process (started on first use; started again if a suite stopped it). */
export async function sharedDemo(): Promise<DemoRun> {
  if (current) {
    const run = await current.catch(() => undefined);
    if (run && !run.stopped) return run;
  }
  current = start();
  return current;
}

/** Stops the shared run if one is up and removes its scratch directories. */
export async function stopSharedDemo(): Promise<void> {
  if (currentRun && !currentRun.stopped) await currentRun.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

// A root-level hook (this module is imported by spec files, so mocha's globals exist): the last one out stops it.
if (typeof after === 'function') {
  after(async function () {
    this.timeout(120_000);
    await stopSharedDemo();
  });
}
