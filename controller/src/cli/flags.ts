/**
 * Strict parsing of CLI flag values: every failure is a BAD_INPUT error naming the flag and what would be valid,
 * so commands never pass NaN or a half-parsed value on.
 */
import { existsSync, readFileSync } from 'node:fs';
import { badInput } from '../../../protocol/src/errors.js';

export function intFlag(flag: string, value: unknown, opts: { min?: number; max?: number } = {}): number {
  const s = String(value).trim();
  const n = /^[+-]?\d+$/.test(s) ? Number(s) : NaN;
  const min = opts.min ?? Number.MIN_SAFE_INTEGER;
  const max = opts.max ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = opts.max === undefined ? `an integer ≥ ${min}` : `an integer in ${min}..${max}`;
    throw badInput(flag, `expected ${range}, got "${s}"`);
  }
  return n;
}

export function ratioFlag(flag: string, value: unknown): number {
  const s = String(value).trim();
  const n = s === '' ? NaN : Number(s);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw badInput(flag, `expected a ratio in [0, 1], got "${s}"`);
  return n;
}

export function choiceFlag<T extends string>(flag: string, value: unknown, choices: readonly T[]): T {
  const s = String(value).trim();
  if (!(choices as readonly string[]).includes(s)) throw badInput(flag, `unknown value "${s}"`, `valid: ${choices.join(', ')}`);
  return s as T;
}

/** Requires a flag that has no default. */
export function required<T>(flag: string, value: T | undefined): T {
  if (value === undefined || value === null || value === '') throw badInput(flag, 'is required');
  return value;
}

/** Reads a JSON document from a file path, or from stdin when the path is "-". */
export function readJsonArg(flag: string, pathOrDash: string): unknown {
  let text: string;
  if (pathOrDash === '-') {
    text = readFileSync(0, 'utf8');
  } else {
    if (!existsSync(pathOrDash)) throw badInput(flag, `no such file "${pathOrDash}"`, 'give a path to a JSON file, or - for stdin');
    text = readFileSync(pathOrDash, 'utf8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw badInput(flag, `"${pathOrDash}" is not valid JSON (${(e as Error).message})`);
  }
}

/**
 * A value that is inline JSON (starts with `{`), a path to a JSON file, or a plain name (returned as is):
 * the shape of `--model gpt3-1.3b | model.json | '{"arch":"gpt",...}'`.
 */
export function jsonOrName(flag: string, value: string): unknown {
  const v = value.trim();
  if (v.startsWith('{')) {
    try {
      return JSON.parse(v) as unknown;
    } catch (e) {
      throw badInput(flag, `inline JSON does not parse (${(e as Error).message})`);
    }
  }
  if (v.endsWith('.json') || v.includes('/')) return readJsonArg(flag, v);
  return v;
}
