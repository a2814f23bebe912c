/**
 * SQLite backend (the default): one better-sqlite3 connection to a file (default <MIST_STATE_DIR>/mist.db) in WAL
 * mode, with foreign keys on and a busy timeout so several processes may share the file. better-sqlite3 is
 * synchronous; the async Store runs its calls one at a time through a queue so that a transaction is never
 * interleaved with another caller's statements.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { MistError } from '../../../protocol/src/errors.js';
import { ConstraintError, type Db, type Driver, type Row } from './driver.js';
import { SqlStore } from './sql-store.js';
import type { Store } from './store.js';

const BUSY_TIMEOUT_MS = 10_000;

export async function openSqliteStore(path: string): Promise<Store> {
  const memory = path === ':memory:';
  let db: Database.Database;
  try {
    if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true });
    db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    if (!memory) db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
  } catch (e) {
    throw new MistError('UNAVAILABLE', `cannot open the SQLite store at ${path}: ${(e as Error).message}`, { cause: e, retryable: false });
  }
  return SqlStore.open(new SqliteDriver(db, memory ? path : resolve(path)));
}

/**
 * One queue per database file and process: better-sqlite3 blocks the thread while it waits for a lock, so two
 * connections of one process to the same file must never hold and wait at the same time (a transaction that
 * awaits would otherwise deadlock against the other connection's busy wait). Other processes wait on the lock.
 */
const QUEUES = new Map<string, { tail: Promise<unknown>; users: number }>();

class SqliteDriver implements Driver {
  readonly dialect = 'sqlite' as const;
  readonly jsonAsText = true;
  private readonly queue: { tail: Promise<unknown>; users: number };
  private readonly statements = new Map<string, Database.Statement>();
  private readonly direct: Db;

  constructor(
    private readonly db: Database.Database,
    readonly location: string,
  ) {
    const shared = location === ':memory:' ? undefined : QUEUES.get(location);
    this.queue = shared ?? { tail: Promise.resolve(), users: 0 };
    this.queue.users++;
    if (!shared && location !== ':memory:') QUEUES.set(location, this.queue);
    this.direct = {
      all: async (sql, params) => this.allNow(sql, params),
      run: async (sql, params) => this.runNow(sql, params),
      exec: async (sql) => void this.guard(() => this.db.exec(sql)),
      insertMany: async (table, columns, _casts, rows, suffix) => this.insertManyNow(table, columns, rows, suffix),
    };
  }

  all(sql: string, params?: readonly unknown[]): Promise<Row[]> {
    return this.serial(() => this.allNow(sql, params));
  }

  run(sql: string, params?: readonly unknown[]): Promise<number> {
    return this.serial(() => this.runNow(sql, params));
  }

  exec(sql: string): Promise<void> {
    return this.serial(() => void this.guard(() => this.db.exec(sql)));
  }

  insertMany(table: string, columns: readonly string[], casts: readonly string[], rows: ReadonlyArray<readonly unknown[]>, suffix?: string): Promise<number> {
    return this.tx((db) => db.insertMany(table, columns, casts, rows, suffix));
  }

  tx<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    return this.serial(async () => {
      this.guard(() => this.db.exec('BEGIN IMMEDIATE'));
      try {
        const out = await fn(this.direct);
        this.guard(() => this.db.exec('COMMIT'));
        return out;
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw e;
      }
    });
  }

  async lockForMigration(): Promise<void> {
    // BEGIN IMMEDIATE already holds the write lock.
  }

  async close(): Promise<void> {
    await this.serial(() => {
      if (!this.db.open) return;
      this.db.close();
      if (--this.queue.users === 0 && QUEUES.get(this.location) === this.queue) QUEUES.delete(this.location);
    });
  }

  /** Runs `fn` after every earlier call has finished. */
  private serial<T>(fn: () => T | Promise<T>): Promise<T> {
    const next = this.queue.tail.then(fn);
    this.queue.tail = next.catch(() => undefined);
    return next;
  }

  private prepare(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.guard(() => this.db.prepare(sql));
      if (this.statements.size > 500) this.statements.clear();
      this.statements.set(sql, s);
    }
    return s;
  }

  private allNow(sql: string, params: readonly unknown[] = []): Row[] {
    const s = this.prepare(sql);
    return this.guard(() => (s.reader ? (s.all(...params) as Row[]) : (s.run(...params), [])));
  }

  private runNow(sql: string, params: readonly unknown[] = []): number {
    const s = this.prepare(sql);
    return this.guard(() => s.run(...params).changes);
  }

  private insertManyNow(table: string, columns: readonly string[], rows: ReadonlyArray<readonly unknown[]>, suffix = ''): number {
    const s = this.prepare(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')}) ${suffix}`);
    let n = 0;
    this.guard(() => {
      for (const r of rows) n += s.run(...r).changes;
    });
    return n;
  }

  /** Translates SQLite errors into constraint kinds and MistErrors. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') throw new ConstraintError('unique', (e as Error).message);
      if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new ConstraintError('foreign', (e as Error).message);
      if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
        throw new MistError('UNAVAILABLE', `the SQLite store at ${this.location} is locked by another writer (${code}); retry`, { cause: e });
      }
      if (/^SQLITE_(CANTOPEN|IOERR|FULL|READONLY|CORRUPT|NOTADB|PERM)/.test(code)) throw new MistError('UNAVAILABLE', `SQLite store at ${this.location}: ${(e as Error).message} (${code})`, { cause: e, retryable: false });
      throw e;
    }
  }
}
