/**
 * The little a backend must provide for the shared store (sql-store.ts): run SQL with `?` placeholders, run a
 * function in a transaction, insert many rows, and translate its errors. Everything else is shared.
 */
import type { Dialect } from './migrations.js';

export type Row = Record<string, unknown>;

export interface Db {
  /** Rows of a query (or of a statement with RETURNING). */
  all(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
  /** Runs several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /**
   * INSERT of many rows, batched the backend's way. `casts` gives each column's PostgreSQL type (SQLite ignores it).
   * `suffix` is appended to each INSERT (e.g. ON CONFLICT DO NOTHING). Returns the number of rows inserted.
   */
  insertMany(table: string, columns: readonly string[], casts: readonly string[], rows: ReadonlyArray<readonly unknown[]>, suffix?: string): Promise<number>;
}

export interface Driver extends Db {
  readonly dialect: Dialect;
  readonly location: string;
  /** True when JSON columns come back as text (SQLite); false when the driver parses them (PostgreSQL JSONB). */
  readonly jsonAsText: boolean;
  /** Runs `fn` in one transaction (a write transaction from the start); rolls back when it throws. */
  tx<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /** Inside a transaction: serialise schema migration against other processes (PostgreSQL advisory lock). */
  lockForMigration(db: Db): Promise<void>;
  close(): Promise<void>;
}

/** A constraint the shared code turns into CONFLICT or NOT_FOUND, depending on what it was doing. */
export class ConstraintError extends Error {
  constructor(readonly kind: 'unique' | 'foreign', message: string) {
    super(message);
    this.name = 'ConstraintError';
  }
}
