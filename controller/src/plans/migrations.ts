/**
 * Schema migrations, one list for both backends. The SQL is shared; the few type names that differ are written
 * as placeholders and rendered per dialect:
 *
 *   {JSON}    TEXT (SQLite)                          JSONB (PostgreSQL)
 *   {TIME}    TEXT, ISO-8601 UTC with milliseconds   TIMESTAMPTZ
 *   {BOOL}    INTEGER 0/1                            BOOLEAN
 *   {FLOAT}   REAL                                   DOUBLE PRECISION
 *   {SERIAL}  INTEGER PRIMARY KEY AUTOINCREMENT      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY
 *
 * Applied versions are recorded in `schema_migrations`; opening a store applies the missing ones in order inside
 * one transaction (PostgreSQL: under an advisory lock, so concurrent openers do not race), so opening is idempotent.
 * Never edit a released migration: append a new one.
 */
export type Dialect = 'sqlite' | 'postgres';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'tables',
    sql: `
CREATE TABLE plans (
  id                TEXT PRIMARY KEY,
  created_at        {TIME} NOT NULL,
  job               TEXT,
  model             TEXT,
  arch              TEXT NOT NULL,
  layers            INTEGER NOT NULL,
  hidden            INTEGER NOT NULL,
  gpu               TEXT NOT NULL,
  nodes             INTEGER NOT NULL,
  gpus_per_node     INTEGER NOT NULL,
  gpus              INTEGER NOT NULL,
  global_batch      INTEGER NOT NULL,
  seq_len           INTEGER NOT NULL,
  stages            INTEGER NOT NULL,
  space             TEXT NOT NULL,
  solver            TEXT,
  status            TEXT,
  tuner_seconds     {FLOAT},
  fits              {BOOL},
  iteration_seconds {FLOAT},
  tokens_per_second {FLOAT},
  mfu               {FLOAT},
  has_record        {BOOL} NOT NULL,
  plan              {JSON} NOT NULL
);
CREATE TABLE plan_records (
  plan_id TEXT PRIMARY KEY REFERENCES plans(id) ON DELETE CASCADE,
  record  {JSON} NOT NULL
);
CREATE TABLE jobs (
  name       TEXT PRIMARY KEY,
  spec       {JSON} NOT NULL,
  priority   INTEGER NOT NULL,
  phase      TEXT NOT NULL,
  status     {JSON},
  version    INTEGER NOT NULL,
  created_at {TIME} NOT NULL,
  updated_at {TIME} NOT NULL
);
CREATE INDEX jobs_phase ON jobs (phase, priority, created_at);
CREATE TABLE attempts (
  job           TEXT NOT NULL REFERENCES jobs(name) ON DELETE CASCADE,
  attempt       INTEGER NOT NULL,
  plan_id       TEXT NOT NULL,
  started_at    {TIME} NOT NULL,
  ended_at      {TIME},
  outcome       TEXT,
  failure_class TEXT,
  message       TEXT,
  PRIMARY KEY (job, attempt)
);
CREATE TABLE profiles (
  job               TEXT NOT NULL,
  attempt           INTEGER NOT NULL,
  node              TEXT NOT NULL,
  rank              INTEGER NOT NULL,
  step              INTEGER NOT NULL,
  stage             INTEGER,
  loss              {FLOAT},
  step_seconds      {FLOAT} NOT NULL,
  forward_seconds   {JSON},
  backward_seconds  {JSON},
  peak_memory_bytes BIGINT,
  tokens            BIGINT,
  at                {TIME} NOT NULL,
  PRIMARY KEY (job, attempt, node, rank, step)
);
CREATE TABLE events (
  id      {SERIAL},
  job     TEXT NOT NULL,
  type    TEXT NOT NULL,
  reason  TEXT NOT NULL,
  message TEXT NOT NULL,
  at      {TIME} NOT NULL
);
CREATE INDEX events_job ON events (job, at, id);
CREATE TABLE calibrations (
  id        {SERIAL},
  cluster   TEXT NOT NULL,
  gpu       TEXT NOT NULL,
  params    {JSON} NOT NULL,
  fitted_at {TIME} NOT NULL,
  from_jobs {JSON} NOT NULL,
  score     {JSON}
);
CREATE INDEX calibrations_latest ON calibrations (cluster, gpu, fitted_at, id);
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value BIGINT NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'plan-query-indexes',
    // One index per filter `mist plans` and the API offer, each ending in the newest-first order so that
    // "filter + newest N" reads N index entries.
    sql: `
CREATE INDEX plans_newest    ON plans (created_at, id);
CREATE INDEX plans_model_gpu ON plans (model, gpu, created_at, id);
CREATE INDEX plans_gpu       ON plans (gpu, created_at, id);
CREATE INDEX plans_gpus      ON plans (gpus, created_at, id);
CREATE INDEX plans_space     ON plans (space, created_at, id);
CREATE INDEX plans_job       ON plans (job, created_at, id);
`,
  },
  {
    version: 3,
    name: 'plan-fastest-index',
    // Covers "model + gpu, fastest N": the ranking reads only this index; the N rows are fetched by id after.
    sql: `
CREATE INDEX plans_model_gpu_fastest ON plans (model, gpu, fits, iteration_seconds, created_at, id);
`,
  },
];

const TYPES: Record<Dialect, Record<string, string>> = {
  sqlite: { JSON: 'TEXT', TIME: 'TEXT', BOOL: 'INTEGER', FLOAT: 'REAL', SERIAL: 'INTEGER PRIMARY KEY AUTOINCREMENT' },
  postgres: { JSON: 'JSONB', TIME: 'TIMESTAMPTZ', BOOL: 'BOOLEAN', FLOAT: 'DOUBLE PRECISION', SERIAL: 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY' },
};

export function render(sql: string, dialect: Dialect): string {
  return sql.replace(/\{([A-Z]+)\}/g, (m, name: string) => {
    const t = TYPES[dialect][name];
    if (!t) throw new Error(`migration placeholder ${m} is unknown`);
    return t;
  });
}

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at {TIME} NOT NULL
)`;

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
