/**
 * PostgreSQL backend (production): a pg Pool on a postgres:// URL (MIST_DB). JSON columns are JSONB, times
 * TIMESTAMPTZ. `?schema=NAME` on the URL (or the `schema` option) puts every table in that schema (created when
 * missing) by setting the connections' search_path; tests use it to isolate themselves.
 */
import pg from 'pg';
import { MistError } from '../../../protocol/src/errors.js';
import { ConstraintError, type Db, type Driver, type Row } from './driver.js';
import { SqlStore } from './sql-store.js';
import type { OpenStoreOptions, Store } from './store.js';

/** PostgreSQL's limit on bind parameters in one statement is 65,535. */
const MAX_PARAMS = 60_000;

export async function openPostgresStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const { connectionString, schema: urlSchema, shown } = parseUrl(url);
  const schema = opts.schema ?? urlSchema;
  if (schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new MistError('BAD_INPUT', `schema: "${schema}" is not a plain identifier; valid: letters, digits and _, at most 63`);
  }
  const location = schema ? `${shown} (schema ${schema})` : shown;
  const pool = new pg.Pool({
    connectionString,
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  // An idle client that loses its connection must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  const driver = new PostgresDriver(pool, location);
  if (schema) {
    try {
      await driver.exec(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw e;
    }
  }
  return SqlStore.open(driver);
}

/** Splits our `schema` parameter off the URL and hides the password for messages. */
function parseUrl(url: string): { connectionString: string; schema?: string; shown: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new MistError('BAD_INPUT', `MIST_DB: "${url.replace(/:[^:@/]*@/, ':***@')}" is not a valid postgres:// URL`);
  }
  const schema = u.searchParams.get('schema') ?? undefined;
  u.searchParams.delete('schema');
  const connectionString = u.toString();
  if (u.password) u.password = '***';
  return { connectionString, schema, shown: u.toString() };
}

/** `?` → `$1, $2, ...` (our SQL has no `?` inside literals). */
function numbered(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

class PostgresDriver implements Driver {
  readonly dialect = 'postgres' as const;
  readonly jsonAsText = false;

  constructor(
    private readonly pool: pg.Pool,
    readonly location: string,
  ) {}

  all(sql: string, params?: readonly unknown[]): Promise<Row[]> {
    return this.on(this.pool, sql, params).then((r) => r.rows);
  }

  run(sql: string, params?: readonly unknown[]): Promise<number> {
    return this.on(this.pool, sql, params).then((r) => r.rowCount ?? 0);
  }

  async exec(sql: string): Promise<void> {
    await this.guard(() => this.pool.query(sql));
  }

  insertMany(table: string, columns: readonly string[], casts: readonly string[], rows: ReadonlyArray<readonly unknown[]>, suffix?: string): Promise<number> {
    return this.tx((db) => db.insertMany(table, columns, casts, rows, suffix));
  }

  async tx<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    const client = await this.guard(() => this.pool.connect());
    let broken: unknown;
    try {
      await this.guard(() => client.query('BEGIN'));
      const db: Db = {
        all: (sql, params) => this.on(client, sql, params).then((r) => r.rows),
        run: (sql, params) => this.on(client, sql, params).then((r) => r.rowCount ?? 0),
        exec: async (sql) => void (await this.guard(() => client.query(sql))),
        insertMany: (table, columns, casts, rows, suffix) => this.insertManyOn(client, table, columns, casts, rows, suffix),
      };
      const out = await fn(db);
      await this.guard(() => client.query('COMMIT'));
      return out;
    } catch (e) {
      await client.query('ROLLBACK').catch((err: unknown) => {
        broken = err;
      });
      throw e;
    } finally {
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  async lockForMigration(db: Db): Promise<void> {
    await db.all("SELECT pg_advisory_xact_lock(hashtext('mist.schema_migrations:' || current_schema()))");
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private on(q: pg.Pool | pg.PoolClient, sql: string, params: readonly unknown[] = []): Promise<pg.QueryResult<Row>> {
    return this.guard(() => q.query<Row>(numbered(sql), params as unknown[]));
  }

  private async insertManyOn(client: pg.PoolClient, table: string, columns: readonly string[], casts: readonly string[], rows: ReadonlyArray<readonly unknown[]>, suffix = ''): Promise<number> {
    const per = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
    let n = 0;
    for (let start = 0; start < rows.length; start += per) {
      const chunk = rows.slice(start, start + per);
      const params: unknown[] = [];
      const tuples = chunk.map((r) => {
        const base = params.length;
        params.push(...r);
        return `(${r.map((_, i) => `$${base + i + 1}::${casts[i] ?? 'text'}`).join(', ')})`;
      });
      const res = await this.guard(() => client.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')} ${suffix}`, params));
      n += res.rowCount ?? 0;
    }
    return n;
  }

  /** Translates pg errors into constraint kinds and MistErrors. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const code = String((e as { code?: string }).code ?? '');
      const message = (e as Error).message;
      if (code === '23505') throw new ConstraintError('unique', message);
      if (code === '23503') throw new ConstraintError('foreign', message);
      if (code === '40001' || code === '40P01') throw new MistError('CONFLICT', `PostgreSQL aborted a concurrent transaction (${message}); retry`, { cause: e });
      if (/^(08|53|57P0)/.test(code) || /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|EPIPE)$/.test(code) || /timeout exceeded when trying to connect|Connection terminated/i.test(message)) {
        throw new MistError('UNAVAILABLE', `PostgreSQL at ${this.location} did not answer (${code || message}); retry later`, { cause: e });
      }
      if (code === '3D000' || code === '28000' || code === '28P01') throw new MistError('UNAVAILABLE', `PostgreSQL at ${this.location}: ${message}`, { cause: e, retryable: false });
      throw e;
    }
  }
}
