/**
 * `npm run bench:validate`: predicts every validation case (the fully specified Mist L4 plans and the
 * Megatron-Core H100 table) with the default hardware catalog, no profiling, and prints predicted vs published
 * per case and, per set, the median absolute error raw and after removing the mean offset (Mist's own accuracy
 * metric shifts every prediction by the mean (measured − predicted) before comparing; mist.md §8.5).
 */
import { DpSolver } from '../controller/src/tuner/dp-solver.js';
import { hardwareFor } from '../controller/src/tuner/hardware.js';
import { predictPlan, validatePlan } from '../controller/src/tuner/predict.js';
import { tune } from '../controller/src/tuner/search.js';
import { VALIDATION_CASES } from './validation-cases.js';
import { emitJson, median, say, table } from './report.js';

interface Row {
  name: string;
  set: string;
  predictedSeconds: number;
  publishedSeconds: number;
  errorRaw: number;
  errorAfterOffset?: number;
  fits: boolean;
  reason: string | null;
  mfu: number;
  assumptions: string[];
}

const rows: Row[] = [];
for (const c of VALIDATION_CASES) {
  validatePlan(c.plan);
  const p = predictPlan(c.plan, hardwareFor(c.plan.cluster.gpu));
  const pub = c.published.iterationSeconds;
  rows.push({
    name: c.name,
    set: c.set,
    predictedSeconds: p.iterationSeconds,
    publishedSeconds: pub,
    errorRaw: (p.iterationSeconds - pub) / pub,
    fits: p.fits,
    reason: p.reason,
    mfu: p.mfu,
    assumptions: c.assumptions,
  });
}

const sets = [...new Set(rows.map((r) => r.set))];
const summary = sets.map((set) => {
  const rs = rows.filter((r) => r.set === set);
  // Mist's metric: shift by the mean offset (measured − predicted), then compare.
  const offset = rs.reduce((a, r) => a + (r.publishedSeconds - r.predictedSeconds), 0) / rs.length;
  for (const r of rs) r.errorAfterOffset = (r.predictedSeconds + offset - r.publishedSeconds) / r.publishedSeconds;
  // A relative variant too: the offset as a mean ratio, which suits sets whose times span orders of magnitude.
  const ratio = Math.exp(rs.reduce((a, r) => a + Math.log(r.publishedSeconds / r.predictedSeconds), 0) / rs.length);
  return {
    set,
    cases: rs.length,
    medianAbsErrorRaw: median(rs.map((r) => Math.abs(r.errorRaw))),
    meanOffsetSeconds: offset,
    medianAbsErrorAfterOffset: median(rs.map((r) => Math.abs(r.errorAfterOffset ?? NaN))),
    meanRatio: ratio,
    medianAbsErrorAfterRatio: median(rs.map((r) => Math.abs((r.predictedSeconds * ratio - r.publishedSeconds) / r.publishedSeconds))),
    doesNotFit: rs.filter((r) => !r.fits).map((r) => r.name),
  };
});

const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`);
for (const set of sets) {
  say(`\n${set}`);
  const t = [['case', 'predicted s', 'published s', 'error', 'after offset', 'MFU', 'fits']];
  for (const r of rows.filter((x) => x.set === set)) t.push([r.name, r.predictedSeconds.toFixed(3), r.publishedSeconds.toFixed(3), pct(r.errorRaw), pct(r.errorAfterOffset), `${(100 * r.mfu).toFixed(1)}%`, r.fits ? 'yes' : 'NO']);
  say(table(t));
  const s = summary.find((x) => x.set === set)!;
  say(`median |error|: raw ${(100 * s.medianAbsErrorRaw).toFixed(1)}%, after removing the mean offset (${s.meanOffsetSeconds.toFixed(3)} s) ${(100 * s.medianAbsErrorAfterOffset).toFixed(1)}%, after removing the mean ratio (×${s.meanRatio.toFixed(3)}) ${(100 * s.medianAbsErrorAfterRatio).toFixed(1)}%`);
  if (s.doesNotFit.length) say(`predicted not to fit: ${s.doesNotFit.join(', ')}`);
}
const assumptions = rows.filter((r) => r.assumptions.length);
if (assumptions.length) {
  say('\nassumptions where the source does not publish a setting:');
  for (const r of assumptions) say(`- ${r.name}: ${r.assumptions.join('; ')}`);
}
// The Megatron-Core rows publish TP/PP/DP but not the micro-batch or recompute setting: also report the best plan
// the `megatron` space reaches under the published TP/PP/DP, i.e. what Megatron-LM could have run there.
const bestMegatron: Array<{ name: string; publishedSeconds: number; bestSeconds: number | null; error: number | null; knobs: string }> = [];
const solver = new DpSolver();
const notes: string[] = [];
for (const c of VALIDATION_CASES.filter((x) => x.set === 'megatron-h100')) {
  const s0 = c.plan.stages[0];
  const r = await tune(
    {
      model: c.plan.model,
      cluster: c.plan.cluster,
      hw: hardwareFor(c.plan.cluster.gpu),
      globalBatch: c.plan.globalBatch,
      seqLen: c.plan.seqLen,
      workload: c.plan.workload,
      space: 'megatron',
      pins: { tp: s0.tp, pp: c.plan.stages.length, dp: s0.dp },
      baselines: false,
    },
    { solver, now: () => 0 },
  );
  const p = r.plan;
  const best = p?.predicted?.iterationSeconds ?? null;
  const knobs = p ? `mb ${p.stages[0].microBatch}, G ${p.gradAccum}, ckpt ${p.stages[0].ckpt.mode}${p.stages[0].ckpt.count ? ' ' + p.stages[0].ckpt.count : ''}, zero ${p.stages[0].zero}` : 'none in the space (see below)';
  if (!p) notes.push(`${c.name}: ${r.infeasible?.reason ?? 'no plan'}`);
  bestMegatron.push({ name: c.name, publishedSeconds: c.published.iterationSeconds, bestSeconds: best, error: best === null ? null : (best - c.published.iterationSeconds) / c.published.iterationSeconds, knobs });
}
if (bestMegatron.length) {
  say('\nbest `megatron`-space plan under the published TP/PP/DP (same cost model)');
  const t = [['case', 'best s', 'published s', 'error', 'knobs chosen']];
  for (const b of bestMegatron) t.push([b.name, b.bestSeconds === null ? '-' : b.bestSeconds.toFixed(3), b.publishedSeconds.toFixed(3), pct(b.error ?? undefined), b.knobs]);
  say(table(t));
  const errs = bestMegatron.filter((b) => b.error !== null).map((b) => Math.abs(b.error as number));
  say(`median |error| of the best megatron-space plan: ${(100 * median(errs)).toFixed(1)}%`);
  for (const n of notes) say(`- ${n}`);
}

const goal = 0.15;
const met = summary.every((s) => s.medianAbsErrorRaw <= goal);
say(`\ngoal: raw median |error| ≤ ${100 * goal}% on each set with the default catalog — ${met ? 'met' : 'NOT met'}: ${summary.map((s) => `${s.set} ${(100 * s.medianAbsErrorRaw).toFixed(1)}%`).join(', ')}`);
emitJson({ cases: rows, sets: summary, bestMegatronUnderPublishedLayout: bestMegatron, goal: { medianAbsErrorRaw: goal, met } });
