/**
 * A small, strict parser of the Prometheus text exposition format (version 0.0.4), for tests: every line is a
 * `# HELP`, a `# TYPE`, a comment, blank, or a sample `name{label="value",…} value [timestamp]`; names and labels
 * must be valid, label values properly escaped, values numbers (or NaN/+Inf/-Inf), each family's TYPE must come
 * before its samples and appear once, and samples of one family must be contiguous. Throws with the line number.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(s: string, where: string): number {
  if (s === 'NaN') return NaN;
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (!/^[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?)$/.test(s)) throw new Error(`${where}: "${s}" is not a number`);
  return Number(s);
}

/** The family a sample belongs to: histogram/summary samples carry _bucket/_sum/_count suffixes. */
function familyOf(sample: string, families: Map<string, Family>): Family | undefined {
  const f = families.get(sample);
  if (f) return f;
  for (const suffix of ['_bucket', '_sum', '_count', '_total', '_created']) {
    if (sample.endsWith(suffix)) {
      const base = families.get(sample.slice(0, -suffix.length));
      if (base) return base;
    }
  }
  return undefined;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  let current: Family | undefined;
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name "${name}"`);
      let f = families.get(name);
      if (f && closed.has(name)) throw new Error(`${where}: ${kind} for ${name} after its samples ended`);
      if (!f) {
        if (current) closed.add(current.name);
        f = { name, type: 'untyped', help: '', samples: [] };
        families.set(name, f);
        current = f;
      }
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`${where}: unknown type "${rest}"`);
        if (f.samples.length) throw new Error(`${where}: TYPE of ${name} after its samples`);
        f.type = rest as Family['type'];
      } else f.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/.exec(line);
    if (!m) throw new Error(`${where}: not a sample: ${line.slice(0, 120)}`);
    const name = m[1]!;
    const labels: Record<string, string> = {};
    const body = m[3] ?? '';
    let j = 0;
    while (j < body.length) {
      const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,?)/.exec(body.slice(j));
      if (!lm) throw new Error(`${where}: bad label syntax in {${body.slice(0, 120)}}`);
      if (!LABEL.test(lm[1]!)) throw new Error(`${where}: bad label name ${lm[1]}`);
      if (lm[1]! in labels) throw new Error(`${where}: label ${lm[1]} twice`);
      labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      j += lm[0].length;
      if (!lm[3] && j < body.length) throw new Error(`${where}: labels must be separated by commas`);
    }
    const value = parseValue(m[4]!, where);
    const f = familyOf(name, families);
    if (!f) throw new Error(`${where}: sample ${name} has no HELP/TYPE`);
    if (f !== current) throw new Error(`${where}: samples of ${f.name} are not contiguous`);
    if (f.type === 'histogram' && name.endsWith('_bucket') && labels.le === undefined) throw new Error(`${where}: histogram bucket without le`);
    f.samples.push({ name, labels, value });
  });
  // histogram sanity: cumulative buckets ending in +Inf equal to _count
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue;
    const groups = new Map<string, Sample[]>();
    for (const s of f.samples) {
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key)!.push(le === undefined ? s : { ...s, labels: { ...rest, le } });
    }
    for (const [key, ss] of groups) {
      const buckets = ss.filter((s) => s.name.endsWith('_bucket'));
      const count = ss.find((s) => s.name === `${f.name}_count`);
      if (!buckets.length || !count) throw new Error(`${f.name}${key}: a histogram needs buckets and _count`);
      let prev = -Infinity;
      for (const b of buckets) {
        if (b.value < prev) throw new Error(`${f.name}${key}: buckets are not cumulative`);
        prev = b.value;
      }
      const inf = buckets.find((b) => b.labels.le === '+Inf');
      if (!inf || inf.value !== count.value) throw new Error(`${f.name}${key}: le="+Inf" must equal _count`);
    }
  }
  return families;
}
