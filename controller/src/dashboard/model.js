// Pure helpers of the dashboard (no DOM): formatting, the overview's device counts, the plan grid, step series,
// plan filtering/sorting/comparison, Pareto frontiers and the live protocol's bookkeeping. Unit-tested in
// tests/unit/dashboard; types in model.d.ts.

export const PHASES = ['Pending', 'Planning', 'Scheduled', 'Running', 'Restarting', 'Suspended', 'Succeeded', 'Failed', 'Cancelled'];
export const TERMINAL = new Set(['Succeeded', 'Failed', 'Cancelled']);

export function fmtNum(x, digits = 2) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  return x.toFixed(digits);
}

export function fmtSeconds(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return '–';
  if (s < 1e-3) return `${(s * 1e6).toFixed(0)} µs`;
  if (s < 1) return `${(s * 1e3).toFixed(1)} ms`;
  if (s < 120) return `${s.toFixed(2)} s`;
  if (s < 7200) return `${Math.floor(s / 60)} m ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} m`;
}

export function fmtAge(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return '–';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

export function fmtBytes(b) {
  if (b === null || b === undefined || !Number.isFinite(b)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = b;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function fmtRate(r) {
  if (r === null || r === undefined || !Number.isFinite(r)) return '–';
  if (r >= 1e6) return `${(r / 1e6).toFixed(2)} M`;
  if (r >= 1e3) return `${(r / 1e3).toFixed(1)} k`;
  return r.toFixed(0);
}

export function fmtPct(x, digits = 1) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  return `${(100 * x).toFixed(digits)}%`;
}

/** A stage's activation checkpointing ({mode: none|selective|pointwise|layers|full, count?, others?}) as text. */
export function ckptText(c) {
  if (c === undefined || c === null) return '–';
  if (typeof c === 'number') return `${c} layers`;
  if (typeof c === 'object') {
    if (c.mode === 'layers') return `last ${c.count ?? '?'}${typeof c.others === 'string' ? ` + ${c.others}` : ''}`;
    if (typeof c.mode === 'string') return c.mode;
    return JSON.stringify(c);
  }
  return String(c);
}

export function offloadText(o) {
  if (!o) return 'none';
  const parts = [];
  for (const k of ['weights', 'grads', 'optimizer', 'activations']) if (o[k] > 0) parts.push(`${k} ${Math.round(o[k] * 100)}%`);
  return parts.length ? parts.join(', ') : 'none';
}

/** "pp2 tp1 dp1 mb4 z1" for a Plan. */
export function planSummary(plan) {
  const s = plan && plan.stages && plan.stages[0];
  if (!s) return '–';
  return `pp${plan.stages.length} tp${s.tp} dp${s.dp} mb${s.microBatch} z${s.zero}`;
}

/**
 * GPUs (devices) by node and by type: total, allocated, idle. `nodes` are NodeViews, `allocations` the
 * overview's {node, device, job}.
 */
export function deviceOverview(nodes, allocations) {
  const held = new Map();
  for (const a of allocations || []) held.set(`${a.node}/${a.device}`, a.job);
  const byNode = [];
  const byType = new Map();
  const total = { total: 0, allocated: 0, idle: 0 };
  for (const n of nodes || []) {
    const row = { node: n.name, types: new Set(), total: 0, allocated: 0, idle: 0, jobs: new Set(), lost: !!n.lost, heartbeatAgeSeconds: n.heartbeatAgeSeconds };
    for (const d of n.devices || []) {
      const type = `${d.kind}:${d.model}`;
      row.types.add(type);
      const t = byType.get(type) || { type, kind: d.kind, model: d.model, total: 0, allocated: 0, idle: 0 };
      const job = held.get(`${n.name}/${d.index}`);
      row.total++;
      t.total++;
      total.total++;
      if (job !== undefined) {
        row.allocated++;
        t.allocated++;
        total.allocated++;
        row.jobs.add(job);
      } else if (!n.lost) {
        row.idle++;
        t.idle++;
        total.idle++;
      }
      byType.set(type, t);
    }
    byNode.push({ ...row, types: [...row.types], jobs: [...row.jobs] });
  }
  return { total, byNode, byType: [...byType.values()].sort((a, b) => a.type.localeCompare(b.type)) };
}

/** Counts of jobs by phase, in lifecycle order, non-zero only. */
export function phaseCounts(jobs) {
  const m = new Map();
  for (const j of jobs || []) m.set(j.phase, (m.get(j.phase) || 0) + 1);
  return [...m.entries()].sort((a, b) => PHASES.indexOf(a[0]) - PHASES.indexOf(b[0]));
}

/**
 * The plan as stages × layers: one row per stage with its layer range and knobs, plus the predicted numbers.
 * A Plan's layer ranges are inclusive [first, last]; here `last` is exclusive (first + count).
 */
export function planGrid(plan) {
  if (!plan || !Array.isArray(plan.stages)) return { layers: 0, stages: [] };
  const layers = plan.model && Number.isFinite(plan.model.layers) ? plan.model.layers : Math.max(0, ...plan.stages.map((s) => s.layers[1] + 1));
  const pred = (plan.predicted && plan.predicted.stages) || [];
  const stages = plan.stages.map((s, i) => ({
    index: i,
    first: s.layers[0],
    last: s.layers[1] + 1,
    count: s.layers[1] - s.layers[0] + 1,
    dp: s.dp,
    tp: s.tp,
    zero: s.zero,
    microBatch: s.microBatch,
    ckpt: ckptText(s.ckpt),
    offload: offloadText(s.offload),
    splitBackward: s.splitBackward === true,
    gpus: s.dp * s.tp,
    predictedSeconds: pred[i] ? pred[i].stableSeconds + pred[i].deltaSeconds : null,
    predictedMemoryBytes: pred[i] ? pred[i].peakMemoryBytes : null,
  }));
  return { layers, stages };
}

/**
 * Per step of the latest attempt: measured step time (slowest rank), loss (the last rank that reported one),
 * tokens; and the plan's predicted step time for comparison.
 */
export function stepSeries(profiles, plan) {
  const rows = profiles || [];
  const attempt = rows.reduce((m, p) => Math.max(m, p.attempt), 0);
  const bySteps = new Map();
  for (const p of rows) {
    if (p.attempt !== attempt) continue;
    const s = bySteps.get(p.step) || { step: p.step, measured: 0, loss: null, tokens: 0, memory: 0 };
    s.measured = Math.max(s.measured, p.stepSeconds);
    if (p.loss !== null && p.loss !== undefined) s.loss = p.loss;
    s.tokens = Math.max(s.tokens, p.tokens || 0);
    s.memory = Math.max(s.memory, p.peakMemoryBytes || 0);
    bySteps.set(p.step, s);
  }
  const steps = [...bySteps.values()].sort((a, b) => a.step - b.step);
  const predicted = plan && plan.predicted ? plan.predicted.iterationSeconds : null;
  return {
    attempt,
    steps: steps.map((s) => s.step),
    measured: steps.map((s) => s.measured),
    predicted: steps.map(() => predicted),
    loss: steps.map((s) => s.loss),
    memory: steps.map((s) => s.memory),
    tokens: steps.map((s) => s.tokens),
  };
}

/** Per rank of the latest attempt: node, stage, steps, mean and last step time, peak memory. */
export function rankProfiles(profiles) {
  const rows = profiles || [];
  const attempt = rows.reduce((m, p) => Math.max(m, p.attempt), 0);
  const m = new Map();
  for (const p of rows) {
    if (p.attempt !== attempt) continue;
    const r = m.get(p.rank) || { rank: p.rank, node: p.node, stage: p.stage, steps: 0, sum: 0, last: null, lastStep: -1, peak: 0 };
    r.steps++;
    r.sum += p.stepSeconds;
    if (p.step > r.lastStep) {
      r.lastStep = p.step;
      r.last = p.stepSeconds;
    }
    r.peak = Math.max(r.peak, p.peakMemoryBytes || 0);
    m.set(p.rank, r);
  }
  const out = [...m.values()].sort((a, b) => a.rank - b.rank).map((r) => ({ rank: r.rank, node: r.node, stage: r.stage, steps: r.steps, meanSeconds: r.steps ? r.sum / r.steps : null, lastSeconds: r.last, lastStep: r.lastStep, peakMemoryBytes: r.peak || null }));
  const mean = out.length ? out.reduce((s, r) => s + (r.meanSeconds || 0), 0) / out.length : 0;
  for (const r of out) r.straggler = out.length > 1 && r.meanSeconds !== null && r.meanSeconds > 1.2 * mean;
  return out;
}

/** Seconds left, from the measured mean step time of the last few steps. */
export function etaSeconds(step, totalSteps, series) {
  if (!Number.isFinite(step) || !Number.isFinite(totalSteps) || totalSteps <= step) return null;
  const recent = (series || []).filter((x) => Number.isFinite(x)).slice(-10);
  if (!recent.length) return null;
  const mean = recent.reduce((a, b) => a + b, 0) / recent.length;
  return (totalSteps - step) * mean;
}

/** Plan summaries filtered by a free-text query (any of id, job, model, gpu, space, solver, status) and sorted. */
export function filterSortPlans(plans, query, sortKey, descending) {
  const q = (query || '').trim().toLowerCase();
  const terms = q ? q.split(/\s+/) : [];
  const hay = (p) => [p.id, p.job, p.model, p.arch, p.gpu, p.space, p.solver, p.status, `${p.gpus}gpu`].filter(Boolean).join(' ').toLowerCase();
  const out = (plans || []).filter((p) => terms.every((t) => hay(p).includes(t)));
  const key = sortKey || 'createdAt';
  const dir = descending ? -1 : 1;
  out.sort((a, b) => {
    const x = a[key];
    const y = b[key];
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * dir;
  });
  return out;
}

/** Side-by-side rows of two stored plans (summary fields and per-stage knobs); `differs` marks the changes. */
export function comparePlans(a, b) {
  const pa = (a && a.plan) || {};
  const pb = (b && b.plan) || {};
  const rows = [];
  const add = (field, x, y) => rows.push({ field, a: x === undefined || x === null ? '–' : String(x), b: y === undefined || y === null ? '–' : String(y), differs: String(x) !== String(y) });
  add('job', a && a.job, b && b.job);
  add('model', a && a.model, b && b.model);
  add('GPUs', a && a.gpus, b && b.gpus);
  add('GPU type', a && a.gpu, b && b.gpu);
  add('space', a && a.space, b && b.space);
  add('shape', planSummary(pa), planSummary(pb));
  add('grad accum', pa.gradAccum, pb.gradAccum);
  add('predicted s/step', a && fmtNum(a.iterationSeconds, 4), b && fmtNum(b.iterationSeconds, 4));
  add('tokens/s', a && fmtRate(a.tokensPerSecond), b && fmtRate(b.tokensPerSecond));
  add('MFU', a && fmtPct(a.mfu), b && fmtPct(b.mfu));
  add('solver', a && a.solver, b && b.solver);
  add('status', a && a.status, b && b.status);
  add('tuning time', a && fmtSeconds(a.tunerSeconds), b && fmtSeconds(b.tunerSeconds));
  const n = Math.max((pa.stages || []).length, (pb.stages || []).length);
  for (let i = 0; i < n; i++) {
    const s = (pa.stages || [])[i];
    const t = (pb.stages || [])[i];
    const txt = (x) => (x ? `layers ${x.layers[0]}–${x.layers[1]} · dp${x.dp} tp${x.tp} mb${x.microBatch} ZeRO-${x.zero} · ckpt ${ckptText(x.ckpt)} · offload ${offloadText(x.offload)}` : '–');
    add(`stage ${i}`, txt(s), txt(t));
  }
  return rows;
}

/** Points not dominated in (x, y), both minimised; returned sorted by x. */
export function paretoFrontier(points, x = 'x', y = 'y') {
  const pts = (points || []).filter((p) => Number.isFinite(p[x]) && Number.isFinite(p[y])).slice().sort((a, b) => a[x] - b[x] || a[y] - b[y]);
  const out = [];
  let best = Infinity;
  for (const p of pts) {
    if (p[y] < best) {
      out.push(p);
      best = p[y];
    }
  }
  return out;
}

/** Applies a `jobs` delta ({upsert, remove}) to a Map of name → JobView; returns the map. */
export function applyJobsDelta(map, data) {
  for (const j of (data && data.upsert) || []) map.set(j.name, j);
  for (const n of (data && data.remove) || []) map.delete(n);
  return map;
}

/** Sequence bookkeeping: true when `seq` follows `last` (1, 2, 3, … per connection). */
export function seqFollows(last, seq) {
  return Number.isInteger(seq) && seq === last + 1;
}

/** Parses the hash route: #/, #/jobs, #/jobs/NAME, #/plans, #/plans/ID, #/tuner. */
export function parseRoute(hash) {
  const h = (hash || '').replace(/^#/, '') || '/';
  const parts = h.split('?')[0].split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const query = new URLSearchParams(h.includes('?') ? h.slice(h.indexOf('?') + 1) : '');
  if (parts.length === 0) return { page: 'overview', query };
  if (parts[0] === 'jobs') return parts[1] ? { page: 'job', name: parts[1], query } : { page: 'jobs', query };
  if (parts[0] === 'plans') return parts[1] ? { page: 'plan', id: parts[1], query } : { page: 'plans', query };
  if (parts[0] === 'tuner') return { page: 'tuner', query };
  return { page: 'notfound', query };
}
