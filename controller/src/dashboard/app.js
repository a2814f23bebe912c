// Mist dashboard: hash-routed views over the REST API (/api/v1) and the live feed (/ws). No framework, no build.
// Pages: #/ overview · #/jobs · #/jobs/NAME · #/plans · #/plans/ID · #/tuner. docs/dashboard.md.
import { Live } from './live.js';
import {
  TERMINAL,
  applyJobsDelta,
  comparePlans,
  deviceOverview,
  etaSeconds,
  filterSortPlans,
  fmtAge,
  fmtBytes,
  fmtNum,
  fmtPct,
  fmtRate,
  fmtSeconds,
  paretoFrontier,
  parseRoute,
  phaseCounts,
  planGrid,
  planSummary,
  rankProfiles,
  stepSeries,
} from './model.js';

// ---------------------------------------------------------------------------------------------------------------
// tiny DOM helper

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const phaseBadge = (phase) => h('span', { class: `phase phase-${String(phase).toLowerCase()}` }, phase);
const link = (href, text) => h('a', { href }, text);
const jobLink = (name) => link(`#/jobs/${encodeURIComponent(name)}`, name);
const planLink = (id, text) => link(`#/plans/${encodeURIComponent(id)}`, text || id);

function table(columns, rows, opts = {}) {
  const head = h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label))));
  const body = h(
    'tbody',
    {},
    rows.length === 0
      ? h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, opts.empty || 'nothing yet'))
      : rows.map((r) => h('tr', { class: opts.rowClass ? opts.rowClass(r) : null, 'data-key': opts.key ? opts.key(r) : null }, columns.map((c) => h('td', { class: c.num ? 'num' : null }, c.cell(r))))),
  );
  return h('table', { class: 'grid', 'data-testid': opts.testid || null, 'aria-label': opts.label || null }, opts.caption ? h('caption', {}, opts.caption) : null, head, body);
}

function section(title, ...children) {
  return h('section', { class: 'panel', 'aria-label': title }, h('h2', {}, title), ...children);
}

// ---------------------------------------------------------------------------------------------------------------
// state

const state = {
  jobs: new Map(),
  overview: { allocations: [], queue: [], nodes: [], jobs: [] },
  overviewAt: Date.now(),
  job: null,
  jobTopic: null,
  plans: null,
  plansQuery: '',
  plansSort: 'createdAt',
  plansDesc: true,
  compare: [],
  compared: new Map(),
  me: null,
};

const main = () => document.getElementById('main');
let route = parseRoute(location.hash);
let charts = [];

async function api(path) {
  const r = await fetch(`/api/v1${path}`, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (r.status === 401) throw new Error('not signed in: open the Dashboard link that `mist up` printed (it carries ?token=)');
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body && body.error ? body.error.message : `HTTP ${r.status}`);
  return body;
}

function setStatus(s) {
  const el = document.getElementById('live-status');
  if (!el) return;
  el.textContent = s === 'live' ? 'live' : s === 'connecting' ? 'connecting…' : 'offline — reconnecting';
  el.className = `live live-${s}`;
}

const live = new Live({ onMessage, onStatus: setStatus });

function topicsFor(r) {
  const t = ['jobs', 'overview'];
  if (r.page === 'job') t.push(`job/${r.name}`);
  return t;
}

function onMessage(m) {
  if (m.type === 'hello') {
    state.me = m.principal;
    const who = document.getElementById('whoami');
    if (who) who.textContent = `${m.principal.name} (${m.principal.role})`;
    return;
  }
  if (m.type === 'error') {
    if (m.topic && m.topic === state.jobTopic) {
      state.job = { error: m.message };
      renderPage();
    }
    return;
  }
  if (m.topic === 'jobs') {
    if (m.type === 'snapshot') state.jobs = new Map(m.data.jobs.map((j) => [j.name, j]));
    else applyJobsDelta(state.jobs, m.data);
    if (route.page === 'overview' || route.page === 'jobs') renderPage();
    else updateNav();
    if (route.page === 'tuner' || route.page === 'plans') maybeRefreshPlans();
  } else if (m.topic === 'overview') {
    state.overview = m.data;
    state.overviewAt = Date.now();
    if (route.page === 'overview') renderPage();
  } else if (m.topic === state.jobTopic) {
    if (m.type === 'snapshot') state.job = { ...m.data };
    else if (state.job && !state.job.error) {
      if (m.data.job) state.job.job = m.data.job;
      if (m.data.profiles) state.job.profiles = m.data.profiles;
      if (m.data.profilesAppend) state.job.profiles = state.job.profiles.concat(m.data.profilesAppend);
      if (m.data.logs) state.job.logs = m.data.logs;
    }
    if (route.page === 'job') renderPage(true);
  }
}

let plansSig = '';
function maybeRefreshPlans() {
  const sig = [...state.jobs.values()].map((j) => j.planId || '').join(',');
  if (sig === plansSig) return;
  plansSig = sig;
  void loadPlans().then(() => renderPage());
}

async function loadPlans() {
  try {
    state.plans = (await api('/plans?limit=500')).plans;
  } catch (e) {
    state.plans = { error: e.message };
  }
}

function updateNav() {
  for (const a of document.querySelectorAll('nav a[data-page]')) {
    const on = a.dataset.page === route.page || (a.dataset.page === 'jobs' && route.page === 'job') || (a.dataset.page === 'plans' && route.page === 'plan');
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// pages

function jobsSorted() {
  return [...state.jobs.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
}

function overviewPage() {
  const ov = state.overview;
  const age = (Date.now() - state.overviewAt) / 1000;
  const dev = deviceOverview(ov.nodes || [], ov.allocations || []);
  const jobs = jobsSorted();
  const counts = phaseCounts(jobs);
  const cards = h(
    'div',
    { class: 'cards', 'data-testid': 'device-totals' },
    h('div', { class: 'card' }, h('div', { class: 'k' }, 'devices'), h('div', { class: 'v' }, dev.total.total)),
    h('div', { class: 'card' }, h('div', { class: 'k' }, 'allocated'), h('div', { class: 'v' }, dev.total.allocated)),
    h('div', { class: 'card' }, h('div', { class: 'k' }, 'idle'), h('div', { class: 'v' }, dev.total.idle)),
    h('div', { class: 'card' }, h('div', { class: 'k' }, 'agents'), h('div', { class: 'v' }, `${dev.byNode.filter((n) => !n.lost).length}/${dev.byNode.length}`)),
    h('div', { class: 'card' }, h('div', { class: 'k' }, 'queued'), h('div', { class: 'v' }, (ov.queue || []).length)),
    h('div', { class: 'card wide' }, h('div', { class: 'k' }, 'jobs by phase'), h('div', { class: 'v small' }, counts.length ? counts.map(([p, n]) => h('span', { class: 'chip' }, `${p} ${n}`)) : 'no jobs')),
  );
  const jobsTable = table(
    [
      { label: 'Job', cell: (j) => jobLink(j.name) },
      { label: 'Phase', cell: (j) => phaseBadge(j.phase) },
      { label: 'Devices', num: true, cell: (j) => j.gpus ?? '–' },
      { label: 'Step', num: true, cell: (j) => j.step ?? '–' },
      { label: 'Message', cell: (j) => h('span', { class: 'muted' }, j.message || '') },
    ],
    jobs,
    { testid: 'jobs-table', label: 'jobs', empty: 'no jobs yet: mist submit FILE', key: (j) => j.name },
  );
  const agents = table(
    [
      { label: 'Agent', cell: (n) => n.node },
      { label: 'Health', cell: (n) => h('span', { class: n.lost ? 'bad' : 'good' }, n.lost ? 'lost' : 'healthy') },
      { label: 'Heartbeat age', num: true, cell: (n) => (n.heartbeatAgeSeconds === null ? 'never' : fmtAge(n.heartbeatAgeSeconds + age)) },
      { label: 'Device types', cell: (n) => n.types.join(', ') || '–' },
      { label: 'Devices', num: true, cell: (n) => n.total },
      { label: 'Allocated', num: true, cell: (n) => n.allocated },
      { label: 'Idle', num: true, cell: (n) => n.idle },
      { label: 'Jobs', cell: (n) => n.jobs.map((j) => jobLink(j)) },
    ],
    dev.byNode,
    { testid: 'agents-table', label: 'agents', empty: 'no agents registered' },
  );
  const byType = table(
    [
      { label: 'Type', cell: (t) => `${t.model} (${t.kind})` },
      { label: 'Total', num: true, cell: (t) => t.total },
      { label: 'Allocated', num: true, cell: (t) => t.allocated },
      { label: 'Idle', num: true, cell: (t) => t.idle },
    ],
    dev.byType,
    { testid: 'types-table', label: 'devices by type', empty: 'no devices' },
  );
  const queue = table(
    [
      { label: 'Job', cell: (q) => jobLink(q.name) },
      { label: 'Priority', num: true, cell: (q) => q.priority },
      { label: 'Devices', num: true, cell: (q) => q.gpus ?? '–' },
      { label: 'Waiting', num: true, cell: (q) => fmtAge(q.waitingSeconds + age) },
      { label: 'Reason', cell: (q) => h('span', {}, h('b', {}, q.reason), ' ', h('span', { class: 'muted' }, q.message)) },
    ],
    ov.queue || [],
    { testid: 'queue-table', label: 'queue', empty: 'the queue is empty' },
  );
  return h('div', { class: 'overview' }, h('h1', {}, 'Overview'), cards, h('div', { class: 'cols' }, section('Jobs', jobsTable), h('div', {}, section('Agents', agents), section('Devices by type', byType), section('Queue', queue))));
}

function jobsPage() {
  const rows = jobsSorted();
  return h(
    'div',
    {},
    h('h1', {}, 'Jobs'),
    table(
      [
        { label: 'Job', cell: (j) => jobLink(j.name) },
        { label: 'Phase', cell: (j) => phaseBadge(j.phase) },
        { label: 'Devices', num: true, cell: (j) => j.gpus ?? '–' },
        { label: 'Plan', cell: (j) => (j.planId ? planLink(j.planId, j.planSummary || j.planId) : '–') },
        { label: 'Step', num: true, cell: (j) => j.step ?? '–' },
        { label: 'Tokens/s', num: true, cell: (j) => fmtRate(j.tokensPerSecond) },
        { label: 'MFU', num: true, cell: (j) => fmtPct(j.mfu ?? null) },
        { label: 'ETA', num: true, cell: (j) => (j.etaSeconds === undefined || j.etaSeconds === null ? (TERMINAL.has(j.phase) ? 'done' : '–') : fmtSeconds(j.etaSeconds)) },
        { label: 'Restarts', num: true, cell: (j) => j.restarts },
        { label: 'Age', num: true, cell: (j) => fmtAge((Date.now() - Date.parse(j.createdAt)) / 1000) },
        { label: 'Reason', cell: (j) => h('span', { class: 'muted' }, [j.reason, j.message].filter(Boolean).join(': ')) },
      ],
      rows,
      { testid: 'jobs-full-table', label: 'jobs', empty: 'no jobs yet', key: (j) => j.name },
    ),
  );
}

function planGridView(plan) {
  const g = planGrid(plan);
  if (!g.stages.length) return h('p', { class: 'muted' }, 'no plan yet');
  const layerCells = (s) => {
    const cells = [];
    for (let l = 0; l < g.layers; l++) {
      const inStage = l >= s.first && l < s.last;
      cells.push(h('div', { class: `layer ${inStage ? `on s${s.index % 6}` : ''}`, title: inStage ? `layer ${l}: stage ${s.index}` : `layer ${l}` }));
    }
    return cells;
  };
  return h(
    'div',
    { class: 'plan-grid', 'data-testid': 'plan-grid', role: 'table', 'aria-label': `plan: ${g.stages.length} stages over ${g.layers} layers` },
    h('div', { class: 'pg-row pg-head', role: 'row' }, h('div', { class: 'pg-label', role: 'columnheader' }, 'stage'), h('div', { class: 'pg-layers', role: 'columnheader', style: `--layers:${g.layers}` }, `layers 0–${g.layers - 1}`), h('div', { class: 'pg-knobs', role: 'columnheader' }, 'dp · tp · micro-batch · ZeRO · checkpointing · offload · predicted')),
    g.stages.map((s) =>
      h(
        'div',
        { class: 'pg-row', role: 'row', 'data-testid': 'plan-stage' },
        h('div', { class: 'pg-label', role: 'cell' }, `stage ${s.index}`, h('div', { class: 'muted' }, `layers ${s.first}–${s.last - 1}`)),
        h('div', { class: 'pg-layers', role: 'cell', style: `--layers:${g.layers}` }, layerCells(s)),
        h(
          'div',
          { class: 'pg-knobs', role: 'cell' },
          h('span', { class: 'chip' }, `dp ${s.dp}`),
          h('span', { class: 'chip' }, `tp ${s.tp}`),
          h('span', { class: 'chip' }, `mb ${s.microBatch}`),
          h('span', { class: 'chip' }, `ZeRO-${s.zero}`),
          h('span', { class: 'chip' }, `ckpt ${s.ckpt}`),
          h('span', { class: 'chip' }, `offload ${s.offload}`),
          s.splitBackward ? h('span', { class: 'chip', title: 'input gradients sent before the weight gradients' }, 'split backward') : null,
          h('span', { class: 'muted' }, ` ${fmtSeconds(s.predictedSeconds)} · ${fmtBytes(s.predictedMemoryBytes)}`),
        ),
      ),
    ),
  );
}

function lineChart(target, title, series, data, opts = {}) {
  const width = Math.max(320, Math.min(720, target.clientWidth || 560));
  if (typeof window.uPlot !== 'function') {
    target.append(h('p', { class: 'muted' }, 'charts unavailable (uPlot did not load)'));
    return null;
  }
  const u = new window.uPlot(
    {
      title,
      width,
      height: opts.height || 220,
      scales: { x: { time: false } },
      axes: [{ label: 'step' }, { label: opts.yLabel || '', size: 60 }],
      series: [{ label: 'step' }, ...series],
      legend: { live: true },
    },
    data,
    target,
  );
  charts.push(u);
  return u;
}

function jobDetailSections(d) {
  const job = d.job;
  const plan = job.plan;
  const st = job.status || {};
  const series = stepSeries(d.profiles || [], plan);
  const progress = st.progress;
  const eta = progress ? etaSeconds(progress.step, progress.totalSteps, series.measured) : null;
  const cal = job.calibration || null;
  const header = h(
    'div',
    { class: 'job-head' },
    h('h1', {}, job.name, ' ', phaseBadge(job.phase)),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'reason'),
      h('dd', {}, job.reason || '–', job.message ? h('span', { class: 'muted' }, ` — ${job.message}`) : null),
      h('dt', {}, 'plan'),
      h('dd', {}, job.planId ? planLink(job.planId, `${planSummary(plan)} (${job.planId})`) : '–'),
      h('dt', {}, 'step'),
      h('dd', {}, progress ? `${progress.step} / ${progress.totalSteps}` : '–'),
      h('dt', {}, 'tokens/s'),
      h('dd', {}, fmtRate(job.tokensPerSecond)),
      h('dt', {}, 'predicted'),
      h('dd', {}, plan && plan.predicted ? `${fmtSeconds(plan.predicted.iterationSeconds)}/step · ${fmtRate(plan.predicted.tokensPerSecond)} tokens/s · MFU ${fmtPct(plan.predicted.mfu)}` : '–'),
      h('dt', {}, 'ETA'),
      h('dd', {}, TERMINAL.has(job.phase) ? 'done' : fmtSeconds(eta)),
      h('dt', {}, 'restarts'),
      h('dd', {}, String(job.restarts ?? 0)),
      cal && !cal.error ? [h('dt', {}, 'prediction error'), h('dd', {}, `${fmtPct(cal.predictionErrorBefore)} with the catalog → ${fmtPct(cal.predictionErrorAfter)} calibrated`)] : null,
    ),
  );
  const conditions = table(
    [
      { label: 'Condition', cell: (c) => c.type },
      { label: 'Status', cell: (c) => h('span', { class: c.status === 'True' ? 'good' : 'muted' }, c.status) },
      { label: 'Reason', cell: (c) => c.reason || '' },
      { label: 'Since', cell: (c) => (c.lastTransitionTime ? new Date(c.lastTransitionTime).toLocaleTimeString() : '–') },
      { label: 'Message', cell: (c) => h('span', { class: 'muted' }, c.message || '') },
    ],
    job.conditions || [],
    { testid: 'conditions', label: 'conditions' },
  );
  const events = table(
    [
      { label: 'Time', cell: (e) => new Date(e.time).toLocaleTimeString() },
      { label: 'Type', cell: (e) => h('span', { class: e.type === 'Warning' ? 'bad' : 'muted' }, e.type) },
      { label: 'Reason', cell: (e) => h('b', {}, e.reason) },
      { label: 'Message', cell: (e) => e.message },
    ],
    (job.events || []).slice().sort((a, b) => (a.time < b.time ? -1 : 1)),
    { testid: 'events', label: 'events' },
  );
  const ranks = table(
    [
      { label: 'Rank', num: true, cell: (r) => r.rank },
      { label: 'Node', cell: (r) => r.node },
      { label: 'Stage', num: true, cell: (r) => r.stage ?? '–' },
      { label: 'Steps', num: true, cell: (r) => r.steps },
      { label: 'Mean step', num: true, cell: (r) => fmtSeconds(r.meanSeconds) },
      { label: 'Last step', num: true, cell: (r) => fmtSeconds(r.lastSeconds) },
      { label: 'Peak memory', num: true, cell: (r) => fmtBytes(r.peakMemoryBytes) },
      { label: '', cell: (r) => (r.straggler ? h('span', { class: 'bad' }, 'straggler') : '') },
    ],
    rankProfiles(d.profiles || []),
    { testid: 'ranks', label: 'per-rank profiles', empty: 'no profiles yet' },
  );
  const g = planGrid(plan);
  const memRows = g.stages.map((s) => {
    const measured = (d.profiles || []).filter((p) => p.stage === s.index && p.attempt === series.attempt).reduce((m, p) => Math.max(m, p.peakMemoryBytes || 0), 0);
    return { stage: s.index, predicted: s.predictedMemoryBytes, measured: measured || null };
  });
  const memory = table(
    [
      { label: 'Stage', num: true, cell: (r) => r.stage },
      { label: 'Predicted peak', num: true, cell: (r) => fmtBytes(r.predicted) },
      { label: 'Measured peak', num: true, cell: (r) => fmtBytes(r.measured) },
      { label: 'Ratio', num: true, cell: (r) => (r.predicted && r.measured ? fmtNum(r.measured / r.predicted, 2) : '–') },
    ],
    memRows,
    { testid: 'memory', label: 'memory predicted vs measured' },
  );
  const logText = (d.logs || []).map((l) => `[rank ${l.rank}${l.stream === 'stderr' ? ' err' : ''}] ${l.line}`).join('\n');
  return {
    header,
    conditions,
    events,
    grid: planGridView(plan),
    memory,
    ranks,
    logs: h('pre', { class: 'logs', 'data-testid': 'logs', tabindex: '0', 'aria-label': 'log tail' }, logText || 'no log lines yet'),
    series,
  };
}

let jobCharts = null;
function jobPage(partial) {
  const d = state.job;
  if (!d) return h('p', { class: 'muted' }, 'loading…');
  if (d.error) return h('div', {}, h('h1', {}, route.name), h('p', { class: 'bad' }, d.error));
  const s = jobDetailSections(d);
  const chartStep = h('div', { class: 'chart', id: 'chart-step', 'data-testid': 'chart-step' });
  const chartLoss = h('div', { class: 'chart', id: 'chart-loss', 'data-testid': 'chart-loss' });
  const stepData = [s.series.steps, s.series.measured, s.series.predicted];
  const lossData = [s.series.steps, s.series.loss];
  if (partial && jobCharts && jobCharts.name === d.job.name && document.getElementById('chart-step')) {
    // keep the charts; feed them the new data and rebuild the rest
    jobCharts.step?.setData(stepData);
    jobCharts.loss?.setData(lossData);
    for (const k of ['header', 'conditions', 'events', 'grid', 'memory', 'ranks', 'logs']) {
      const slot = document.querySelector(`[data-slot="${k}"]`);
      if (slot) slot.replaceChildren(s[k]);
    }
    return null;
  }
  const page = h(
    'div',
    { class: 'job' },
    h('div', { 'data-slot': 'header' }, s.header),
    section('Plan: stages × layers', h('div', { 'data-slot': 'grid' }, s.grid)),
    h('div', { class: 'cols' }, section('Step time: predicted vs measured', chartStep), section('Loss', chartLoss)),
    h('div', { class: 'cols' }, section('Memory: predicted vs measured', h('div', { 'data-slot': 'memory' }, s.memory)), section('Per-rank profiles', h('div', { 'data-slot': 'ranks' }, s.ranks))),
    section('Conditions', h('div', { 'data-slot': 'conditions' }, s.conditions)),
    section('Events', h('div', { 'data-slot': 'events' }, s.events)),
    section('Log tail', h('div', { 'data-slot': 'logs' }, s.logs)),
  );
  queueMicrotask(() => {
    jobCharts = {
      name: d.job.name,
      step: lineChart(
        chartStep,
        'seconds per step',
        [
          { label: 'measured', stroke: '#2b6cb0', width: 2 },
          { label: 'predicted', stroke: '#c05621', dash: [6, 4], width: 2 },
        ],
        stepData,
        { yLabel: 's' },
      ),
      loss: lineChart(chartLoss, 'training loss', [{ label: 'loss', stroke: '#2f855a', width: 2 }], lossData, { yLabel: 'loss' }),
    };
  });
  return page;
}

function plansTable(plans) {
  const q = state.plansQuery;
  const rows = filterSortPlans(plans, q, state.plansSort, state.plansDesc);
  const selected = new Set(state.compare);
  return table(
    [
      {
        label: 'Compare',
        cell: (p) =>
          h('input', {
            type: 'checkbox',
            'aria-label': `compare ${p.id}`,
            'data-testid': 'compare-box',
            checked: selected.has(p.id),
            onchange: (ev) => {
              if (ev.target.checked) state.compare = [...state.compare.filter((x) => x !== p.id), p.id].slice(-2);
              else state.compare = state.compare.filter((x) => x !== p.id);
              renderPage();
            },
          }),
      },
      { label: 'Plan', cell: (p) => planLink(p.id) },
      { label: 'Job', cell: (p) => (p.job ? jobLink(p.job) : '–') },
      { label: 'Model', cell: (p) => p.model },
      { label: 'Devices', num: true, cell: (p) => `${p.gpus} × ${p.gpu}` },
      { label: 'Space', cell: (p) => p.space },
      { label: 'Stages', num: true, cell: (p) => p.stages },
      { label: 's/step', num: true, cell: (p) => fmtNum(p.iterationSeconds, 4) },
      { label: 'Tokens/s', num: true, cell: (p) => fmtRate(p.tokensPerSecond) },
      { label: 'MFU', num: true, cell: (p) => fmtPct(p.mfu) },
      { label: 'Created', cell: (p) => new Date(p.createdAt).toLocaleString() },
    ],
    rows,
    { testid: 'plans-table', label: 'plans', empty: q ? 'no plan matches the filter' : 'no plans yet', key: (p) => p.id },
  );
}

async function loadCompared() {
  for (const id of state.compare) {
    if (!state.compared.has(id)) {
      try {
        state.compared.set(id, await api(`/plans/${encodeURIComponent(id)}`));
      } catch (e) {
        state.compared.set(id, { error: e.message });
      }
    }
  }
}

function plansPage() {
  if (state.plans === null) {
    void loadPlans().then(() => renderPage());
    return h('p', { class: 'muted' }, 'loading plans…');
  }
  if (state.plans.error) return h('p', { class: 'bad' }, state.plans.error);
  const tableSlot = h('div', { 'data-slot': 'plans' }, plansTable(state.plans));
  const filter = h('input', {
    type: 'search',
    id: 'plan-filter',
    placeholder: 'filter: job, model, gpu, space, solver…',
    'aria-label': 'filter plans',
    'data-testid': 'plan-filter',
    value: state.plansQuery,
    oninput: (ev) => {
      state.plansQuery = ev.target.value;
      tableSlot.replaceChildren(plansTable(state.plans));
    },
  });
  const sort = h(
    'select',
    {
      'aria-label': 'sort plans by',
      'data-testid': 'plan-sort',
      onchange: (ev) => {
        state.plansSort = ev.target.value;
        tableSlot.replaceChildren(plansTable(state.plans));
      },
    },
    [
      ['createdAt', 'created'],
      ['iterationSeconds', 'predicted s/step'],
      ['tokensPerSecond', 'tokens/s'],
      ['mfu', 'MFU'],
      ['gpus', 'devices'],
      ['job', 'job'],
    ].map(([v, t]) => h('option', { value: v, selected: state.plansSort === v }, t)),
  );
  const dir = h('button', {
    type: 'button',
    'aria-label': 'sort direction',
    onclick: () => {
      state.plansDesc = !state.plansDesc;
      renderPage();
    },
  }, state.plansDesc ? '↓ descending' : '↑ ascending');
  let compare = null;
  if (state.compare.length === 2) {
    const [a, b] = state.compare.map((id) => state.compared.get(id));
    if (!a || !b) {
      void loadCompared().then(() => renderPage());
      compare = h('p', { class: 'muted' }, 'loading the two plans…');
    } else {
      compare = section(
        'Compare',
        table(
          [
            { label: 'Field', cell: (r) => r.field },
            { label: state.compare[0], cell: (r) => r.a },
            { label: state.compare[1], cell: (r) => r.b },
          ],
          comparePlans(a, b),
          { testid: 'compare-table', label: 'plan comparison', rowClass: (r) => (r.differs ? 'differs' : null) },
        ),
      );
    }
  } else compare = h('p', { class: 'muted hint' }, 'Tick two plans to compare them side by side.');
  return h('div', {}, h('h1', {}, 'Plan history'), h('div', { class: 'toolbar' }, filter, h('label', {}, 'sort ', sort), dir, h('span', { class: 'muted' }, `${state.plans.length} plans`)), compare, tableSlot);
}

function frontierSvg(points, title) {
  const W = 360;
  const H = 220;
  const P = 40;
  const pts = points.map((p, i) => ({ ...p, i, x: p.stableSeconds, y: p.deltaSeconds }));
  if (!pts.length) return h('p', { class: 'muted' }, 'no frontier points');
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x) => P + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * P);
  const sy = (y) => H - P - ((y - y0) / (y1 - y0 || 1)) * (H - 2 * P);
  const ns = 'http://www.w3.org/2000/svg';
  const s = (tag, attrs) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    return el;
  };
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': title, 'data-testid': 'pareto' });
  svg.append(s('line', { x1: P, y1: H - P, x2: W - P, y2: H - P, class: 'axis' }), s('line', { x1: P, y1: P, x2: P, y2: H - P, class: 'axis' }));
  const front = paretoFrontier(pts, 'x', 'y');
  if (front.length > 1) svg.append(s('polyline', { points: front.map((p) => `${sx(p.x)},${sy(p.y)}`).join(' '), class: 'front' }));
  for (const p of pts) {
    const c = s('circle', { cx: sx(p.x), cy: sy(p.y), r: p.chosen ? 6 : 3.5, class: p.chosen ? 'pt chosen' : 'pt' });
    const t = document.createElementNS(ns, 'title');
    t.textContent = `stable ${fmtSeconds(p.x)}, delta ${fmtSeconds(p.y)}, ZeRO-${p.zero}, ckpt ${p.ckpt}${p.chosen ? ' (chosen)' : ''}`;
    c.append(t);
    svg.append(c);
  }
  const lab = (x, y, text, anchor = 'middle') => {
    const el = s('text', { x, y, 'text-anchor': anchor, class: 'lbl' });
    el.textContent = text;
    return el;
  };
  svg.append(lab(W / 2, H - 8, 'stable time per micro-batch'), lab(12, H / 2, 'delta', 'start'), lab(P, H - P + 14, fmtSeconds(x0), 'start'), lab(W - P, H - P + 14, fmtSeconds(x1), 'end'));
  return svg;
}

function planPage() {
  const p = state.planDetail;
  if (!p || p.id !== route.id) {
    state.planDetail = { id: route.id, loading: true };
    void api(`/plans/${encodeURIComponent(route.id)}`)
      .then((x) => (state.planDetail = { id: route.id, data: x }))
      .catch((e) => (state.planDetail = { id: route.id, error: e.message }))
      .then(() => renderPage());
    return h('p', { class: 'muted' }, 'loading…');
  }
  if (p.loading) return h('p', { class: 'muted' }, 'loading…');
  if (p.error) return h('p', { class: 'bad' }, p.error);
  const sp = p.data;
  const rec = sp.record;
  const parts = [
    h('h1', {}, `Plan ${sp.id}`),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'job'),
      h('dd', {}, sp.job ? jobLink(sp.job) : '–'),
      h('dt', {}, 'model'),
      h('dd', {}, `${sp.model} (${sp.layers} layers, hidden ${sp.hidden})`),
      h('dt', {}, 'devices'),
      h('dd', {}, `${sp.gpus} × ${sp.gpu} (${sp.nodes} node${sp.nodes === 1 ? '' : 's'})`),
      h('dt', {}, 'predicted'),
      h('dd', {}, `${fmtNum(sp.iterationSeconds, 4)} s/step · ${fmtRate(sp.tokensPerSecond)} tokens/s · MFU ${fmtPct(sp.mfu)}`),
      h('dt', {}, 'search'),
      h('dd', {}, `space ${sp.space} · solver ${sp.solver ?? '–'} · status ${sp.status ?? '–'} · ${fmtSeconds(sp.tunerSeconds)}`),
    ),
    section('Plan: stages × layers', planGridView(sp.plan)),
  ];
  if (rec) {
    parts.push(
      section(
        'Decision: Pareto frontiers of the chosen stages',
        h('p', { class: 'muted' }, `${rec.shapes ? `${rec.shapes.total} shapes (${rec.shapes.solved} solved, ${rec.shapes.pruned} pruned)` : ''} · ${rec.candidates ?? '–'} candidates · ${fmtSeconds(rec.seconds)} · status ${rec.status}`),
        h('div', { class: 'fronts' }, (rec.frontiers || []).map((f) => h('figure', {}, frontierSvg(f.points || [], `stage ${f.stage} frontier`), h('figcaption', {}, `stage ${f.stage}, ${f.layers} layers: ${f.points.length} options`)))),
      ),
      section(
        'Alternatives (best plan of other shapes)',
        table(
          [
            { label: 'tp', num: true, cell: (a) => a.tp },
            { label: 'pp', num: true, cell: (a) => a.pp },
            { label: 'dp', num: true, cell: (a) => a.dp },
            { label: 'mb', num: true, cell: (a) => a.microBatch },
            { label: 'accum', num: true, cell: (a) => a.gradAccum },
            { label: 'layers', cell: (a) => (a.layers || []).join('+') },
            { label: 's/step', num: true, cell: (a) => fmtNum(a.iterationSeconds, 4) },
          ],
          rec.alternatives || [],
          { label: 'alternatives' },
        ),
      ),
      section(
        'Baselines',
        table(
          [
            { label: 'Space', cell: (b) => b[0] },
            { label: 'best s/step', num: true, cell: (b) => fmtNum(b[1].iterationSeconds, 4) },
            { label: 'Mist speed-up', num: true, cell: (b) => (b[1].iterationSeconds && sp.iterationSeconds ? `${(b[1].iterationSeconds / sp.iterationSeconds).toFixed(2)}×` : b[1].reason || '–') },
          ],
          Object.entries(rec.baselines || {}),
          { label: 'baselines' },
        ),
      ),
    );
  } else parts.push(h('p', { class: 'muted' }, 'no decision record stored with this plan'));
  return h('div', {}, parts);
}

function tunerPage() {
  if (state.plans === null) {
    void loadPlans().then(() => renderPage());
    return h('p', { class: 'muted' }, 'loading…');
  }
  if (state.plans.error) return h('p', { class: 'bad' }, state.plans.error);
  const recent = state.plans.slice(0, 50);
  const times = recent.map((p) => p.tunerSeconds).filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const median = times.length ? times[Math.floor(times.length / 2)] : null;
  const byStatus = new Map();
  for (const p of recent) byStatus.set(p.status ?? 'unknown', (byStatus.get(p.status ?? 'unknown') || 0) + 1);
  return h(
    'div',
    {},
    h('h1', {}, 'Tuner'),
    h(
      'div',
      { class: 'cards' },
      h('div', { class: 'card' }, h('div', { class: 'k' }, 'decisions'), h('div', { class: 'v' }, recent.length)),
      h('div', { class: 'card' }, h('div', { class: 'k' }, 'median solve'), h('div', { class: 'v' }, fmtSeconds(median))),
      h('div', { class: 'card' }, h('div', { class: 'k' }, 'slowest solve'), h('div', { class: 'v' }, fmtSeconds(times.length ? times[times.length - 1] : null))),
      h('div', { class: 'card wide' }, h('div', { class: 'k' }, 'solver status'), h('div', { class: 'v small' }, [...byStatus].map(([s, n]) => h('span', { class: 'chip' }, `${s} ${n}`)))),
    ),
    section(
      'Recent decisions',
      table(
        [
          { label: 'Plan', cell: (p) => planLink(p.id) },
          { label: 'Job', cell: (p) => (p.job ? jobLink(p.job) : '–') },
          { label: 'Model', cell: (p) => p.model },
          { label: 'Devices', num: true, cell: (p) => `${p.gpus} × ${p.gpu}` },
          { label: 'Solver', cell: (p) => p.solver ?? '–' },
          { label: 'Status', cell: (p) => p.status ?? '–' },
          { label: 'Solve time', num: true, cell: (p) => fmtSeconds(p.tunerSeconds) },
          { label: 'Predicted s/step', num: true, cell: (p) => fmtNum(p.iterationSeconds, 4) },
          { label: 'Created', cell: (p) => new Date(p.createdAt).toLocaleString() },
        ],
        recent,
        { testid: 'tuner-table', label: 'recent tuner decisions', empty: 'no decisions yet' },
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// routing and rendering

function renderPage(partial = false) {
  updateNav();
  let el;
  if (route.page !== 'job') {
    for (const c of charts) c.destroy();
    charts = [];
    jobCharts = null;
  }
  const focusId = document.activeElement && document.activeElement.id;
  switch (route.page) {
    case 'overview':
      el = overviewPage();
      break;
    case 'jobs':
      el = jobsPage();
      break;
    case 'job':
      el = jobPage(partial);
      if (el === null) return;
      for (const c of charts) c.destroy();
      charts = [];
      break;
    case 'plans':
      el = plansPage();
      break;
    case 'plan':
      el = planPage();
      break;
    case 'tuner':
      el = tunerPage();
      break;
    default:
      el = h('p', {}, 'no such page; ', link('#/', 'go to the overview'));
  }
  main().replaceChildren(el);
  if (focusId) {
    const f = document.getElementById(focusId);
    if (f && f.tagName === 'INPUT') {
      f.focus();
      if (f.setSelectionRange && typeof f.value === 'string') f.setSelectionRange(f.value.length, f.value.length);
    }
  }
}

function onRoute() {
  route = parseRoute(location.hash);
  const topic = route.page === 'job' ? `job/${route.name}` : null;
  if (topic !== state.jobTopic) {
    state.jobTopic = topic;
    state.job = null;
  }
  if (route.page === 'plans' || route.page === 'tuner') state.plans = null;
  live.setTopics(topicsFor(route));
  renderPage();
  const title = { overview: 'Overview', jobs: 'Jobs', job: route.name, plans: 'Plan history', plan: `Plan ${route.id}`, tuner: 'Tuner' }[route.page] || 'Mist';
  document.title = `${title} · Mist`;
}

window.addEventListener('hashchange', onRoute);
setInterval(() => {
  // ages tick without a message; redraw the overview's ages every few seconds
  if (route.page === 'overview' && !document.activeElement?.matches('input, select')) renderPage();
}, 5000);
onRoute();
live.connect();
