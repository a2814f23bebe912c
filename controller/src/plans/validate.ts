/**
 * Input checks for the store: every malformed value is a BAD_INPUT error naming the field, so nothing half-valid
 * reaches a database (where it would fail with a driver message, or worse, be stored and read back differently).
 */
import { badInput } from '../../../protocol/src/errors.js';
import { FAILURE_CLASSES, isFailureClass, type FailureClass } from '../../../protocol/src/failure.js';

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function obj(field: string, v: unknown): Record<string, unknown> {
  if (!isObject(v)) throw badInput(field, `expected an object, got ${describe(v)}`);
  return v;
}

/** A non-empty string of at most `max` characters without control characters. */
export function str(field: string, v: unknown, max = 256): string {
  if (typeof v !== 'string' || v.length === 0) throw badInput(field, `expected a non-empty string, got ${describe(v)}`);
  if (v.length > max) throw badInput(field, `is ${v.length} characters long`, `at most ${max}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) throw badInput(field, 'contains control characters');
  return v;
}

/** Free text (messages): any string without NUL, at most `max` characters. */
export function text(field: string, v: unknown, max = 64 * 1024): string {
  if (typeof v !== 'string') throw badInput(field, `expected a string, got ${describe(v)}`);
  if (v.length > max) throw badInput(field, `is ${v.length} characters long`, `at most ${max}`);
  if (v.includes('\u0000')) throw badInput(field, 'contains a NUL character');
  return v;
}

export function int(field: string, v: unknown, opts: { min?: number; max?: number } = {}): number {
  const min = opts.min ?? Number.MIN_SAFE_INTEGER;
  const max = opts.max ?? Number.MAX_SAFE_INTEGER;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw badInput(field, `expected an integer in ${min}..${max}, got ${describe(v)}`);
  }
  return v;
}

/** An int4 column (PostgreSQL INTEGER). */
export function int32(field: string, v: unknown, min = 0): number {
  return int(field, v, { min, max: 2_147_483_647 });
}

export function num(field: string, v: unknown, opts: { min?: number } = {}): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badInput(field, `expected a finite number, got ${describe(v)}`);
  if (opts.min !== undefined && v < opts.min) throw badInput(field, `expected a number ≥ ${opts.min}, got ${v}`);
  return v;
}

/** A Date (or an ISO-8601 string) in years 0..9999, so that ISO strings sort as time. */
export function date(field: string, v: unknown): Date {
  const d = v instanceof Date ? v : typeof v === 'string' && /^\d{4}-\d\d-\d\d/.test(v) ? new Date(v) : undefined;
  if (!d || Number.isNaN(d.getTime())) throw badInput(field, `expected a Date, got ${describe(v)}`);
  const y = d.getUTCFullYear();
  if (y < 0 || y > 9999) throw badInput(field, `year ${y} is out of range`, 'valid: 0..9999');
  return d;
}

export function optional<T>(v: unknown, check: (v: unknown) => T): T | undefined {
  return v === undefined ? undefined : check(v);
}

export function failureClass(field: string, v: unknown): FailureClass {
  if (!isFailureClass(v)) throw badInput(field, `unknown failure class ${describe(v)}`, `valid: ${FAILURE_CLASSES.join(', ')}`);
  return v;
}

export function oneOf<T extends string>(field: string, v: unknown, choices: readonly T[]): T {
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) throw badInput(field, `unknown value ${describe(v)}`, `valid: ${choices.join(', ')}`);
  return v as T;
}

/**
 * A value that survives JSON storage unchanged: null, booleans, finite numbers, strings without NUL (PostgreSQL
 * JSONB rejects \u0000), arrays and plain objects of those. Object keys whose value is undefined are dropped
 * (as JSON.stringify does). Returns the JSON text.
 */
export function json(field: string, v: unknown): string {
  checkJson(field, v, 0);
  return JSON.stringify(v);
}

function checkJson(path: string, v: unknown, depth: number): void {
  if (depth > 200) throw badInput(path, 'is nested too deeply', 'at most 200 levels');
  if (v === null || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw badInput(path, `${v} is not representable in JSON`, 'use a finite number or null');
    return;
  }
  if (typeof v === 'string') {
    if (v.includes('\u0000')) throw badInput(path, 'contains a NUL character');
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      if (x === undefined) throw badInput(`${path}[${i}]`, 'is undefined', 'use null');
      checkJson(`${path}[${i}]`, x, depth + 1);
    });
    return;
  }
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) throw badInput(path, `expected plain JSON, got ${describe(v)}`);
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (k.includes('\u0000')) throw badInput(path, 'has a key with a NUL character');
      if (x !== undefined) checkJson(`${path}.${k}`, x, depth + 1);
    }
    return;
  }
  throw badInput(path, `expected a JSON value, got ${describe(v)}`);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (v instanceof Date) return 'an invalid Date';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'number') return String(v);
  if (typeof v === 'object') return (v as object).constructor?.name ? `a ${(v as object).constructor.name}` : 'an object';
  return `a ${typeof v}`;
}

export function arr(field: string, v: unknown): unknown[] {
  if (!Array.isArray(v)) throw badInput(field, `expected an array, got ${describe(v)}`);
  return v;
}

/** Any JSON value, but present. */
export function present(field: string, v: unknown): unknown {
  if (v === undefined) throw badInput(field, 'is required');
  return v;
}
