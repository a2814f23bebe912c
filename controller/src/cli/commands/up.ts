/**
 * `mist up [--demo] [--agents 2] [--devices-per-agent 2] [--once]`: a whole Mist on this machine — a nats-server
 * (Debian's, on a free loopback port with JetStream, its store under the state dir; or $MIST_NATS_URL), the
 * controller in this process (SQLite under $MIST_STATE_DIR, default .mist/), the HTTP API, and local CPU agents as
 * child processes with the reference runtime. Prints `Dashboard: http://127.0.0.1:<port>/?token=<token>`.
 *
 * --demo submits a tiny LLM job and then a tiny LVM job, one at a time, one thread per rank: each is planned,
 * trained and profiled; the calibration fitted on the LLM job plans and predicts the LVM job. --once exits when the
 * demo jobs end and prints one JSON object on stdout (docs/controller.md "mist up"); progress goes to stderr.
 * Everything it started (agents and their ranks, nats-server) is stopped on exit.
 */
import type { Command } from 'commander';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MistError, badInput } from '../../../../protocol/src/errors.js';
import { TokenStore, defaultTokenFile, ensureTokenFile } from '../../api/auth.js';
import { createMetrics } from '../../api/metrics.js';
import { dashboardDir } from '../../api/dashboard-dir.js';
import { isTerminalPhase } from '../../api/service.js';
import { Controller } from '../../operator/controller.js';
import { findPython, freePort, referenceRuntimeScript, requireTorch } from '../../local/ranks.js';
import { intFlag } from '../flags.js';
import { mistVersion } from '../program.js';
import { stderrLogger, untilSignal } from './controller.js';

interface UpOptions {
  demo?: boolean;
  once?: boolean;
  agents: string;
  devicesPerAgent: string;
  steps?: string;
  summaryFile?: string;
  json?: boolean;
}

const NATS_SERVER = process.env.MIST_NATS_SERVER ?? '/usr/sbin/nats-server';
const MIST_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'main.js');

/**
 * The demo jobs: tiny enough to train on two CPU devices in well under a minute each. The two models share their
 * block dimensions (tiny-llama and tiny-lvm: 4 layers, hidden 64) and their batch (16 × 64 tokens), and differ in
 * their data (synthetic text vs visual sentences): the calibration fitted on the first is meant to transfer to
 * the second, as it does between jobs on one cluster.
 */
export function demoJobs(name: { llm: string; lvm: string }, devices: number, steps: number): Array<{ name: string; kind: 'llm' | 'lvm'; text: string }> {
  const common = (gb: number, extra: string) => `
  training:
    globalBatch: ${gb}${extra}
    steps: ${steps}
    dataset: "synthetic:"
  resources:
    gpus: ${devices}
    gpuType: cpu
  tuner:
    space: mist
    timeBudgetSeconds: 10
  runtime: reference
  restartPolicy:
    maxRestarts: 2
    backoffSeconds: 1
  workload:
    flash: false
    dropout: 0
`;
  return [
    {
      name: name.llm,
      kind: 'llm',
      text: `apiVersion: mist.io/v1alpha1\nkind: MistJob\nmetadata:\n  name: ${name.llm}\n  labels:\n    mist.io/demo: llm\nspec:\n  model:\n    preset: tiny-llama${common(16, '\n    seqLen: 64')}`,
    },
    {
      name: name.lvm,
      kind: 'lvm',
      text: `apiVersion: mist.io/v1alpha1\nkind: MistJob\nmetadata:\n  name: ${name.lvm}\n  labels:\n    mist.io/demo: lvm\nspec:\n  model:\n    preset: tiny-lvm${common(16, '')}`,
    },
  ];
}

interface Child {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
  stop(): Promise<void>;
}

function track(name: string, child: ChildProcess, killAfterMs = 15_000): Child {
  const exited = new Promise<void>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once('exit', () => r());
  });
  return {
    name,
    child,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      await exited;
      clearTimeout(t);
    },
  };
}

async function startNats(stateDir: string, log: (m: string) => void): Promise<{ url: string; proc: Child }> {
  const port = await freePort();
  const storeDir = join(stateDir, 'nats');
  mkdirSync(storeDir, { recursive: true });
  const child = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = track('nats-server', child, 5000);
  let out = '';
  await new Promise<void>((ok, fail) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('Server is ready')) ok();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (e) => fail(new MistError('SETUP_MISSING', `cannot start ${NATS_SERVER} (${e.message}): install nats-server (apt-get install nats-server) or set MIST_NATS_URL`)));
    child.once('exit', (code) => fail(new MistError('INTERNAL', `nats-server exited with ${code} before it was ready: ${out.slice(-500)}`)));
  });
  child.stdout!.removeAllListeners('data');
  child.stderr!.removeAllListeners('data');
  child.stdout!.resume();
  child.stderr!.resume();
  log(`nats-server on 127.0.0.1:${port} (JetStream store ${storeDir})`);
  return { url: `nats://127.0.0.1:${port}`, proc };
}

function startAgent(o: { url: string; node: string; devices: number; runtimes: string; stateDir: string }): Child {
  const args = [MIST_MAIN, 'agent', '--nats', o.url, '--node', o.node, '--cpu-devices', String(o.devices), '--runtimes', o.runtimes, '--state-dir', o.stateDir, '--heartbeat-seconds', '1', '--label', 'mist.io/address=127.0.0.1', '--stop-ranks-on-exit'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, OMP_NUM_THREADS: '1' } });
  child.stderr!.on('data', (d: Buffer) => {
    if (process.env.MIST_DEBUG) process.stderr.write(d);
  });
  return track(`agent ${o.node}`, child);
}

async function waitFor<T>(what: string, cond: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new MistError('TIMEOUT', `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

interface DemoRow {
  name: string;
  kind: 'llm' | 'lvm';
  phase: string;
  planId: string | null;
  predictedStepSeconds: number | null;
  measuredStepSeconds: number | null;
  predictionErrorBefore: number | null;
  predictionErrorAfter: number | null;
  message?: string;
}

export function registerUp(program: Command, summary: string): void {
  program
    .command('up')
    .description(summary)
    .option('--demo', 'submit a tiny LLM job, then a tiny LVM job (tuned, trained and profiled end to end)', false)
    .option('--agents <n>', 'local CPU agents to start', '2')
    .option('--devices-per-agent <n>', 'CPU devices per agent', '2')
    .option('--once', 'with --demo: exit when the demo jobs end and print one JSON summary on stdout', false)
    .option('--steps <k>', 'training steps of each demo job', '30')
    .option('--summary-file <file>', 'with --demo: write the JSON summary (the one --once prints) to FILE when the demo jobs end, and keep serving')
    .option('--json', 'stdout is one JSON document: the --once summary, or {dashboard, api, stateDir} once serving; the Dashboard line goes to stderr')
    .action(async (opts: UpOptions) => {
      const agents = intFlag('--agents', opts.agents, { min: 1, max: 64 });
      const perAgent = intFlag('--devices-per-agent', opts.devicesPerAgent, { min: 1, max: 64 });
      const steps = intFlag('--steps', opts.steps ?? '30', { min: 8, max: 100_000 });
      if (opts.once && !opts.demo) throw badInput('--once', 'only makes sense with --demo');
      if (opts.summaryFile && !opts.demo) throw badInput('--summary-file', 'only makes sense with --demo');
      const stateDir = resolve(process.env.MIST_STATE_DIR?.trim() || '.mist');
      mkdirSync(stateDir, { recursive: true });
      const say = (m: string) => process.stderr.write(`[mist up] ${m}\n`);
      const children: Child[] = [];
      let controller: Controller | undefined;
      const shutdown = async () => {
        if (controller) await controller.close().catch(() => {});
        // agents first (they stop their ranks), then the server they talk to
        await Promise.all(children.filter((c) => c.name !== 'nats-server').map((c) => c.stop()));
        await Promise.all(children.filter((c) => c.name === 'nats-server').map((c) => c.stop()));
      };
      const onExit = () => {
        for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
      };
      process.once('exit', onExit);
      // Ctrl-C or SIGTERM at any point: stop everything cleanly (agents stop their ranks), never leave orphans
      let interrupted: string | undefined;
      const signalled = untilSignal().then((sig) => {
        interrupted = sig;
        say(`${sig}: stopping the controller, the agents and their ranks, and nats-server`);
        return sig;
      });
      const checkInterrupt = () => {
        if (interrupted) throw new MistError('INTERNAL', `interrupted by ${interrupted}`);
      };
      try {
        // the local agents run the reference runtime: without PyTorch every rank would fail
        requireTorch(findPython());
        let natsUrl = process.env.MIST_NATS_URL?.trim();
        if (!natsUrl) {
          const n = await startNats(stateDir, say);
          children.push(n.proc);
          natsUrl = n.url;
        } else say(`using NATS at ${natsUrl}`);

        const tokenFile = process.env.MIST_API_TOKENS?.trim() || defaultTokenFile(stateDir);
        const { adminToken } = ensureTokenFile(tokenFile);
        const runtimesFile = join(stateDir, 'runtimes.json');
        writeFileSync(runtimesFile, JSON.stringify({ runtimes: { reference: { argv: ['{python}', '-u', referenceRuntimeScript(), '--plan', '{planFile}'] } } }, null, 2) + '\n');

        const httpAddr = process.env.MIST_HTTP_ADDR?.trim() || '127.0.0.1:8470';
        const mk = (addr: string) =>
          new Controller({
            nats: natsUrl!,
            stateDir,
            runtimes: ['reference'],
            lostAfterMs: 10_000,
            stopGraceSeconds: 3,
            http: { addr, tokens: TokenStore.fromFile(tokenFile), metrics: createMetrics({ version: mistVersion() }), ...(dashboardDir() ? { staticDir: dashboardDir() } : {}) },
            log: stderrLogger('[mist-controller]'),
          });
        controller = mk(httpAddr);
        try {
          await controller.start();
        } catch (e) {
          if (!/EADDRINUSE/.test(String((e as Error).message)) || process.env.MIST_HTTP_ADDR) throw e;
          await controller.close();
          say(`${httpAddr} is in use; the API takes a free port instead`);
          controller = mk('127.0.0.1:0');
          await controller.start();
        }
        const port = new URL(controller.url!).port;
        const dashboard = `Dashboard: http://127.0.0.1:${port}/?token=${adminToken}`;
        if (opts.once || opts.json) process.stderr.write(dashboard + '\n');
        else process.stdout.write(dashboard + '\n');
        if (opts.json && !opts.once) process.stdout.write(JSON.stringify({ dashboard: dashboard.slice('Dashboard: '.length), api: controller.url, stateDir }) + '\n');

        for (let i = 1; i <= agents; i++) {
          const node = `local-${i}`;
          children.push(startAgent({ url: natsUrl, node, devices: perAgent, runtimes: runtimesFile, stateDir: join(stateDir, `agent-${node}`) }));
        }
        const c = controller;
        await waitFor(`${agents} agents to register`, () => (checkInterrupt(), c.aliveNodes().length >= agents), 60_000);
        say(`${agents} CPU agents with ${perAgent} devices each are up`);

        if (opts.demo) {
          const taken = new Set((await c.listJobs()).map((j) => j.name));
          let k = 1;
          while (taken.has(`tiny-llm-${k}`) || taken.has(`tiny-lvm-${k}`)) k++;
          const jobs = demoJobs({ llm: `tiny-llm-${k}`, lvm: `tiny-lvm-${k}` }, Math.min(2, agents * perAgent), steps);
          const rows: DemoRow[] = [];
          for (const j of jobs) {
            await c.submit({ text: j.text, format: 'yaml' });
            say(`submitted ${j.name} (${j.kind})`);
            let last = '';
            await waitFor(
              `${j.name} to finish`,
              () => {
                checkInterrupt();
                const st = c.status(j.name);
                const line = `${j.name}: ${st?.phase ?? 'Pending'}${st?.progress ? ` step ${st.progress.step}/${st.progress.totalSteps}` : ''} — ${st?.message ?? ''}`;
                if (line !== last) say((last = line));
                return !!st && isTerminalPhase(st.phase) && (st.phase !== 'Succeeded' || c.calibrationDone(j.name));
              },
              20 * 60_000,
              250,
            );
            const d = await c.getJob(j.name);
            const cal = (d.calibration ?? {}) as Partial<DemoRow> & { error?: string };
            rows.push({
              name: j.name,
              kind: j.kind,
              phase: d.phase,
              planId: (d.planId as string | null) ?? null,
              predictedStepSeconds: cal.predictedStepSeconds ?? ((d.plan as { predicted?: { iterationSeconds?: number } } | undefined)?.predicted?.iterationSeconds ?? null),
              measuredStepSeconds: cal.measuredStepSeconds ?? null,
              predictionErrorBefore: cal.predictionErrorBefore ?? null,
              predictionErrorAfter: cal.predictionErrorAfter ?? null,
              ...(cal.error ? { message: cal.error } : d.phase !== 'Succeeded' ? { message: String(d.message ?? '') } : {}),
            });
            const r = rows[rows.length - 1]!;
            const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
            say(`${j.name}: ${r.phase}; measured ${r.measuredStepSeconds?.toFixed(4) ?? '-'} s/step, predicted ${r.predictedStepSeconds?.toFixed(4) ?? '-'}; held-out error ${pct(r.predictionErrorBefore)} with the catalog, ${pct(r.predictionErrorAfter)} calibrated`);
          }
          if (opts.summaryFile) {
            const file = resolve(opts.summaryFile);
            writeFileSync(`${file}.tmp`, JSON.stringify({ jobs: rows }) + '\n');
            renameSync(`${file}.tmp`, file);
            say(`summary written to ${file}`);
          }
          if (opts.once) {
            await shutdown();
            process.stdout.write(JSON.stringify({ jobs: rows }) + '\n');
            if (rows.some((r) => r.phase !== 'Succeeded')) process.exitCode = 1;
            return;
          }
        }
        say('serving; Ctrl-C to stop');
        await signalled;
        await shutdown();
      } catch (e) {
        await shutdown();
        throw e;
      } finally {
        process.off('exit', onExit);
      }
    });
}
