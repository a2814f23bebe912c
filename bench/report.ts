/** Shared by the benches: `--json` prints one JSON document on stdout; progress and tables go to stderr then. */
export const wantJson = process.argv.includes('--json');

/** A line for people: stdout normally, stderr under --json so stdout stays one JSON document. */
export function say(line = ''): void {
  (wantJson ? process.stderr : process.stdout).write(line + '\n');
}

export function emitJson(doc: unknown): void {
  if (wantJson) process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}
