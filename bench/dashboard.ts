/**
 * Dashboard live-feed benchmark: N WebSocket clients (default 100) subscribe to `jobs` on the controller's API
 * server (createApiServer + the /ws hub of api/ws.ts, the same code `mist up` serves). A job changes phase
 * (Pending → Planning → Running → Succeeded, repeated for several jobs); the service announces it on its change
 * feed; each client timestamps the delta that carries the new phase. Prints the latency from the change to
 * each client's receipt (p50, p99, max) and checks p99 < 500 ms. Clients and server share this process (a
 * conservative setting: the clients' work competes with the server's).
 *
 *   npm run bench:dashboard [-- --json] [--clients N] [--changes K] [--throttle-ms T]
 */
import WebSocket from 'ws';
import { TokenStore } from '../controller/src/api/auth.js';
import { createMetrics } from '../controller/src/api/metrics.js';
import { closeApi, createApiServer, listenApi } from '../controller/src/api/server.js';
import type { ChangeEvent, ControllerService, JobDetail, JobView } from '../controller/src/api/service.js';
import { MistError } from '../protocol/src/errors.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`bench:dashboard: --${name} expects a positive number\n`);
    process.exit(2);
  }
  return v;
}
const json = process.argv.includes('--json');
const CLIENTS = arg('clients', 100);
const CHANGES = arg('changes', 40);
const THROTTLE = arg('throttle-ms', 200);
const TOKEN = 'bench-token-0123456789abcdef';
const BUDGET_MS = 500;
const PHASES = ['Pending', 'Planning', 'Running', 'Succeeded'];

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : NaN;
};

/** A service with in-memory jobs and a change feed: what the hub needs, nothing else. */
class BenchService implements ControllerService {
  jobs = new Map<string, JobView>();
  private readonly listeners = new Set<(c: ChangeEvent) => void>();
  setPhase(name: string, phase: string): void {
    const j = this.jobs.get(name) ?? { name, phase, restarts: 0, createdAt: new Date().toISOString() };
    this.jobs.set(name, { ...j, phase });
    for (const l of this.listeners) l({ kind: 'job', job: name });
  }
  watch(l: (c: ChangeEvent) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  async listJobs() {
    return [...this.jobs.values()];
  }
  async getJob(name: string): Promise<JobDetail> {
    const j = this.jobs.get(name);
    if (!j) throw new MistError('NOT_FOUND', `job "${name}" does not exist`);
    return { ...j, spec: {}, status: {}, conditions: [], events: [] };
  }
  async submit(): Promise<JobView> {
    throw new MistError('NOT_IMPLEMENTED', 'bench');
  }
  async cancel(name: string) {
    return this.getJob(name);
  }
  async logs() {
    return { lines: [] };
  }
  async nodes() {
    return [];
  }
  async plans() {
    return [];
  }
  async getPlan(id: string): Promise<unknown> {
    throw new MistError('NOT_FOUND', `plan ${id}`);
  }
  async ready() {
    return { ready: true };
  }
}

async function main(): Promise<void> {
  const service = new BenchService();
  const server = createApiServer({ service, tokens: new TokenStore([{ token: TOKEN, role: 'read', name: 'bench' }]), metrics: createMetrics({ defaultMetrics: false }), live: { throttleMs: THROTTLE } });
  const { url } = await listenApi(server, { host: '127.0.0.1', port: 0 });
  const wsUrl = url.replace(/^http/, 'ws') + '/ws';
  // expected[job][phase] = change time; each client reports when it first saw that phase
  const changedAt = new Map<string, number>();
  const latencies: number[] = [];
  const seen = new Map<string, number>();
  let waiting: (() => void) | undefined;
  const clients: WebSocket[] = [];
  let snapshots = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, () =>
      new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(wsUrl, { headers: { Authorization: `Bearer ${TOKEN}` } });
        clients.push(ws);
        ws.on('message', (d) => {
          const now = performance.now();
          const m = JSON.parse(d.toString()) as { type: string; topic?: string; data?: { upsert?: JobView[]; jobs?: JobView[] } };
          if (m.type === 'hello') ws.send(JSON.stringify({ type: 'subscribe', topics: ['jobs'] }));
          if (m.type === 'snapshot') {
            snapshots++;
            resolve();
          }
          for (const j of m.data?.upsert ?? []) {
            const key = `${j.name}/${j.phase}`;
            const t0 = changedAt.get(key);
            if (t0 === undefined) continue;
            latencies.push(now - t0);
            const n = (seen.get(key) ?? 0) + 1;
            seen.set(key, n);
            if (n === CLIENTS) waiting?.();
          }
        });
        ws.once('error', reject);
      }),
    ),
  );
  // phase changes, one at a time, each waiting until every client saw it (bounded)
  let missed = 0;
  for (let i = 0; i < CHANGES; i++) {
    const job = `bench-${Math.floor(i / PHASES.length)}`;
    const phase = PHASES[i % PHASES.length]!;
    const key = `${job}/${phase}`;
    const all = new Promise<void>((r) => (waiting = r));
    changedAt.set(key, performance.now());
    service.setPhase(job, phase);
    const t = setTimeout(() => waiting?.(), 5000);
    await all;
    clearTimeout(t);
    missed += CLIENTS - (seen.get(key) ?? 0);
    // let the throttle window pass so each change is measured from a quiet state half the time, mid-window otherwise
    if (i % 2 === 0) await new Promise((r) => setTimeout(r, THROTTLE + 10));
  }
  for (const ws of clients) ws.close();
  await closeApi(server);
  const p50 = quantile(latencies, 0.5);
  const p99 = quantile(latencies, 0.99);
  const max = Math.max(...latencies);
  const ok = missed === 0 && p99 < BUDGET_MS;
  const result = { clients: CLIENTS, changes: CHANGES, throttleMs: THROTTLE, snapshots, deliveries: latencies.length, missed, latencyMs: { p50: +p50.toFixed(1), p99: +p99.toFixed(1), max: +max.toFixed(1) }, budgetMs: BUDGET_MS, ok };
  if (json) process.stdout.write(JSON.stringify(result) + '\n');
  else {
    process.stdout.write(`bench:dashboard: ${CLIENTS} WebSocket clients, ${CHANGES} job phase changes (throttle ${THROTTLE} ms)\n`);
    process.stdout.write(`  delivered ${latencies.length}/${CLIENTS * CHANGES}, missed ${missed}\n`);
    process.stdout.write(`  change → client latency: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms (budget p99 < ${BUDGET_MS} ms): ${ok ? 'ok' : 'OVER BUDGET'}\n`);
  }
  process.exitCode = ok ? 0 : 1;
}

main().catch((e) => {
  process.stderr.write(`bench:dashboard: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
