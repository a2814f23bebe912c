/**
 * Runtimes: the admin-defined list of what an agent may run (DESIGN.md §5). A job names a runtime; it cannot
 * supply a command. The list is a JSON file:
 *
 *   { "runtimes": { "reference": { "argv": ["{python}", "-u", "/opt/mist/agent/runtime/torch/train.py", "--plan", "{planFile}"] } } }
 *
 * Placeholders, substituted per rank (whole or inside an argument): {python} (MIST_PYTHON or /usr/bin/python3),
 * {node} (this Node binary), {planFile}, {stateDir}, {rankDir}, {job}, {attempt}, {rank}, {localRank}, {node_name}.
 * An unknown placeholder is an error when the file is loaded.
 */
import { readFileSync } from 'node:fs';
import { MistError } from '../../protocol/src/errors.js';

export interface RuntimeSpec {
  argv: string[];
  /** Working directory; defaults to the rank directory. Placeholders allowed. */
  cwd?: string;
}

export type RuntimeTable = Record<string, RuntimeSpec>;

export const PLACEHOLDERS = ['python', 'node', 'planFile', 'stateDir', 'rankDir', 'job', 'attempt', 'rank', 'localRank', 'node_name'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];
const KNOWN = new Set<string>(PLACEHOLDERS);
const PLACEHOLDER_RE = /\{([A-Za-z_]+)\}/g;

function checkTemplate(where: string, s: unknown): string {
  if (typeof s !== 'string') throw new MistError('BAD_INPUT', `${where}: must be a string`);
  for (const m of s.matchAll(PLACEHOLDER_RE)) {
    if (!KNOWN.has(m[1]!)) throw new MistError('BAD_INPUT', `${where}: unknown placeholder {${m[1]}}; valid: ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`);
  }
  return s;
}

/** Validates a parsed runtimes document. */
export function parseRuntimes(doc: unknown, source = 'runtimes'): RuntimeTable {
  const root = (doc as { runtimes?: unknown } | null)?.runtimes;
  if (!root || typeof root !== 'object' || Array.isArray(root)) throw new MistError('BAD_INPUT', `${source}: expected {"runtimes": {NAME: {"argv": [...]}}}`);
  const out: RuntimeTable = {};
  for (const [name, spec] of Object.entries(root as Record<string, unknown>)) {
    const s = spec as { argv?: unknown; cwd?: unknown };
    if (!Array.isArray(s?.argv) || s.argv.length === 0) throw new MistError('BAD_INPUT', `${source}: runtimes.${name}.argv must be a non-empty array of strings`);
    const argv = s.argv.map((a, i) => checkTemplate(`${source}: runtimes.${name}.argv[${i}]`, a));
    out[name] = s.cwd === undefined ? { argv } : { argv, cwd: checkTemplate(`${source}: runtimes.${name}.cwd`, s.cwd) };
  }
  return out;
}

export function loadRuntimes(file: string): RuntimeTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new MistError('BAD_INPUT', `--runtimes ${file}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new MistError('BAD_INPUT', `--runtimes ${file}: not JSON (${(e as Error).message})`);
  }
  return parseRuntimes(doc, `--runtimes ${file}`);
}

/** The argv of one rank: every placeholder replaced. */
export function expandArgv(spec: RuntimeSpec, values: Record<Placeholder, string>): { argv: string[]; cwd?: string } {
  const sub = (s: string) => s.replace(PLACEHOLDER_RE, (_, k: string) => values[k as Placeholder]);
  return spec.cwd === undefined ? { argv: spec.argv.map(sub) } : { argv: spec.argv.map(sub), cwd: sub(spec.cwd) };
}
