/**
 * The controller's durable store (DESIGN.md §1 plans/, §5): plan history plus everything the controller must not
 * lose — jobs, attempts, runtime profiles, events, calibrations and the controller epoch. One async interface,
 * two backends: SQLite (default; a file under MIST_STATE_DIR, WAL mode) and PostgreSQL (production). Both are the
 * same code over a thin driver (sql-store.ts), built from one list of schema migrations (migrations.ts).
 *
 * Conventions: dates go in and come out as `Date`; JSON values (specs, statuses, decision records, calibration
 * parameters) round-trip by value (SQLite TEXT, PostgreSQL JSONB — PostgreSQL may reorder object keys); optional
 * input fields that were absent are absent on read. `get*` returns null for an unknown key; updates of an unknown
 * key throw NOT_FOUND. Malformed input is BAD_INPUT naming the field; a lost optimistic-concurrency race is
 * CONFLICT (retryable); an unreachable or busy database is UNAVAILABLE (retryable).
 */
import { join } from 'node:path';
import type { FailureClass } from '../../../protocol/src/failure.js';
import type { Plan } from '../domain/plan.js';

/** One row of plan history without the Plan itself: what `mist plans` lists and the API pages through. */
export interface PlanSummary {
  id: string;
  createdAt: Date;
  /** The job the plan was made for; null for ad-hoc `mist plan` runs. */
  job: string | null;
  /** Preset name (plan.model.name); null when the plan gave explicit dims without a name. */
  model: string | null;
  arch: string;
  layers: number;
  hidden: number;
  gpu: string;
  nodes: number;
  gpusPerNode: number;
  /** nodes × gpusPerNode. */
  gpus: number;
  globalBatch: number;
  seqLen: number;
  /** Pipeline stages in the plan. */
  stages: number;
  /** The search space that found the plan (mist, megatron, megatron-paper, deepspeed, exhaustive, ...). */
  space: string;
  /** plan.tuner.solver / .status / .seconds when the tuner filled them. */
  solver: string | null;
  status: string | null;
  tunerSeconds: number | null;
  /** plan.predicted.* when predicted; null otherwise. */
  fits: boolean | null;
  iterationSeconds: number | null;
  tokensPerSecond: number | null;
  mfu: number | null;
  /** Whether a decision record was stored with the plan (getDecisionRecord). */
  hasRecord: boolean;
}

export interface StoredPlan extends PlanSummary {
  plan: Plan;
}

export interface SavePlanOptions {
  job?: string;
  /** The tuner's decision record (frontiers, alternatives, baselines): arbitrary JSON, stored apart from the row. */
  record?: unknown;
  /** Default: now. */
  createdAt?: Date;
}

export interface PlanFilter {
  model?: string;
  gpu?: string;
  gpus?: number;
  space?: string;
  job?: string;
  /** createdAt ≥ since. */
  since?: Date;
  /** createdAt < until. */
  until?: Date;
  /** Default 100, at most 10,000. */
  limit?: number;
  offset?: number;
  /** newest (default): createdAt descending. fastest: feasible plans first, by predicted iteration time. */
  order?: 'newest' | 'fastest';
}

export interface NewJob {
  name: string;
  /** The job spec (JSON). */
  spec: unknown;
  /** Default 0; higher runs first. */
  priority?: number;
  /** Default 'Pending'. */
  phase?: string;
  /** Default: now. */
  createdAt?: Date;
}

export interface JobRecord {
  name: string;
  spec: unknown;
  priority: number;
  phase: string;
  /** The controller's status object (JSON); null until the first update sets one. */
  status: unknown;
  /** Optimistic-concurrency version: 1 on create, +1 on every update. */
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface JobPatch {
  status?: unknown;
  phase?: string;
  spec?: unknown;
}

export interface NewAttempt {
  job: string;
  /** 0, 1, 2, ... (restarts). */
  attempt: number;
  planId: string;
  startedAt: Date;
}

export interface AttemptEnd {
  endedAt: Date;
  /** e.g. succeeded, failed, cancelled. */
  outcome: string;
  failureClass?: FailureClass;
  message?: string;
}

export interface AttemptRecord {
  job: string;
  attempt: number;
  planId: string;
  startedAt: Date;
  endedAt: Date | null;
  outcome: string | null;
  failureClass: FailureClass | null;
  message: string | null;
}

/** One rank's report for one training step. (job, attempt, node, rank, step) identifies it. */
export interface ProfileRow {
  job: string;
  attempt: number;
  node: string;
  rank: number;
  stage?: number;
  step: number;
  loss?: number;
  stepSeconds: number;
  forwardSeconds?: number[];
  backwardSeconds?: number[];
  peakMemoryBytes?: number;
  tokens?: number;
  at: Date;
}

export type EventType = 'Normal' | 'Warning';

export interface JobEvent {
  job: string;
  type: EventType;
  /** CamelCase reason, as Kubernetes events (e.g. Planned, Launched, Failed). */
  reason: string;
  message: string;
  at: Date;
}

export interface Calibration {
  cluster: string;
  gpu: string;
  /** Hardware/cost-model parameter overrides (JSON). */
  params: unknown;
  fittedAt: Date;
  fromJobs: string[];
  /** Fit quality (JSON), e.g. error before/after. */
  score?: unknown;
}

export interface Store {
  readonly backend: 'sqlite' | 'postgres';
  /** The file path, or the PostgreSQL URL without its password (and the schema, when one was given). */
  readonly location: string;
  /** The highest applied schema migration. */
  schemaVersion(): Promise<number>;

  // plans
  savePlan(plan: Plan, opts?: SavePlanOptions): Promise<PlanSummary>;
  /** Many plans in one transaction (imports, benchmarks). */
  savePlans(items: ReadonlyArray<{ plan: Plan } & SavePlanOptions>): Promise<number>;
  getPlan(id: string): Promise<StoredPlan | null>;
  getDecisionRecord(id: string): Promise<unknown>;
  queryPlans(filter?: PlanFilter): Promise<PlanSummary[]>;

  // jobs
  createJob(job: NewJob): Promise<JobRecord>;
  getJob(name: string): Promise<JobRecord | null>;
  listJobs(filter?: { phase?: string }): Promise<JobRecord[]>;
  updateJob(name: string, expectedVersion: number, patch: JobPatch): Promise<JobRecord>;
  /** Deletes the job with its attempts, profiles and events (plan history stays). False when there was none. */
  deleteJob(name: string): Promise<boolean>;

  // attempts
  recordAttempt(attempt: NewAttempt): Promise<AttemptRecord>;
  finishAttempt(job: string, attempt: number, end: AttemptEnd): Promise<AttemptRecord>;
  listAttempts(job: string): Promise<AttemptRecord[]>;

  // profiles
  /** Inserts the rows that are new; duplicates by (job, attempt, node, rank, step) are ignored. Returns how many were new. */
  appendProfiles(rows: ReadonlyArray<ProfileRow>): Promise<number>;
  listProfiles(job: string, opts?: { attempt?: number }): Promise<ProfileRow[]>;

  // events
  appendEvent(event: JobEvent): Promise<void>;
  /** Oldest first; with a limit, the latest `limit` events (still oldest first). */
  listEvents(job: string, opts?: { limit?: number }): Promise<JobEvent[]>;

  // calibrations
  saveCalibration(calibration: Calibration): Promise<void>;
  latestCalibration(cluster: string, gpu: string): Promise<Calibration | null>;

  // meta
  /** Atomically increments and returns the controller epoch: durable, monotonic, distinct across concurrent callers. */
  nextEpoch(): Promise<number>;

  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** PostgreSQL only: use (and create when missing) this schema instead of the connection's default search_path. */
  schema?: string;
  /** Where the default SQLite file lives; default MIST_STATE_DIR or .mist/. */
  stateDir?: string;
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** The database `openStore()` uses: the argument, else MIST_DB, else <MIST_STATE_DIR or .mist/>/mist.db. */
export function resolveDbLocation(url?: string, opts: { stateDir?: string } = {}): string {
  const given = url ?? process.env.MIST_DB;
  if (given !== undefined && given.trim() !== '') return given.trim();
  const dir = opts.stateDir ?? (process.env.MIST_STATE_DIR?.trim() || '.mist');
  return join(dir, 'mist.db');
}

/** Opens (and migrates) the store: PostgreSQL for a postgres:// URL, SQLite for anything else (a path, or sqlite:PATH). */
export async function openStore(url?: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const location = resolveDbLocation(url, opts);
  if (isPostgresUrl(location)) {
    const { openPostgresStore } = await import('./postgres.js');
    return openPostgresStore(location, opts);
  }
  const { openSqliteStore } = await import('./sqlite.js');
  return openSqliteStore(location.replace(/^sqlite:(\/\/)?/i, ''));
}
