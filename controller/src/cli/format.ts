/** Human-readable renderings for the terminal (the --json forms print the objects themselves). */
import type { Plan } from '../domain/plan.js';

const GiB = 1024 ** 3;

/** A stage's checkpointing: "none", "selective", "pointwise", "full", "last 3", "last 3 + pointwise"; "-" when absent. */
export function ckptText(c: { mode?: unknown; count?: unknown; others?: unknown } | undefined | null): string {
  if (!c || typeof c.mode !== 'string') return '-';
  if (c.mode !== 'layers') return c.mode;
  return `last ${String(c.count ?? 0)}${typeof c.others === 'string' ? ` + ${c.others}` : ''}`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

export function formatPrediction(plan: Plan): string {
  const p = plan.predicted;
  const c = plan.cluster;
  const head = `${plan.model.name ?? plan.model.arch} (${plan.model.layers} layers, hidden ${plan.model.hidden}) on ${c.nodes}×${c.gpusPerNode} ${c.gpu}; global batch ${plan.globalBatch}, seq ${plan.seqLen}, ${plan.gradAccum} micro-batches per iteration`;
  const rows = [['stage', 'layers', 'dp', 'tp', 'mb', 'zero', 'ckpt', 'offload w/g/o/a', 'backward', 'stable s', 'delta s', 'peak GiB']];
  plan.stages.forEach((s, i) => {
    const ps = p?.stages[i];
    rows.push([
      String(i),
      `${s.layers[0]}-${s.layers[1]}`,
      String(s.dp),
      String(s.tp),
      String(s.microBatch),
      String(s.zero),
      ckptText(s.ckpt),
      [s.offload.weights, s.offload.grads, s.offload.optimizer, s.offload.activations].join('/'),
      s.splitBackward ? 'split' : 'whole',
      ps ? ps.stableSeconds.toFixed(4) : '-',
      ps ? ps.deltaSeconds.toFixed(4) : '-',
      ps ? (ps.peakMemoryBytes / GiB).toFixed(2) : '-',
    ]);
  });
  const lines = [head, '', table(rows), ''];
  if (p) {
    lines.push(`iteration ${p.iterationSeconds.toFixed(3)} s · ${Math.round(p.tokensPerSecond).toLocaleString('en-US')} tokens/s · MFU ${(100 * p.mfu).toFixed(1)}%`);
    lines.push(p.fits ? 'fits: yes' : `fits: NO — ${p.reason ?? ''}`);
  }
  return lines.join('\n');
}
