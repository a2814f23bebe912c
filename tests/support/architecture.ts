/**
 * The one-way import rules of docs/architecture.md, as code: a test runs `checkRepo()` and fails on any
 * violation. Rules are checked on the TypeScript sources (static `import`/`export … from` and dynamic `import()`).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, posix, relative, resolve, sep } from 'node:path';

export interface Violation {
  file: string;
  line: number;
  rule: string;
  detail: string;
}

/** Modules that must stay pure: no I/O, no clock, no randomness unless passed in (DESIGN.md §1). */
const PURE = ['controller/src/tuner/', 'controller/src/scheduler/', 'controller/src/calibration/'];

interface Rule {
  name: string;
  /** Applies to files under this prefix. */
  from: string;
  /** Returns a reason when importing `target` (repo-relative path, or `pkg:name` for packages) is forbidden. */
  forbid(target: string): string | null;
}

const RULES: Rule[] = [
  {
    name: 'protocol-imports-nothing',
    from: 'protocol/',
    forbid: (t) => (t.startsWith('pkg:') || t.startsWith('protocol/') ? null : 'protocol/ imports nothing from the rest of the repo'),
  },
  {
    name: 'agent-never-imports-controller',
    from: 'agent/',
    forbid: (t) => (t.startsWith('controller/') ? 'agent/ never imports controller/' : null),
  },
  ...PURE.map((prefix) => ({
    name: 'pure-modules',
    from: prefix,
    forbid: (t: string) => {
      if (t.startsWith('pkg:node:') || t.startsWith('pkg:fs') || t.startsWith('pkg:child_process')) return `${prefix} is pure: no Node built-ins (${t.slice(4)})`;
      if (t.startsWith('pkg:')) return null;
      const ok = ['controller/src/domain/', 'controller/src/tuner/', 'protocol/src/errors'];
      if (prefix === 'controller/src/scheduler/') ok.push('controller/src/scheduler/');
      if (prefix === 'controller/src/calibration/') ok.push('controller/src/calibration/');
      return ok.some((p) => t.startsWith(p)) ? null : `${prefix} may import only domain/, tuner/ and protocol errors (got ${t})`;
    },
  })),
  {
    name: 'domain-is-plain',
    from: 'controller/src/domain/',
    forbid: (t) => (t.startsWith('pkg:node:') ? 'domain/ holds plain types and pure helpers: no Node built-ins' : t.startsWith('controller/src/') && !t.startsWith('controller/src/domain/') ? 'domain/ imports nothing else of the controller' : null),
  },
];

/** Inside pure modules these tokens read the clock or randomness. */
const IMPURE_CALLS = [/\bDate\.now\s*\(/, /\bnew Date\s*\(/, /\bMath\.random\s*\(/, /\bperformance\.now\s*\(/, /\bprocess\./, /\bsetTimeout\s*\(/, /\bsetInterval\s*\(/];

/** NATS names are built only by the typed builders of protocol/src/subjects.ts. */
const SUBJECTS_FILE = 'protocol/src/subjects.ts';
const SUBJECT_LITERAL = /['"`](?:mist\.v1\.[^'"`]*|MIST_REPORTS|mist_agents)['"`]/;

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;

function toPosix(p: string): string {
  return p.split(sep).join(posix.sep);
}

export function listSources(root: string, dirs: string[]): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
    }
  };
  for (const d of dirs) walk(join(root, d));
  return out;
}

/** Checks one file's text; `file` is repo-relative with forward slashes. */
export function checkSource(file: string, text: string): Violation[] {
  const violations: Violation[] = [];
  const lineOf = (index: number) => text.slice(0, index).split('\n').length;
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec) continue;
    const target = spec.startsWith('.')
      ? toPosix(posix.normalize(posix.join(posix.dirname(file), spec))).replace(/\.js$/, '')
      : `pkg:${spec}`;
    for (const rule of RULES) {
      if (!file.startsWith(rule.from)) continue;
      const why = rule.forbid(target);
      if (why) violations.push({ file, line: lineOf(m.index ?? 0), rule: rule.name, detail: why });
    }
  }
  if (PURE.some((p) => file.startsWith(p))) {
    const code = text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/\/\/[^\n]*/g, '');
    for (const re of IMPURE_CALLS) {
      const m = re.exec(code);
      if (m) violations.push({ file, line: lineOf(m.index), rule: 'pure-modules', detail: `pure module uses ${m[0].trim()} (clock, randomness or process state must be passed in)` });
    }
  }
  if (file !== SUBJECTS_FILE) {
    const m = SUBJECT_LITERAL.exec(text);
    if (m) violations.push({ file, line: lineOf(m.index), rule: 'subjects-in-one-file', detail: `NATS subject, stream or bucket literal ${m[0]} outside ${SUBJECTS_FILE}: use its typed builders` });
  }
  return violations;
}

export function checkRepo(root: string): Violation[] {
  const files = listSources(root, ['protocol/src', 'controller/src', 'agent/src']);
  return files.flatMap((f) => checkSource(toPosix(relative(resolve(root), f)), readFileSync(f, 'utf8')));
}

