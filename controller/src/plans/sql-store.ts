/**
 * The Store, once, over a Driver (sqlite.ts, postgres.ts). SQL here is portable between SQLite ≥ 3.35 and
 * PostgreSQL ≥ 12: `?` placeholders (the PostgreSQL driver numbers them), ON CONFLICT, RETURNING, NULLS LAST.
 * Parameters are plain: dates as ISO strings, booleans as 0/1, JSON as text.
 */
import { MistError } from '../../../protocol/src/errors.js';
import type { FailureClass } from '../../../protocol/src/failure.js';
import type { Plan } from '../domain/plan.js';
import { ConstraintError, type Db, type Driver, type Row } from './driver.js';
import { LATEST_VERSION, MIGRATIONS, MIGRATIONS_TABLE, render } from './migrations.js';
import type {
  AttemptEnd,
  AttemptRecord,
  Calibration,
  JobEvent,
  JobPatch,
  JobRecord,
  NewAttempt,
  NewJob,
  PlanFilter,
  PlanSummary,
  ProfileRow,
  SavePlanOptions,
  Store,
  StoredPlan,
} from './store.js';
import * as v from './validate.js';

const SUMMARY_COLUMNS = [
  'id', 'created_at', 'job', 'model', 'arch', 'layers', 'hidden', 'gpu', 'nodes', 'gpus_per_node', 'gpus', 'global_batch',
  'seq_len', 'stages', 'space', 'solver', 'status', 'tuner_seconds', 'fits', 'iteration_seconds', 'tokens_per_second', 'mfu',
  'has_record',
] as const;
const SUMMARY_CASTS = [
  'text', 'timestamptz', 'text', 'text', 'text', 'integer', 'integer', 'text', 'integer', 'integer', 'integer', 'integer',
  'integer', 'integer', 'text', 'text', 'text', 'float8', 'boolean', 'float8', 'float8', 'float8', 'boolean',
] as const;
const PLAN_COLUMNS = [...SUMMARY_COLUMNS, 'plan'];
const PLAN_CASTS = [...SUMMARY_CASTS, 'jsonb'];
const SUMMARY_SELECT = SUMMARY_COLUMNS.join(', ');

const PROFILE_COLUMNS = ['job', 'attempt', 'node', 'rank', 'step', 'stage', 'loss', 'step_seconds', 'forward_seconds', 'backward_seconds', 'peak_memory_bytes', 'tokens', 'at'];
const PROFILE_CASTS = ['text', 'integer', 'text', 'integer', 'integer', 'integer', 'float8', 'float8', 'jsonb', 'jsonb', 'bigint', 'bigint', 'timestamptz'];

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 10_000;
const NAME_MAX = 253;

/** The summary columns of one plan, in SUMMARY_COLUMNS order, plus its JSON text. */
interface PlanRow {
  values: unknown[];
  planJson: string;
  recordJson: string | undefined;
  id: string;
  job: string | null;
}

export class SqlStore implements Store {
  readonly backend: 'sqlite' | 'postgres';
  readonly location: string;
  private closed = false;

  private constructor(private readonly d: Driver) {
    this.backend = d.dialect;
    this.location = d.location;
  }

  /** Wraps a driver, applying any missing migrations first. */
  static async open(driver: Driver): Promise<SqlStore> {
    try {
      await migrate(driver);
    } catch (e) {
      await driver.close().catch(() => undefined);
      throw e;
    }
    return new SqlStore(driver);
  }

  async schemaVersion(): Promise<number> {
    const rows = await this.db().all('SELECT MAX(version) AS v FROM schema_migrations');
    return Number(rows[0]?.v ?? 0);
  }

  // ---- plans ----

  async savePlan(plan: Plan, opts: SavePlanOptions = {}): Promise<PlanSummary> {
    const row = planRow(plan, opts, 'plan');
    const d = this.db();
    try {
      await this.d.tx(async (db) => insertPlans(db, [row]));
    } catch (e) {
      if (!(e instanceof ConstraintError && e.kind === 'unique')) throw e;
      // The same decision saved twice (a retried write) is fine; a different plan under the same id is not.
      const existing = await d.all('SELECT plan, job FROM plans WHERE id = ?', [row.id]);
      const same = existing[0] && canonical(this.json(existing[0].plan)) === canonical(JSON.parse(row.planJson)) && (existing[0].job ?? null) === row.job;
      if (!same) throw new MistError('CONFLICT', `plan ${row.id} already exists with different content; plan ids must be unique per tuner decision`, { retryable: false });
    }
    const saved = await d.all(`SELECT ${SUMMARY_SELECT} FROM plans WHERE id = ?`, [row.id]);
    return this.summary(saved[0]!);
  }

  async savePlans(items: ReadonlyArray<{ plan: Plan } & SavePlanOptions>): Promise<number> {
    v.arr('items', items);
    const rows = items.map((it, i) => planRow(it?.plan, it ?? {}, `items[${i}].plan`));
    try {
      return await this.d.tx(async (db) => insertPlans(db, rows));
    } catch (e) {
      if (e instanceof ConstraintError && e.kind === 'unique') throw new MistError('CONFLICT', `a plan id in the batch already exists (${e.message}); nothing was saved`, { retryable: false });
      throw e;
    }
  }

  async getPlan(id: string): Promise<StoredPlan | null> {
    v.str('id', id);
    const rows = await this.db().all(`SELECT ${SUMMARY_SELECT}, plan FROM plans WHERE id = ?`, [id]);
    if (!rows[0]) return null;
    return { ...this.summary(rows[0]), plan: this.json(rows[0].plan) as Plan };
  }

  async getDecisionRecord(id: string): Promise<unknown> {
    v.str('id', id);
    const rows = await this.db().all('SELECT record FROM plan_records WHERE plan_id = ?', [id]);
    return rows[0] ? this.json(rows[0].record) : null;
  }

  async queryPlans(filter: PlanFilter = {}): Promise<PlanSummary[]> {
    const f = v.obj('filter', filter);
    const where: string[] = [];
    const params: unknown[] = [];
    const eq = (col: string, field: keyof PlanFilter, check: (x: unknown) => unknown) => {
      if (f[field] === undefined) return;
      where.push(`${col} = ?`);
      params.push(check(f[field]));
    };
    eq('model', 'model', (x) => v.str('filter.model', x));
    eq('gpu', 'gpu', (x) => v.str('filter.gpu', x));
    eq('gpus', 'gpus', (x) => v.int32('filter.gpus', x, 1));
    eq('space', 'space', (x) => v.str('filter.space', x));
    eq('job', 'job', (x) => v.str('filter.job', x, NAME_MAX));
    if (f.since !== undefined) {
      where.push('created_at >= ?');
      params.push(v.date('filter.since', f.since).toISOString());
    }
    if (f.until !== undefined) {
      where.push('created_at < ?');
      params.push(v.date('filter.until', f.until).toISOString());
    }
    const limit = f.limit === undefined ? DEFAULT_LIMIT : v.int('filter.limit', f.limit, { min: 1, max: MAX_LIMIT });
    const offset = f.offset === undefined ? 0 : v.int('filter.offset', f.offset, { min: 0 });
    const order = f.order === undefined ? 'newest' : v.oneOf('filter.order', f.order, ['newest', 'fastest'] as const);
    const orderBy =
      order === 'newest'
        ? 'created_at DESC, id DESC'
        : 'CASE WHEN fits THEN 0 ELSE 1 END, iteration_seconds ASC NULLS LAST, created_at DESC, id DESC';
    const whereSql = where.length ? ' WHERE ' + where.join(' AND ') : '';
    // fastest ranks the whole filtered set: rank ids first (from an index where one covers the filter), then
    // fetch only the page's rows.
    const sql =
      order === 'newest'
        ? `SELECT ${SUMMARY_SELECT} FROM plans${whereSql} ORDER BY ${orderBy} LIMIT ? OFFSET ?`
        : `SELECT ${SUMMARY_SELECT} FROM plans WHERE id IN (SELECT id FROM plans${whereSql} ORDER BY ${orderBy} LIMIT ? OFFSET ?) ORDER BY ${orderBy}`;
    const rows = await this.db().all(sql, [...params, limit, offset]);
    return rows.map((r) => this.summary(r));
  }

  // ---- jobs ----

  async createJob(job: NewJob): Promise<JobRecord> {
    const j = v.obj('job', job);
    const name = v.str('job.name', j.name, NAME_MAX);
    const spec = v.json('job.spec', v.present('job.spec', j.spec));
    const priority = j.priority === undefined ? 0 : v.int32('job.priority', j.priority, -2_147_483_648);
    const phase = j.phase === undefined ? 'Pending' : v.str('job.phase', j.phase, 64);
    const createdAt = j.createdAt === undefined ? new Date() : v.date('job.createdAt', j.createdAt);
    const at = createdAt.toISOString();
    try {
      const rows = await this.db().all(
        'INSERT INTO jobs (name, spec, priority, phase, status, version, created_at, updated_at) VALUES (?, ?, ?, ?, NULL, 1, ?, ?) RETURNING *',
        [name, spec, priority, phase, at, at],
      );
      return this.job(rows[0]!);
    } catch (e) {
      if (e instanceof ConstraintError && e.kind === 'unique') throw new MistError('CONFLICT', `job ${name} already exists`, { retryable: false });
      throw e;
    }
  }

  async getJob(name: string): Promise<JobRecord | null> {
    v.str('name', name, NAME_MAX);
    const rows = await this.db().all('SELECT * FROM jobs WHERE name = ?', [name]);
    return rows[0] ? this.job(rows[0]) : null;
  }

  async listJobs(filter: { phase?: string } = {}): Promise<JobRecord[]> {
    const f = v.obj('filter', filter);
    const rows =
      f.phase === undefined
        ? await this.db().all('SELECT * FROM jobs ORDER BY created_at, name')
        : await this.db().all('SELECT * FROM jobs WHERE phase = ? ORDER BY created_at, name', [v.str('filter.phase', f.phase, 64)]);
    return rows.map((r) => this.job(r));
  }

  async updateJob(name: string, expectedVersion: number, patch: JobPatch): Promise<JobRecord> {
    v.str('name', name, NAME_MAX);
    v.int('expectedVersion', expectedVersion, { min: 1 });
    const p = v.obj('patch', patch);
    const sets: string[] = [];
    const params: unknown[] = [];
    if (p.status !== undefined) {
      sets.push('status = ?');
      params.push(p.status === null ? null : v.json('patch.status', p.status));
    }
    if (p.phase !== undefined) {
      sets.push('phase = ?');
      params.push(v.str('patch.phase', p.phase, 64));
    }
    if (p.spec !== undefined) {
      sets.push('spec = ?');
      params.push(v.json('patch.spec', p.spec));
    }
    sets.push('version = version + 1', 'updated_at = ?');
    params.push(new Date().toISOString());
    const rows = await this.db().all(`UPDATE jobs SET ${sets.join(', ')} WHERE name = ? AND version = ? RETURNING *`, [...params, name, expectedVersion]);
    if (rows[0]) return this.job(rows[0]);
    const now = await this.db().all('SELECT version FROM jobs WHERE name = ?', [name]);
    if (!now[0]) throw new MistError('NOT_FOUND', `job ${name} does not exist`);
    throw new MistError('CONFLICT', `job ${name} is at version ${Number(now[0].version)}, not ${expectedVersion}: a concurrent update won; re-read and retry`);
  }

  async deleteJob(name: string): Promise<boolean> {
    v.str('name', name, NAME_MAX);
    return this.d.tx(async (db) => {
      await db.run('DELETE FROM attempts WHERE job = ?', [name]);
      await db.run('DELETE FROM profiles WHERE job = ?', [name]);
      await db.run('DELETE FROM events WHERE job = ?', [name]);
      return (await db.run('DELETE FROM jobs WHERE name = ?', [name])) > 0;
    });
  }

  // ---- attempts ----

  async recordAttempt(attempt: NewAttempt): Promise<AttemptRecord> {
    const a = v.obj('attempt', attempt);
    const job = v.str('attempt.job', a.job, NAME_MAX);
    const n = v.int32('attempt.attempt', a.attempt);
    const planId = v.str('attempt.planId', a.planId);
    const startedAt = v.date('attempt.startedAt', a.startedAt);
    try {
      const rows = await this.db().all('INSERT INTO attempts (job, attempt, plan_id, started_at) VALUES (?, ?, ?, ?) RETURNING *', [job, n, planId, startedAt.toISOString()]);
      return this.attempt(rows[0]!);
    } catch (e) {
      if (e instanceof ConstraintError && e.kind === 'foreign') throw new MistError('NOT_FOUND', `job ${job} does not exist`);
      if (e instanceof ConstraintError) throw new MistError('CONFLICT', `attempt ${n} of job ${job} is already recorded`, { retryable: false });
      throw e;
    }
  }

  async finishAttempt(job: string, attempt: number, end: AttemptEnd): Promise<AttemptRecord> {
    v.str('job', job, NAME_MAX);
    v.int32('attempt', attempt);
    const e = v.obj('end', end);
    const endedAt = v.date('end.endedAt', e.endedAt);
    const outcome = v.str('end.outcome', e.outcome, 64);
    const failureClass = v.optional(e.failureClass, (x) => v.failureClass('end.failureClass', x)) ?? null;
    const message = v.optional(e.message, (x) => v.text('end.message', x)) ?? null;
    const rows = await this.db().all(
      'UPDATE attempts SET ended_at = ?, outcome = ?, failure_class = ?, message = ? WHERE job = ? AND attempt = ? AND ended_at IS NULL RETURNING *',
      [endedAt.toISOString(), outcome, failureClass, message, job, attempt],
    );
    if (rows[0]) return this.attempt(rows[0]);
    const now = await this.db().all('SELECT outcome FROM attempts WHERE job = ? AND attempt = ?', [job, attempt]);
    if (!now[0]) throw new MistError('NOT_FOUND', `attempt ${attempt} of job ${job} does not exist`);
    throw new MistError('CONFLICT', `attempt ${attempt} of job ${job} already finished (${String(now[0].outcome)})`, { retryable: false });
  }

  async listAttempts(job: string): Promise<AttemptRecord[]> {
    v.str('job', job, NAME_MAX);
    const rows = await this.db().all('SELECT * FROM attempts WHERE job = ? ORDER BY attempt', [job]);
    return rows.map((r) => this.attempt(r));
  }

  // ---- profiles ----

  async appendProfiles(rows: ReadonlyArray<ProfileRow>): Promise<number> {
    v.arr('rows', rows);
    const values = rows.map((row, i) => profileValues(row, `rows[${i}]`));
    if (!values.length) return 0;
    return this.d.tx((db) => db.insertMany('profiles', PROFILE_COLUMNS, PROFILE_CASTS, values, 'ON CONFLICT DO NOTHING'));
  }

  async listProfiles(job: string, opts: { attempt?: number } = {}): Promise<ProfileRow[]> {
    v.str('job', job, NAME_MAX);
    const o = v.obj('opts', opts);
    const cols = PROFILE_COLUMNS.join(', ');
    const rows =
      o.attempt === undefined
        ? await this.db().all(`SELECT ${cols} FROM profiles WHERE job = ? ORDER BY attempt, step, node, rank`, [job])
        : await this.db().all(`SELECT ${cols} FROM profiles WHERE job = ? AND attempt = ? ORDER BY attempt, step, node, rank`, [job, v.int32('opts.attempt', o.attempt)]);
    return rows.map((r) => this.profile(r));
  }

  // ---- events ----

  async appendEvent(event: JobEvent): Promise<void> {
    const e = v.obj('event', event);
    await this.db().run('INSERT INTO events (job, type, reason, message, at) VALUES (?, ?, ?, ?, ?)', [
      v.str('event.job', e.job, NAME_MAX),
      v.oneOf('event.type', e.type, ['Normal', 'Warning'] as const),
      v.str('event.reason', e.reason, 128),
      v.text('event.message', e.message),
      v.date('event.at', e.at).toISOString(),
    ]);
  }

  async listEvents(job: string, opts: { limit?: number } = {}): Promise<JobEvent[]> {
    v.str('job', job, NAME_MAX);
    const o = v.obj('opts', opts);
    const rows =
      o.limit === undefined
        ? await this.db().all('SELECT job, type, reason, message, at FROM events WHERE job = ? ORDER BY at, id', [job])
        : await this.db().all(
            'SELECT job, type, reason, message, at FROM (SELECT id, job, type, reason, message, at FROM events WHERE job = ? ORDER BY at DESC, id DESC LIMIT ?) AS latest ORDER BY at, id',
            [job, v.int('opts.limit', o.limit, { min: 1, max: MAX_LIMIT })],
          );
    return rows.map((r) => ({ job: String(r.job), type: r.type as JobEvent['type'], reason: String(r.reason), message: String(r.message), at: this.date(r.at) }));
  }

  // ---- calibrations ----

  async saveCalibration(calibration: Calibration): Promise<void> {
    const c = v.obj('calibration', calibration);
    const cluster = v.str('calibration.cluster', c.cluster);
    const gpu = v.str('calibration.gpu', c.gpu);
    const params = v.json('calibration.params', v.present('calibration.params', c.params));
    const fittedAt = v.date('calibration.fittedAt', c.fittedAt);
    v.arr('calibration.fromJobs', c.fromJobs).forEach((j, i) => v.str(`calibration.fromJobs[${i}]`, j, NAME_MAX));
    const score = c.score === undefined ? null : v.json('calibration.score', c.score);
    await this.db().run('INSERT INTO calibrations (cluster, gpu, params, fitted_at, from_jobs, score) VALUES (?, ?, ?, ?, ?, ?)', [
      cluster,
      gpu,
      params,
      fittedAt.toISOString(),
      JSON.stringify(c.fromJobs),
      score,
    ]);
  }

  async latestCalibration(cluster: string, gpu: string): Promise<Calibration | null> {
    v.str('cluster', cluster);
    v.str('gpu', gpu);
    const rows = await this.db().all(
      'SELECT cluster, gpu, params, fitted_at, from_jobs, score FROM calibrations WHERE cluster = ? AND gpu = ? ORDER BY fitted_at DESC, id DESC LIMIT 1',
      [cluster, gpu],
    );
    const r = rows[0];
    if (!r) return null;
    const out: Calibration = { cluster: String(r.cluster), gpu: String(r.gpu), params: this.json(r.params), fittedAt: this.date(r.fitted_at), fromJobs: this.json(r.from_jobs) as string[] };
    if (r.score !== null && r.score !== undefined) out.score = this.json(r.score);
    return out;
  }

  // ---- meta ----

  async nextEpoch(): Promise<number> {
    const rows = await this.db().all(
      "INSERT INTO meta (key, value) VALUES ('epoch', 1) ON CONFLICT (key) DO UPDATE SET value = meta.value + 1 RETURNING value",
    );
    return Number(rows[0]!.value);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.d.close();
  }

  // ---- row mapping ----

  private db(): Db {
    if (this.closed) throw new MistError('UNAVAILABLE', `the store at ${this.location} is closed`, { retryable: false });
    return this.d;
  }

  private json(x: unknown): unknown {
    return this.d.jsonAsText && typeof x === 'string' ? (JSON.parse(x) as unknown) : x;
  }

  private date(x: unknown): Date {
    return x instanceof Date ? x : new Date(String(x));
  }

  private summary(r: Row): PlanSummary {
    return {
      id: String(r.id),
      createdAt: this.date(r.created_at),
      job: nullable(r.job, String),
      model: nullable(r.model, String),
      arch: String(r.arch),
      layers: Number(r.layers),
      hidden: Number(r.hidden),
      gpu: String(r.gpu),
      nodes: Number(r.nodes),
      gpusPerNode: Number(r.gpus_per_node),
      gpus: Number(r.gpus),
      globalBatch: Number(r.global_batch),
      seqLen: Number(r.seq_len),
      stages: Number(r.stages),
      space: String(r.space),
      solver: nullable(r.solver, String),
      status: nullable(r.status, String),
      tunerSeconds: nullable(r.tuner_seconds, Number),
      fits: nullable(r.fits, Boolean),
      iterationSeconds: nullable(r.iteration_seconds, Number),
      tokensPerSecond: nullable(r.tokens_per_second, Number),
      mfu: nullable(r.mfu, Number),
      hasRecord: Boolean(r.has_record),
    };
  }

  private job(r: Row): JobRecord {
    return {
      name: String(r.name),
      spec: this.json(r.spec),
      priority: Number(r.priority),
      phase: String(r.phase),
      status: r.status === null || r.status === undefined ? null : this.json(r.status),
      version: Number(r.version),
      createdAt: this.date(r.created_at),
      updatedAt: this.date(r.updated_at),
    };
  }

  private attempt(r: Row): AttemptRecord {
    return {
      job: String(r.job),
      attempt: Number(r.attempt),
      planId: String(r.plan_id),
      startedAt: this.date(r.started_at),
      endedAt: r.ended_at === null || r.ended_at === undefined ? null : this.date(r.ended_at),
      outcome: nullable(r.outcome, String),
      failureClass: nullable(r.failure_class, String) as FailureClass | null,
      message: nullable(r.message, String),
    };
  }

  private profile(r: Row): ProfileRow {
    const p: ProfileRow = { job: String(r.job), attempt: Number(r.attempt), node: String(r.node), rank: Number(r.rank), step: Number(r.step), stepSeconds: Number(r.step_seconds), at: this.date(r.at) };
    if (r.stage !== null) p.stage = Number(r.stage);
    if (r.loss !== null) p.loss = Number(r.loss);
    if (r.forward_seconds !== null) p.forwardSeconds = this.json(r.forward_seconds) as number[];
    if (r.backward_seconds !== null) p.backwardSeconds = this.json(r.backward_seconds) as number[];
    if (r.peak_memory_bytes !== null) p.peakMemoryBytes = Number(r.peak_memory_bytes);
    if (r.tokens !== null) p.tokens = Number(r.tokens);
    // Keep the documented field order (stage before step) for readers that print rows.
    const { job, attempt, node, rank, stage, step, loss, stepSeconds, forwardSeconds, backwardSeconds, peakMemoryBytes, tokens, at } = p;
    return dropUndefined({ job, attempt, node, rank, stage, step, loss, stepSeconds, forwardSeconds, backwardSeconds, peakMemoryBytes, tokens, at }) as unknown as ProfileRow;
  }
}

/** JSON text with object keys sorted (PostgreSQL JSONB does not keep key order). */
function canonical(x: unknown): string {
  return JSON.stringify(x, (_k, val: unknown) =>
    v.isObject(val) ? Object.fromEntries(Object.keys(val).sort().map((k) => [k, val[k]])) : val,
  );
}

function nullable<T>(x: unknown, f: (x: unknown) => T): T | null {
  return x === null || x === undefined ? null : f(x);
}

function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

async function insertPlans(db: Db, rows: PlanRow[]): Promise<number> {
  const n = await db.insertMany('plans', PLAN_COLUMNS, PLAN_CASTS, rows.map((r) => [...r.values, r.planJson]));
  const records = rows.filter((r) => r.recordJson !== undefined).map((r) => [r.id, r.recordJson]);
  if (records.length) await db.insertMany('plan_records', ['plan_id', 'record'], ['text', 'jsonb'], records);
  return n;
}

/** Validates a plan and derives its summary row. */
function planRow(plan: unknown, opts: SavePlanOptions, field: string): PlanRow {
  const p = v.obj(field, plan);
  const o = v.obj('opts', opts);
  const id = v.str(`${field}.id`, p.id, 200);
  v.int(`${field}.version`, p.version, { min: 1 });
  const space = v.str(`${field}.space`, p.space, 64);
  const model = v.obj(`${field}.model`, p.model);
  const cluster = v.obj(`${field}.cluster`, p.cluster);
  const name = v.optional(model.name, (x) => v.str(`${field}.model.name`, x, 128)) ?? null;
  const arch = v.str(`${field}.model.arch`, model.arch, 64);
  const layers = v.int32(`${field}.model.layers`, model.layers, 1);
  const hidden = v.int32(`${field}.model.hidden`, model.hidden, 1);
  const gpu = v.str(`${field}.cluster.gpu`, cluster.gpu, 64);
  const nodes = v.int32(`${field}.cluster.nodes`, cluster.nodes, 1);
  const gpusPerNode = v.int32(`${field}.cluster.gpusPerNode`, cluster.gpusPerNode, 1);
  const gpus = v.int32(`${field}.cluster`, nodes * gpusPerNode, 1);
  const globalBatch = v.int32(`${field}.globalBatch`, p.globalBatch, 1);
  const seqLen = v.int32(`${field}.seqLen`, p.seqLen, 1);
  const stages = v.arr(`${field}.stages`, p.stages);
  const planJson = v.json(field, p);
  const tuner = v.isObject(p.tuner) ? p.tuner : {};
  const pred = v.isObject(p.predicted) ? p.predicted : undefined;
  const finite = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  const job = v.optional(o.job, (x) => v.str('opts.job', x, NAME_MAX)) ?? null;
  const createdAt = o.createdAt === undefined ? new Date() : v.date('opts.createdAt', o.createdAt);
  const recordJson = o.record === undefined ? undefined : v.json('opts.record', o.record);
  const values = [
    id,
    createdAt.toISOString(),
    job,
    name,
    arch,
    layers,
    hidden,
    gpu,
    nodes,
    gpusPerNode,
    gpus,
    globalBatch,
    seqLen,
    stages.length,
    space,
    typeof tuner.solver === 'string' ? tuner.solver : null,
    typeof tuner.status === 'string' ? tuner.status : null,
    finite(tuner.seconds),
    pred && typeof pred.fits === 'boolean' ? (pred.fits ? 1 : 0) : null,
    pred ? finite(pred.iterationSeconds) : null,
    pred ? finite(pred.tokensPerSecond) : null,
    pred ? finite(pred.mfu) : null,
    recordJson === undefined ? 0 : 1,
  ];
  return { values, planJson, recordJson, id, job };
}

function profileValues(row: unknown, field: string): unknown[] {
  const r = v.obj(field, row);
  const seconds = (name: string, x: unknown) => {
    v.arr(`${field}.${name}`, x).forEach((s, i) => v.num(`${field}.${name}[${i}]`, s, { min: 0 }));
    return JSON.stringify(x);
  };
  return [
    v.str(`${field}.job`, r.job, NAME_MAX),
    v.int32(`${field}.attempt`, r.attempt),
    v.str(`${field}.node`, r.node),
    v.int32(`${field}.rank`, r.rank),
    v.int32(`${field}.step`, r.step),
    v.optional(r.stage, (x) => v.int32(`${field}.stage`, x)) ?? null,
    v.optional(r.loss, (x) => v.num(`${field}.loss`, x)) ?? null,
    v.num(`${field}.stepSeconds`, r.stepSeconds, { min: 0 }),
    v.optional(r.forwardSeconds, (x) => seconds('forwardSeconds', x)) ?? null,
    v.optional(r.backwardSeconds, (x) => seconds('backwardSeconds', x)) ?? null,
    v.optional(r.peakMemoryBytes, (x) => v.int(`${field}.peakMemoryBytes`, x, { min: 0 })) ?? null,
    v.optional(r.tokens, (x) => v.int(`${field}.tokens`, x, { min: 0 })) ?? null,
    v.date(`${field}.at`, r.at).toISOString(),
  ];
}

/** Applies the missing migrations in one transaction; refuses a database newer than this build. */
async function migrate(d: Driver): Promise<void> {
  await d.tx(async (db) => {
    await d.lockForMigration(db);
    await db.exec(render(MIGRATIONS_TABLE, d.dialect));
    const have = new Set((await db.all('SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
    const newest = Math.max(0, ...have);
    if (newest > LATEST_VERSION) {
      throw new MistError('UNSUPPORTED_VERSION', `the database at ${d.location} has schema version ${newest}; this build knows up to ${LATEST_VERSION} (upgrade mist)`);
    }
    for (const m of MIGRATIONS) {
      if (have.has(m.version)) continue;
      await db.exec(render(m.sql, d.dialect));
      await db.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, new Date().toISOString()]);
    }
  });
}
