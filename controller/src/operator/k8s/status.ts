/**
 * Pure helpers of the MistJob adapter: the controller's job status → the MistJob `status` (the CRD's status
 * schema, crd.ts), the minimal merge patch between two statuses (null when nothing changed: no write), the
 * lifecycle's events → core/v1 Events, and Kubernetes MicroTime formatting. No I/O, no clock.
 */
import type { CoreV1Event } from '@kubernetes/client-node';
import type { JobEvent } from '../../domain/conditions.js';
import { isoTime } from '../../domain/conditions.js';
import type { JobStatus } from '../../domain/lifecycle.js';
import { API_VERSION, CRD_KIND, type KubeMistJob } from './client.js';

/** What the adapter knows of a job beyond its status (operator/controller.ts jobSnapshot). */
export interface JobFacts {
  status?: JobStatus;
  planSummary?: string | null;
  planSpace?: string | null;
  /** Measured seconds per optimizer step (the latest report), and tokens per second. */
  measuredStepSeconds?: number | null;
  tokensPerSecond?: number | null;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const round = (x: number, digits = 4) => Number(x.toFixed(digits));

/** The MistJob status for a controller job status (fields absent in the job are absent here). */
export function mistJobStatus(f: JobFacts): JsonObject {
  const st = f.status;
  if (!st) return {};
  const out: JsonObject = {
    phase: st.phase,
    reason: st.reason,
    message: st.message,
    observedGeneration: st.observedGeneration,
    conditions: st.conditions.map((c) => ({ ...c })),
    attempt: st.attempt,
    restarts: st.restartCount,
  };
  if (st.plan) {
    out.plan = { id: st.plan.id, gpus: st.plan.gpus, ...(f.planSummary ? { summary: f.planSummary } : {}), ...(f.planSpace ? { space: f.planSpace } : {}) };
    if (st.plan.predictedStepSeconds !== undefined) out.predictedStepSeconds = round(st.plan.predictedStepSeconds, 6);
  }
  const running = st.phase === 'Running' || st.phase === 'Scheduled' || st.phase === 'Restarting';
  if (f.measuredStepSeconds && f.measuredStepSeconds > 0) out.measuredStepSeconds = round(f.measuredStepSeconds, 6);
  if (st.progress) {
    const p: JsonObject = { step: st.progress.step, totalSteps: st.progress.totalSteps };
    const per = f.measuredStepSeconds && f.measuredStepSeconds > 0 ? f.measuredStepSeconds : st.plan?.predictedStepSeconds;
    if (running && per && per > 0) p.etaSeconds = round(Math.max(0, st.progress.totalSteps - st.progress.step) * per, 1);
    if (running && f.tokensPerSecond && f.tokensPerSecond > 0) p.tokensPerSecond = round(f.tokensPerSecond, 1);
    out.progress = p;
  }
  if (st.startTime !== undefined) out.startTime = isoTime(st.startTime);
  if (st.completionTime !== undefined) out.completionTime = isoTime(st.completionTime);
  if (st.lastFailure) {
    const l = st.lastFailure;
    out.lastFailure = {
      attempt: l.attempt,
      class: l.class,
      reason: l.reason,
      message: l.message,
      ...(l.rank !== undefined ? { rank: l.rank } : {}),
      ...(l.node !== undefined ? { node: l.node } : {}),
      ...(l.exitCode !== undefined ? { exitCode: l.exitCode } : {}),
      time: isoTime(l.time),
    };
  }
  return out;
}

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (isObject(v)) return `{${Object.keys(v).filter((k) => v[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${stable(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/**
 * The JSON merge patch (RFC 7386) that turns `current` into `desired`: objects recursively, arrays and scalars
 * replaced whole (so `conditions` is always sent complete), removed keys as null. Null when they are equal.
 */
export function mergePatchDiff(current: unknown, desired: JsonObject): JsonObject | null {
  const cur = isObject(current) ? current : {};
  const patch: JsonObject = {};
  for (const k of new Set([...Object.keys(cur), ...Object.keys(desired)])) {
    const d = desired[k];
    const c = cur[k];
    if (d === undefined) {
      if (c !== undefined && c !== null) patch[k] = null;
      continue;
    }
    if (isObject(d) && isObject(c)) {
      const sub = mergePatchDiff(c, d);
      if (sub) patch[k] = sub;
      continue;
    }
    if (stable(c) !== stable(d)) patch[k] = d;
  }
  return Object.keys(patch).length ? patch : null;
}

/** The status merge patch for `obj` given the job's facts, or null when the object's status is already right. */
export function statusPatch(obj: Pick<KubeMistJob, 'status'>, f: JobFacts): JsonObject | null {
  return mergePatchDiff(obj.status ?? {}, mistJobStatus(f));
}

/** RFC 3339 with exactly six fractional digits (metav1.MicroTime; the API server refuses three). */
export function formatMicroTime(ms: number): string {
  const iso = isoTime(ms); // …ss.mmmZ
  return `${iso.slice(0, -1)}000Z`;
}

/** True when `s` is a MicroTime the API server accepts (`2026-01-02T03:04:05.123456Z`). */
export function isMicroTime(s: unknown): boolean {
  return typeof s === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(s);
}

/** A core/v1 Event about a MistJob (one per lifecycle event). `seq` makes the name unique per controller. */
export function kubeEvent(obj: KubeMistJob, ev: JobEvent | { type: 'Normal' | 'Warning'; reason: string; message: string; time: string }, o: { instance: string; seq: number }): CoreV1Event {
  const name = obj.metadata.name;
  const t = ev.time;
  const suffix = `${Date.parse(t).toString(16)}${o.seq.toString(16).padStart(4, '0')}`;
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${name}.${suffix}`, namespace: obj.metadata.namespace ?? 'default' },
    involvedObject: {
      apiVersion: API_VERSION,
      kind: CRD_KIND,
      name,
      namespace: obj.metadata.namespace ?? 'default',
      ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
      ...(obj.metadata.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {}),
    },
    type: ev.type,
    reason: ev.reason,
    message: ev.message.length > 1024 ? `${ev.message.slice(0, 1021)}...` : ev.message,
    count: 1,
    firstTimestamp: t as unknown as Date,
    lastTimestamp: t as unknown as Date,
    source: { component: 'mist-controller' },
    reportingComponent: 'mist.io/controller',
    reportingInstance: o.instance,
    action: ev.reason,
  };
}
