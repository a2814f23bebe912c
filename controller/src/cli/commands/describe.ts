/** `mist describe JOB`: phase, plan, conditions, events and attempts of one job (kubectl-describe style). */
import type { Command } from 'commander';
import type { JobDetail } from '../../api/service.js';
import { clientFrom, dash, formatAge, formatRate, renderTable, withClientOptions, type ClientFlags } from '../client.js';
import { printJson } from '../output.js';
import { ckptText } from '../format.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** A table of objects with the given columns (keys tried in order); anything that is not an object is shown as JSON. */
function objectTable(items: unknown[], columns: Array<[string, string[]]>, now: number): string {
  const rows = [columns.map(([h]) => h)];
  for (const it of items) {
    if (!isObj(it)) {
      rows.push([cell(it)]);
      continue;
    }
    rows.push(
      columns.map(([h, keys]) => {
        const k = keys.find((key) => it[key] !== undefined);
        const v = k === undefined ? undefined : it[k];
        return h === 'AGE' && typeof v === 'string' ? formatAge(v, now) : cell(v);
      }),
    );
  }
  return renderTable(rows)
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

function planText(plan: unknown): string[] {
  if (!isObj(plan)) return [];
  const out: string[] = [];
  const cluster = isObj(plan.cluster) ? plan.cluster : {};
  const stages = Array.isArray(plan.stages) ? plan.stages.filter(isObj) : [];
  out.push(`  id ${cell(plan.id)} · space ${cell(plan.space)} · ${cell(cluster.nodes)}×${cell(cluster.gpusPerNode)} ${cell(cluster.gpu)}`);
  out.push(`  global batch ${cell(plan.globalBatch)} · seq ${cell(plan.seqLen)} · grad accum ${cell(plan.gradAccum)} · ${stages.length} stage(s)`);
  stages.forEach((s, i) => {
    const ckpt = ckptText(isObj(s.ckpt) ? s.ckpt : undefined);
    const layers = Array.isArray(s.layers) ? `${cell(s.layers[0])}-${cell(s.layers[1])}` : '-';
    out.push(`  stage ${i}: layers ${layers} · dp ${cell(s.dp)} tp ${cell(s.tp)} mb ${cell(s.microBatch)} zero ${cell(s.zero)} ckpt ${ckpt}`);
  });
  const p = isObj(plan.predicted) ? plan.predicted : undefined;
  if (p && typeof p.iterationSeconds === 'number') {
    out.push(`  predicted ${p.iterationSeconds.toFixed(3)} s/iteration · ${formatRate(p.tokensPerSecond as number)} tokens/s${typeof p.mfu === 'number' ? ` · MFU ${(100 * p.mfu).toFixed(1)}%` : ''}`);
  }
  return out;
}

export function formatJobDetail(j: JobDetail, now: number = Date.now()): string {
  const lines = [
    `Name:        ${j.name}`,
    `Phase:       ${j.phase}${j.message ? ` (${j.message})` : ''}`,
    `Created:     ${j.createdAt} (${formatAge(j.createdAt, now)} ago)`,
    `GPUs:        ${dash(j.gpus)}`,
    `Restarts:    ${j.restarts}`,
    `Step:        ${dash(j.step)}`,
    `Tokens/s:    ${formatRate(j.tokensPerSecond)}`,
    `Plan:        ${dash(j.planSummary ?? j.planId)}`,
  ];
  const plan = planText(j.plan);
  if (plan.length) lines.push(...plan);
  lines.push('', 'Conditions:');
  lines.push(j.conditions.length ? objectTable(j.conditions, [['TYPE', ['type']], ['STATUS', ['status']], ['REASON', ['reason']], ['MESSAGE', ['message']], ['AGE', ['lastTransitionTime']]], now) : '  <none>');
  if (j.attempts) {
    lines.push('', 'Attempts:');
    lines.push(j.attempts.length ? objectTable(j.attempts, [['#', ['attempt', 'index', 'number']], ['PLAN', ['planId', 'plan']], ['RESULT', ['result', 'phase', 'outcome']], ['FAILURE', ['failureClass', 'reason']], ['STARTED', ['startedAt', 'started']], ['FINISHED', ['finishedAt', 'finished']]], now) : '  <none>');
  }
  lines.push('', 'Events:');
  lines.push(j.events.length ? objectTable(j.events, [['AGE', ['time', 'timestamp', 'at', 'lastTimestamp']], ['TYPE', ['type']], ['REASON', ['reason']], ['MESSAGE', ['message']]], now) : '  <none>');
  return lines.join('\n');
}

export function registerDescribe(program: Command, summary: string): void {
  withClientOptions(program.command('describe').description(summary).argument('<job>', 'job name')).action(async (name: string, opts: ClientFlags) => {
    const job = await clientFrom(opts).getJob(name);
    if (opts.json) printJson(job);
    else process.stdout.write(formatJobDetail(job) + '\n');
  });
}
