/**
 * `mist plans`: query plan history in the store (MIST_DB, --db, or the SQLite file under MIST_STATE_DIR).
 *
 *   mist plans [--model M] [--gpu G] [--gpus N] [--space S] [--job J] [--since DATE] [--until DATE]
 *              [--order newest|fastest] [--limit N] [--offset N] [--json|--csv] [--db URL]
 *   mist plans show ID [--json] [--record]
 *   mist plans compare A B [--json]
 *
 * A table by default; --json prints one JSON document (an array of summaries; for show, the summary with the Plan;
 * for compare, both plans and the differences); --csv prints a header and one line per plan.
 */
import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { badInput, MistError } from '../../../../protocol/src/errors.js';
import type { Plan } from '../../domain/plan.js';
import { isPostgresUrl, openStore, resolveDbLocation, type PlanFilter, type PlanSummary, type Store, type StoredPlan } from '../../plans/store.js';
import { ckptText, formatPrediction } from '../format.js';
import { choiceFlag, intFlag } from '../flags.js';
import { printJson } from '../output.js';

interface ListOptions {
  model?: string;
  gpu?: string;
  gpus?: string;
  space?: string;
  job?: string;
  since?: string;
  until?: string;
  order?: string;
  limit?: string;
  offset?: string;
  json?: boolean;
  csv?: boolean;
  db?: string;
}

interface ShowOptions {
  json?: boolean;
  record?: boolean;
  db?: string;
}

const DB_HELP = 'database: a SQLite path or a postgres:// URL (default: $MIST_DB, else $MIST_STATE_DIR/mist.db, else .mist/mist.db)';

export function registerPlans(program: Command, summary: string): void {
  const plans = program
    .command('plans')
    .description(`${summary}: list tuner decisions, show one, compare two`)
    // Usage errors throw (main maps them to exit 2) instead of commander's process.exit(1).
    .exitOverride()
    .option('--model <m>', 'only plans for this model preset (e.g. gpt3-1.3b)')
    .option('--gpu <type>', 'only plans on this GPU type (e.g. a100-80gb)')
    .option('--gpus <n>', 'only plans for this many GPUs in total')
    .option('--space <s>', 'only plans found in this search space (mist, megatron, megatron-paper, deepspeed, exhaustive)')
    .option('--job <name>', 'only plans made for this job')
    .option('--since <date>', 'only plans made at or after DATE (ISO date/time, or a duration ago: 30m, 12h, 7d)')
    .option('--until <date>', 'only plans made before DATE')
    .option('--order <o>', 'newest (default) or fastest (feasible plans by predicted iteration time)', 'newest')
    .option('--limit <n>', 'at most N plans (1..10000)', '50')
    .option('--offset <n>', 'skip the first N plans', '0')
    .option('--json', 'print one JSON document: an array of plan summaries')
    .option('--csv', 'print CSV with a header line')
    .option('--db <url>', DB_HELP)
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  mist plans --model llama2-7b --gpu h100-80gb --since 7d',
        '  mist plans --job train-7b --order fastest --limit 5 --json',
        '  mist plans show <id> --record',
        '  mist plans compare <id-a> <id-b>',
        '  MIST_DB=postgres://mist@db:5432/mist mist plans --csv > plans.csv',
      ].join('\n'),
    )
    .action(async (opts: ListOptions) => {
      if (opts.json && opts.csv) throw badInput('--csv', 'cannot be combined with --json', 'choose one output format');
      const filter = listFilter(opts);
      const rows = await withStore(opts.db, async (store) => (store ? store.queryPlans(filter) : []));
      if (opts.json) printJson(rows);
      else if (opts.csv) process.stdout.write(toCsv(rows));
      else process.stdout.write(rows.length ? formatList(rows) + '\n' : 'no plans match\n');
    });

  plans
    .command('show')
    .exitOverride()
    .description('show one plan: cluster, stages and knobs, predicted numbers, tuner result')
    .argument('<id>', 'plan id (see `mist plans`)')
    .option('--json', 'print one JSON document: the summary with the Plan under "plan" (and "record" with --record)')
    .option('--record', 'include the tuner decision record (Pareto frontiers, alternatives, baselines)')
    .option('--db <url>', DB_HELP)
    .action(async (id: string, own: ShowOptions, cmd: Command) => {
      const opts = withParent(own, cmd);
      const db = opts.db;
      const { plan, record } = await withStore(db, async (store) => {
        const p = await getOrFail(store, id, db);
        return { plan: p, record: opts.record ? await store!.getDecisionRecord(id) : undefined };
      });
      if (opts.json) printJson(opts.record ? { ...plan, record } : plan);
      else {
        process.stdout.write(formatShow(plan) + '\n');
        if (opts.record) process.stdout.write(`\ndecision record:\n${record === null ? '(none stored)' : JSON.stringify(record, null, 2)}\n`);
      }
    });

  plans
    .command('compare')
    .exitOverride()
    .description('compare two plans side by side (stages, knobs, predicted numbers); differences are marked with *')
    .argument('<a>', 'first plan id')
    .argument('<b>', 'second plan id')
    .option('--json', 'print one JSON document: {a, b, differences}')
    .option('--db <url>', DB_HELP)
    .action(async (a: string, b: string, own: ShowOptions, cmd: Command) => {
      const opts = withParent(own, cmd);
      const db = opts.db;
      const [pa, pb] = await withStore(db, async (store) => [await getOrFail(store, a, db), await getOrFail(store, b, db)]);
      const rows = compareRows(pa, pb);
      if (opts.json) {
        printJson({ a: pa, b: pb, differences: rows.filter((r) => r.differs).map(({ field, a: va, b: vb }) => ({ field, a: va, b: vb })) });
      } else {
        process.stdout.write(formatCompare(pa, pb, rows) + '\n');
      }
    });
}

/** commander lets `plans` take its own --json/--db even after `show ID`; honour them wherever they were given. */
function withParent(own: ShowOptions, cmd: Command): ShowOptions {
  const parent = (cmd.parent?.opts() ?? {}) as ListOptions;
  return { ...own, json: Boolean(own.json || parent.json), db: own.db ?? parent.db };
}

/** Opens the store for one command. A SQLite file that does not exist is an empty history (and is not created). */
async function withStore<T>(db: string | undefined, fn: (store: Store | null) => Promise<T>): Promise<T> {
  const location = resolveDbLocation(db === undefined || db.trim() === '' ? undefined : db);
  if (!isPostgresUrl(location) && location !== ':memory:' && !existsSync(location.replace(/^sqlite:(\/\/)?/i, ''))) {
    process.stderr.write(`mist: no plan history at ${location} (set MIST_DB or --db)\n`);
    return fn(null);
  }
  const store = await openStore(location);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function getOrFail(store: Store | null, id: string, db: string | undefined): Promise<StoredPlan> {
  const p = store ? await store.getPlan(id) : null;
  if (!p) throw new MistError('NOT_FOUND', `plan ${id} not found in ${store?.location ?? resolveDbLocation(db)} (list plans with \`mist plans\`)`);
  return p;
}

function listFilter(o: ListOptions): PlanFilter {
  const text = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    if (v.trim() === '') throw badInput(flag, 'is empty');
    return v.trim();
  };
  return {
    model: text('--model', o.model),
    gpu: text('--gpu', o.gpu),
    gpus: o.gpus === undefined ? undefined : intFlag('--gpus', o.gpus, { min: 1 }),
    space: text('--space', o.space),
    job: text('--job', o.job),
    since: o.since === undefined ? undefined : dateFlag('--since', o.since),
    until: o.until === undefined ? undefined : dateFlag('--until', o.until),
    order: choiceFlag('--order', o.order ?? 'newest', ['newest', 'fastest'] as const),
    limit: intFlag('--limit', o.limit ?? '50', { min: 1, max: 10_000 }),
    offset: intFlag('--offset', o.offset ?? '0', { min: 0 }),
  };
}

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** An ISO date or date-time, or a duration ago (30m, 12h, 7d, 2w). */
export function dateFlag(flag: string, value: string, now = Date.now()): Date {
  const s = value.trim();
  const rel = /^(\d+)([smhdw])$/.exec(s);
  if (rel) return new Date(now - Number(rel[1]) * UNIT_MS[rel[2]!]!);
  if (/^\d{4}-\d\d-\d\d([T ][\d:.]+(Z|[+-]\d\d:?\d\d)?)?$/.test(s)) {
    const d = new Date(s.length === 10 ? `${s}T00:00:00Z` : s.replace(' ', 'T'));
    if (!Number.isNaN(d.getTime())) return d;
  }
  throw badInput(flag, `"${s}" is not a date`, 'valid: an ISO date or date-time (2025-03-01, 2025-03-01T12:00:00Z) or a duration ago (30m, 12h, 7d, 2w)');
}

// ---- rendering ----

function table(rows: string[][], rightFrom = 99): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i >= rightFrom ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

const fmt = {
  when: (d: Date) => d.toISOString().slice(0, 16).replace('T', ' '),
  s: (x: number | null) => (x === null ? '-' : x.toFixed(3)),
  tps: (x: number | null) => (x === null ? '-' : Math.round(x).toLocaleString('en-US')),
  pct: (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(1)}%`),
  fits: (x: boolean | null) => (x === null ? '-' : x ? 'yes' : 'NO'),
};

function formatList(rows: PlanSummary[]): string {
  const head = ['ID', 'CREATED (UTC)', 'JOB', 'MODEL', 'GPU', 'GPUS', 'SPACE', 'STAGES', 'FITS', 'ITER S', 'TOKENS/S', 'MFU'];
  return table(
    [head, ...rows.map((r) => [r.id, fmt.when(r.createdAt), r.job ?? '-', r.model ?? r.arch, r.gpu, String(r.gpus), r.space, String(r.stages), fmt.fits(r.fits), fmt.s(r.iterationSeconds), fmt.tps(r.tokensPerSecond), fmt.pct(r.mfu)])],
    5,
  );
}

const CSV_COLUMNS: Array<keyof PlanSummary> = [
  'id', 'createdAt', 'job', 'model', 'arch', 'layers', 'hidden', 'gpu', 'nodes', 'gpusPerNode', 'gpus', 'globalBatch', 'seqLen', 'stages', 'space',
  'solver', 'status', 'tunerSeconds', 'fits', 'iterationSeconds', 'tokensPerSecond', 'mfu', 'hasRecord',
];

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(rows: PlanSummary[]): string {
  return [CSV_COLUMNS.join(','), ...rows.map((r) => CSV_COLUMNS.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n';
}

function formatShow(p: StoredPlan): string {
  const lines = [
    `plan ${p.id}`,
    `created ${p.createdAt.toISOString()}${p.job ? ` for job ${p.job}` : ''} · space ${p.space}${p.solver ? ` · solver ${p.solver}` : ''}${p.status ? ` (${p.status})` : ''}${p.tunerSeconds !== null ? ` · tuned in ${p.tunerSeconds.toFixed(2)} s` : ''}`,
    '',
    formatPrediction(p.plan),
  ];
  const baselines = (p.plan.tuner as { baselines?: Record<string, { iterationSeconds?: number }> } | undefined)?.baselines;
  const mine = p.plan.predicted?.iterationSeconds;
  if (baselines && mine) {
    for (const [space, b] of Object.entries(baselines)) {
      if (typeof b?.iterationSeconds === 'number' && b.iterationSeconds > 0) lines.push(`vs ${space}: ${(b.iterationSeconds / mine).toFixed(2)}× faster (${b.iterationSeconds.toFixed(3)} s)`);
    }
  }
  lines.push(p.hasRecord ? '\ndecision record stored (show it with --record)' : '');
  return lines.join('\n').trimEnd();
}

interface CompareRow {
  section: string;
  field: string;
  a: string;
  b: string;
  differs: boolean;
}

const GiB = 1024 ** 3;

/** Flattens both plans into comparable rows: general, then each stage's knobs, then predictions. */
export function compareRows(a: StoredPlan, b: StoredPlan): CompareRow[] {
  const rows: CompareRow[] = [];
  const add = (section: string, field: string, va: unknown, vb: unknown) => {
    const sa = show(va);
    const sb = show(vb);
    rows.push({ section, field, a: sa, b: sb, differs: sa !== sb });
  };
  const show = (x: unknown): string => (x === undefined || x === null ? '-' : typeof x === 'number' ? (Number.isInteger(x) ? String(x) : String(Number(x.toPrecision(6)))) : typeof x === 'object' ? JSON.stringify(x) : String(x));
  const pa = a.plan;
  const pb = b.plan;
  add('plan', 'job', a.job, b.job);
  add('plan', 'created', a.createdAt.toISOString(), b.createdAt.toISOString());
  add('plan', 'space', pa.space, pb.space);
  add('plan', 'model', pa.model.name ?? pa.model.arch, pb.model.name ?? pb.model.arch);
  add('plan', 'cluster', `${pa.cluster.nodes}×${pa.cluster.gpusPerNode} ${pa.cluster.gpu}`, `${pb.cluster.nodes}×${pb.cluster.gpusPerNode} ${pb.cluster.gpu}`);
  add('plan', 'globalBatch', pa.globalBatch, pb.globalBatch);
  add('plan', 'seqLen', pa.seqLen, pb.seqLen);
  add('knobs', 'gradAccum', pa.gradAccum, pb.gradAccum);
  add('knobs', 'stages', pa.stages.length, pb.stages.length);
  add('knobs', 'flash', pa.workload?.flash, pb.workload?.flash);
  add('knobs', 'gradDtype', pa.workload?.gradDtype, pb.workload?.gradDtype);
  add('knobs', 'prePost dp/tp/zero', pa.prePost ? `${pa.prePost.dp}/${pa.prePost.tp}/${pa.prePost.zero}` : undefined, pb.prePost ? `${pb.prePost.dp}/${pb.prePost.tp}/${pb.prePost.zero}` : undefined);
  const n = Math.max(pa.stages.length, pb.stages.length);
  for (let i = 0; i < n; i++) {
    const sa = pa.stages[i];
    const sb = pb.stages[i];
    const sec = `stage ${i}`;
    add(sec, 'layers', sa && `${sa.layers[0]}-${sa.layers[1]}`, sb && `${sb.layers[0]}-${sb.layers[1]}`);
    add(sec, 'gpus', sa && `${sa.nodes}×${sa.gpusPerNode}`, sb && `${sb.nodes}×${sb.gpusPerNode}`);
    add(sec, 'dp', sa?.dp, sb?.dp);
    add(sec, 'tp', sa?.tp, sb?.tp);
    add(sec, 'microBatch', sa?.microBatch, sb?.microBatch);
    add(sec, 'zero', sa?.zero, sb?.zero);
    add(sec, 'ckpt', sa && ckptText(sa.ckpt), sb && ckptText(sb.ckpt));
    const off = (s: typeof sa) => s && [s.offload.weights, s.offload.grads, s.offload.optimizer, s.offload.activations].join('/');
    add(sec, 'offload w/g/o/a', off(sa), off(sb));
    const qa = pa.predicted?.stages?.[i];
    const qb = pb.predicted?.stages?.[i];
    add(sec, 'stable s', qa?.stableSeconds, qb?.stableSeconds);
    add(sec, 'delta s', qa?.deltaSeconds, qb?.deltaSeconds);
    add(sec, 'peak GiB', qa && (qa.peakMemoryBytes / GiB).toFixed(2), qb && (qb.peakMemoryBytes / GiB).toFixed(2));
  }
  add('predicted', 'fits', a.fits === null ? undefined : a.fits ? 'yes' : 'no', b.fits === null ? undefined : b.fits ? 'yes' : 'no');
  add('predicted', 'iteration s', a.iterationSeconds, b.iterationSeconds);
  add('predicted', 'tokens/s', a.tokensPerSecond === null ? null : Math.round(a.tokensPerSecond), b.tokensPerSecond === null ? null : Math.round(b.tokensPerSecond));
  add('predicted', 'MFU', a.mfu === null ? null : fmt.pct(a.mfu), b.mfu === null ? null : fmt.pct(b.mfu));
  add('tuner', 'solver', a.solver, b.solver);
  add('tuner', 'status', a.status, b.status);
  add('tuner', 'seconds', a.tunerSeconds, b.tunerSeconds);
  return rows;
}

function formatCompare(a: StoredPlan, b: StoredPlan, rows: CompareRow[]): string {
  const out: string[][] = [['', 'FIELD', `A: ${a.id}`, `B: ${b.id}`]];
  let section = '';
  for (const r of rows) {
    if (r.section !== section) {
      section = r.section;
      out.push(['', `[${section}]`, '', '']);
    }
    out.push([r.differs ? '*' : '', r.field, r.a, r.b]);
  }
  const diffs = rows.filter((r) => r.differs && r.field !== 'created').length;
  const lines = [table(out), '', `${diffs} difference${diffs === 1 ? '' : 's'} (marked *)`];
  if (a.iterationSeconds && b.iterationSeconds) {
    const r = a.iterationSeconds / b.iterationSeconds;
    lines.push(r >= 1 ? `B is ${r.toFixed(2)}× faster than A (predicted)` : `A is ${(1 / r).toFixed(2)}× faster than B (predicted)`);
  }
  return lines.join('\n');
}
