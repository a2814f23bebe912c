/**
 * Plan-history store benchmark: loads N plan summaries (default 1,000,000) into each backend — SQLite in a temp
 * directory, PostgreSQL (MIST_TEST_PG_URL, default the local server) in a fresh schema — through Store.savePlans
 * in batches, then times the filtered queries `mist plans` and the API issue. Goal: p95 < 50 ms per query kind.
 * Cleans up its file and schema. Usage: node dist/bench/store.js [--rows N] [--queries N] [--backend sqlite|postgres] [--json]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Plan } from '../controller/src/domain/plan.js';
import { openStore, type PlanFilter, type Store } from '../controller/src/plans/store.js';
import { emitJson, say, table } from './report.js';

const argv = process.argv.slice(2);
function arg(name: string, fallback: number): number {
  const i = argv.indexOf(name);
  if (i < 0) return fallback;
  const n = Number(argv[i + 1]);
  if (!Number.isSafeInteger(n) || n < 1) {
    process.stderr.write(`${name}: expected a positive integer, got "${argv[i + 1] ?? ''}"\n`);
    process.exit(2);
  }
  return n;
}
const ROWS = arg('--rows', 1_000_000);
const QUERIES = arg('--queries', 200);
const only = argv.includes('--backend') ? argv[argv.indexOf('--backend') + 1] : undefined;
const BATCH = 5_000;
const PG_URL = process.env.MIST_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test';

const MODELS = ['gpt3-1.3b', 'gpt3-2.7b', 'gpt3-6.7b', 'gpt3-13b', 'gpt3-22b', 'gpt3-175b', 'llama2-7b', 'llama2-13b', 'llama2-70b', 'llama3-8b', 'lvm-300m', 'lvm-600m', 'lvm-1b', 'lvm-3b', 'lvm-7b', 'tiny-gpt'];
const GPUS = ['a100-40gb', 'a100-80gb', 'h100-80gb', 'h200-141gb', 'l4-24gb', 'cpu'];
const NODES = [1, 2, 4, 8, 16, 32, 64, 128];
const SPACES = ['mist', 'megatron', 'megatron-paper', 'deepspeed', 'exhaustive'];
const JOBS = Math.max(1, Math.floor(ROWS / 100));
const SPAN_MS = 365 * 86_400_000;
const T_END = Date.parse('2026-01-01T00:00:00Z');

/** A deterministic stream of numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

/** Plan i: a 1–4 stage plan over the catalogues above, made at an increasing time with jitter. */
function planAt(i: number, r: () => number): { plan: Plan; job?: string; createdAt: Date } {
  const model = pick(r, MODELS);
  const gpu = pick(r, GPUS);
  const nodes = pick(r, NODES);
  const S = 1 + Math.floor(r() * 4);
  const layers = 48;
  const per = layers / S;
  const it = 0.2 + r() * 5;
  const plan: Plan = {
    version: 1,
    id: `bench-${i}`,
    space: pick(r, SPACES),
    model: { name: model, arch: model.startsWith('lvm') ? 'lvm' : model.startsWith('llama') ? 'llama' : 'gpt', layers, hidden: 4096, heads: 32, kvHeads: 32, ffnHidden: 16384, vocab: 50257, seqLen: 2048 },
    cluster: { gpu, nodes, gpusPerNode: 8 },
    globalBatch: 1024,
    seqLen: 2048,
    gradAccum: 32,
    workload: { flash: true, dropout: 0, gradDtype: 'bf16' },
    stages: Array.from({ length: S }, (_, s) => ({
      layers: [Math.floor(s * per), Math.floor((s + 1) * per) - 1] as [number, number],
      nodes: Math.max(1, nodes / S),
      gpusPerNode: 8,
      dp: 4,
      tp: 2,
      microBatch: 8,
      zero: 1 as const,
      ckpt: { mode: 'layers' as const, count: 2 },
      offload: { weights: 0, grads: 0, optimizer: 0.25, activations: 0 },
    })),
    prePost: { dp: 4, tp: 2, zero: 1 },
    predicted: { fits: r() > 0.1, reason: null, iterationSeconds: it, tokensPerSecond: (1024 * 2048) / it, mfu: 0.3 + r() * 0.3, stages: Array.from({ length: S }, () => ({ stableSeconds: it / 40, deltaSeconds: it / 400, peakMemoryBytes: Math.floor(r() * 8e10) })) },
    tuner: { seconds: r() * 10, candidates: 100000, solver: 'glpk', status: 'optimal' },
  };
  const createdAt = new Date(T_END - SPAN_MS + Math.floor(((i + r()) / ROWS) * SPAN_MS));
  return { plan, job: r() < 0.8 ? `job-${Math.floor(r() * JOBS)}` : undefined, createdAt };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

interface QueryKind {
  name: string;
  make: (r: () => number) => () => Promise<unknown>;
}

function kinds(store: Store): QueryKind[] {
  const q = (f: PlanFilter) => () => store.queryPlans(f);
  return [
    { name: 'model+gpu, newest 50', make: (r) => q({ model: pick(r, MODELS), gpu: pick(r, GPUS), limit: 50 }) },
    { name: 'gpus, newest 50', make: (r) => q({ gpus: pick(r, NODES) * 8, limit: 50 }) },
    { name: 'space+since 7d, newest 50', make: (r) => q({ space: pick(r, SPACES), since: new Date(T_END - (7 + r() * 300) * 86_400_000), limit: 50 }) },
    { name: 'job, all (~80)', make: (r) => q({ job: `job-${Math.floor(r() * JOBS)}`, limit: 1000 }) },
    { name: 'newest 50, page 1..20', make: (r) => q({ limit: 50, offset: 50 * Math.floor(r() * 20) }) },
    { name: 'model+gpu, fastest 10', make: (r) => q({ model: pick(r, MODELS), gpu: pick(r, GPUS), order: 'fastest', limit: 10 }) },
    { name: 'getPlan by id', make: (r) => () => store.getPlan(`bench-${Math.floor(r() * ROWS)}`) },
  ];
}

interface BackendResult {
  backend: string;
  rows: number;
  loadSeconds: number;
  rowsPerSecond: number;
  sizeBytes: number | null;
  queries: Array<{ name: string; count: number; p50Ms: number; p95Ms: number; maxMs: number; meetsGoal: boolean }>;
}

async function benchBackend(name: 'sqlite' | 'postgres'): Promise<BackendResult> {
  let store: Store;
  let cleanup: () => Promise<void>;
  let size: () => Promise<number | null>;
  let analyze: () => Promise<void>;
  if (name === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'mist-bench-store-'));
    const file = join(dir, 'mist.db');
    store = await openStore(file);
    cleanup = async () => rmSync(dir, { recursive: true, force: true });
    size = async () => statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0);
    analyze = async () => {
      const db = new Database(file);
      db.exec('ANALYZE');
      db.close();
    };
  } else {
    const schema = `mist_bench_${randomBytes(6).toString('hex')}`;
    store = await openStore(PG_URL, { schema });
    const admin = async <T>(fn: (c: pg.Client) => Promise<T>) => {
      const c = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
      await c.connect();
      try {
        return await fn(c);
      } finally {
        await c.end();
      }
    };
    cleanup = () => admin(async (c) => void (await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)));
    size = () => admin(async (c) => Number((await c.query<{ n: string }>(`SELECT (pg_total_relation_size('plans') + pg_total_relation_size('plan_records'))::text AS n`)).rows[0]!.n));
    analyze = () => admin(async (c) => void (await c.query('VACUUM ANALYZE plans')));
  }
  try {
    say(`${name}: loading ${ROWS.toLocaleString('en-US')} plans in batches of ${BATCH.toLocaleString('en-US')} (${store.location})`);
    const r = rng(42);
    const t0 = performance.now();
    let lastReport = t0;
    // PostgreSQL takes two batches at a time (one per server core); SQLite has one writer.
    const inFlight: Array<Promise<number>> = [];
    const width = name === 'postgres' ? 2 : 1;
    for (let start = 0; start < ROWS; start += BATCH) {
      const n = Math.min(BATCH, ROWS - start);
      inFlight.push(store.savePlans(Array.from({ length: n }, (_, k) => planAt(start + k, r))));
      if (inFlight.length >= width) await inFlight.shift();
      if (performance.now() - lastReport > 15_000) {
        lastReport = performance.now();
        process.stderr.write(`  ${name}: ${(start + n).toLocaleString('en-US')} rows, ${((lastReport - t0) / 1000).toFixed(0)} s\n`);
      }
    }
    await Promise.all(inFlight);
    const loadSeconds = (performance.now() - t0) / 1000;
    say(`${name}: loaded; analyzing and querying`);
    await analyze();
    const queries: BackendResult['queries'] = [];
    for (const kind of kinds(store)) {
      const qr = rng(7);
      const times: number[] = [];
      for (let i = 0; i < 5; i++) await kind.make(qr)(); // warm the statement cache and connections
      for (let i = 0; i < QUERIES; i++) {
        const run = kind.make(qr);
        const s = performance.now();
        await run();
        times.push(performance.now() - s);
      }
      const p95 = pct(times, 95);
      queries.push({ name: kind.name, count: times.length, p50Ms: pct(times, 50), p95Ms: p95, maxMs: Math.max(...times), meetsGoal: p95 < 50 });
    }
    return { backend: name, rows: ROWS, loadSeconds, rowsPerSecond: ROWS / loadSeconds, sizeBytes: await size().catch(() => null), queries };
  } finally {
    await store.close();
    await cleanup();
  }
}

async function main(): Promise<void> {
  const backends = (only ? [only] : ['sqlite', 'postgres']) as Array<'sqlite' | 'postgres'>;
  const results: BackendResult[] = [];
  for (const b of backends) {
    const res = await benchBackend(b);
    results.push(res);
    say('');
    say(`${b}: loaded ${res.rows.toLocaleString('en-US')} plans in ${res.loadSeconds.toFixed(1)} s (${Math.round(res.rowsPerSecond).toLocaleString('en-US')} rows/s)${res.sizeBytes ? `, ${(res.sizeBytes / 2 ** 20).toFixed(0)} MiB on disk` : ''}`);
    say(
      table([
        ['query', 'n', 'p50 ms', 'p95 ms', 'max ms', 'p95 < 50 ms'],
        ...res.queries.map((q) => [q.name, String(q.count), q.p50Ms.toFixed(2), q.p95Ms.toFixed(2), q.maxMs.toFixed(2), q.meetsGoal ? 'yes' : 'NO']),
      ]),
    );
    say('');
  }
  emitJson({ bench: 'store', rows: ROWS, queriesPerKind: QUERIES, goalP95Ms: 50, results });
  if (results.some((r) => r.queries.some((q) => !q.meetsGoal))) process.exitCode = 1;
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:store failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
