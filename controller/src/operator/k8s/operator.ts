/**
 * The MistJob adapter: Kubernetes is one more source of jobs for the controller core (operator/controller.ts),
 * which stays the only reconcile. docs/operator.md. In short:
 *
 *   informer (list+watch, restarted on errors, relist on 410) → keyed work queue (per-key backoff) → handle(name):
 *     managedBy not Mist        → nothing at all (no finalizer, no status, no events)
 *     being deleted             → controller.removeExternal (cancel, stop the ranks, forget the job) → finalizer off
 *     otherwise                 → finalizer on → controller.applyExternal(spec, generation) → status sync
 *   controller job change → Events (one per lifecycle event) + the key queued for a status sync
 *   status sync: the MistJob status computed from the job (status.ts), merge-patched only when it differs, with the
 *     object's resourceVersion; on 409 re-read the object and diff again
 *   TTL (the controller deleted a finished job) → DELETE the MistJob (the finalizer pass then removes it)
 */
import { isMistError } from '../../../../protocol/src/errors.js';
import { setCondition, isoTime } from '../../domain/conditions.js';
import type { MistJob } from '../../domain/job.js';
import type { Controller, JobChange } from '../controller.js';
import { WorkQueue } from '../reconciler.js';
import { FINALIZER, MIST_MANAGED_BY, errorText, httpCode, type KubeMistJob, type MistJobApi } from './client.js';
import { MistJobInformer, type InformerOptions } from './informer.js';
import { kubeEvent, mergePatchDiff } from './status.js';
import { statusPatch } from './status.js';

export interface OperatorOptions {
  api: MistJobApi;
  controller: Controller;
  /** reportingInstance of the Events (the leader identity). */
  instance: string;
  /** How long a deletion waits for the ranks to stop before the finalizer goes anyway (default 60 s). */
  stopTimeoutMs?: number;
  informer?: InformerOptions;
  queue?: { baseBackoffMs?: number; maxBackoffMs?: number };
  log?: (msg: string) => void;
}

/** True when Mist manages the object (spec.managedBy absent or Mist's value). */
export function managedByMist(obj: Pick<KubeMistJob, 'spec'>): boolean {
  const m = obj.spec?.managedBy;
  return m === undefined || m === null || m === MIST_MANAGED_BY;
}

/** The controller's job document for a MistJob: clean metadata, the spec without managedBy. */
export function jobDocument(obj: KubeMistJob): MistJob {
  const { managedBy: _m, ...spec } = obj.spec ?? {};
  void _m;
  const md = obj.metadata;
  return {
    apiVersion: 'mist.io/v1alpha1',
    kind: 'MistJob',
    metadata: { name: md.name, ...(md.namespace ? { namespace: md.namespace } : {}), ...(md.labels ? { labels: md.labels } : {}), ...(md.annotations ? { annotations: md.annotations } : {}) },
    spec: spec as unknown as MistJob['spec'],
  };
}

export class MistJobOperator {
  readonly informer: MistJobInformer;
  private readonly queue: WorkQueue;
  private readonly api: MistJobApi;
  private readonly ctl: Controller;
  private unsubscribe: (() => void) | undefined;
  /** uids of MistJobs the controller deleted (TTL): never re-created from a late watch event. */
  private readonly tombstones = new Set<string>();
  /** Refusals already reported (name → message), so a refused spec gets one Event, not one per resync. */
  private readonly refused = new Map<string, string>();
  /** Ignored immutable-field changes already reported (name → generation and message): one Event per generation. */
  private readonly ignoredChange = new Map<string, string>();
  private events: Promise<void> = Promise.resolve();
  private seq = 0;
  private running = false;
  readonly stats = { statusWrites: 0, conflicts: 0, events: 0, eventFailures: 0 };

  constructor(private readonly o: OperatorOptions) {
    this.api = o.api;
    this.ctl = o.controller;
    this.informer = new MistJobInformer(
      o.api,
      {
        upsert: (obj) => this.queue.add(obj.metadata.name),
        deleted: (obj) => this.queue.add(obj.metadata.name),
      },
      { ...(o.log ? { log: o.log } : {}), ...o.informer },
    );
    this.queue = new WorkQueue((k) => this.handle(k), { ...o.queue, log: (m) => o.log?.(m) });
  }

  /** Starts watching and reconciling; jobs of the store whose MistJob is gone are removed after the first list. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.unsubscribe = this.ctl.onJob((c) => this.onChange(c));
    this.queue.start();
    this.informer.start();
    void this.informer.whenSynced().then(() => {
      if (!this.running) return;
      for (const name of this.ctl.externalJobs()) if (!this.informer.cache.has(name)) this.queue.add(name);
    });
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.unsubscribe?.();
    await this.informer.stop();
    await this.queue.stop();
    await this.events;
  }

  /** Resolves after the first complete list of MistJobs. */
  synced(): Promise<void> {
    return this.informer.whenSynced();
  }

  private onChange(c: JobChange): void {
    if (!this.running) return;
    const obj = this.informer.cache.get(c.name);
    if (!obj || (this.ctl.jobSource(c.name)?.source !== 'kubernetes' && !c.deleted)) return;
    if (c.deleted) {
      if (!managedByMist(obj) || !(obj.metadata.finalizers ?? []).includes(FINALIZER)) return;
      if (obj.metadata.uid) this.tombstones.add(obj.metadata.uid);
      this.api.delete(c.name, obj.metadata.uid).then(
        () => this.o.log?.(`MistJob ${c.name}: deleted (ttlSecondsAfterFinished)`),
        (e) => {
          if (httpCode(e) !== 404) {
            this.o.log?.(`MistJob ${c.name}: delete failed: ${errorText(e)}`);
            if (obj.metadata.uid) this.tombstones.delete(obj.metadata.uid);
          }
        },
      );
      return;
    }
    for (const ev of c.events) this.event(obj, ev);
    this.queue.add(c.name);
  }

  /** Posts an Event about `obj` (in order, best effort: an Event that cannot be written is logged, not retried). */
  private event(obj: KubeMistJob, ev: { type: 'Normal' | 'Warning'; reason: string; message: string; time?: string }): void {
    const body = kubeEvent(obj, { ...ev, time: ev.time ?? isoTime(Date.now()) }, { instance: this.o.instance, seq: ++this.seq });
    this.events = this.events.then(async () => {
      try {
        await this.api.createEvent(body);
        this.stats.events++;
      } catch (e) {
        this.stats.eventFailures++;
        this.o.log?.(`MistJob ${obj.metadata.name}: event ${ev.reason} not written: ${errorText(e)}`);
      }
    });
  }

  private async handle(name: string): Promise<void> {
    let obj = this.informer.cache.get(name);
    if (!obj) {
      // gone from the API server without our finalizer pass (forced removal, or deleted while no controller ran)
      if (this.ctl.jobSource(name)?.source === 'kubernetes') await this.ctl.removeExternal(name, { timeoutMs: this.o.stopTimeoutMs ?? 60_000 });
      this.refused.delete(name);
      this.ignoredChange.delete(name);
      return;
    }
    if (!managedByMist(obj)) return;
    const uid = obj.metadata.uid ?? '';
    const finalizers = obj.metadata.finalizers ?? [];
    const src = this.ctl.jobSource(name);
    const ours = src?.source === 'kubernetes' && (!src.uid || src.uid === uid);
    if (obj.metadata.deletionTimestamp) {
      if (!finalizers.includes(FINALIZER)) return;
      if (ours) {
        const had = this.ctl.jobFacts(name)?.status;
        const r = await this.ctl.removeExternal(name, { timeoutMs: this.o.stopTimeoutMs ?? 60_000 });
        if (had && had.attempt > 0) {
          this.event(obj, r.stopped ? { type: 'Normal', reason: 'RanksStopped', message: `attempt ${had.attempt}: every rank stopped; removing the finalizer ${FINALIZER}` } : { type: 'Warning', reason: 'StopTimeout', message: `the agents did not confirm that the ranks of attempt ${had.attempt} stopped; removing the finalizer ${FINALIZER} anyway` });
        }
      }
      await this.setFinalizers(obj, finalizers.filter((f) => f !== FINALIZER));
      this.tombstones.delete(uid);
      this.refused.delete(name);
      this.ignoredChange.delete(name);
      return;
    }
    if (this.tombstones.has(uid)) return;
    if (src?.source === 'kubernetes' && src.uid && src.uid !== uid) {
      // the name now belongs to a new object: the old job goes first (its ranks are stopped)
      await this.ctl.removeExternal(name, { timeoutMs: this.o.stopTimeoutMs ?? 60_000 });
    }
    if (!finalizers.includes(FINALIZER)) {
      obj = await this.setFinalizers(obj, [...finalizers, FINALIZER]);
      if (!obj) return;
    }
    let what: 'created' | 'updated' | 'unchanged';
    let ignored: string[];
    try {
      ({ what, ignored } = await this.ctl.applyExternal(jobDocument(obj), { generation: obj.metadata.generation ?? 1, uid }));
    } catch (e) {
      if (isMistError(e) && (e.code === 'BAD_INPUT' || e.code === 'CONFLICT')) {
        await this.refuse(obj, e.code === 'BAD_INPUT' ? 'InvalidSpec' : 'NameConflict', e.message);
        return;
      }
      throw e;
    }
    this.refused.delete(name);
    if (ignored.length) {
      const message = `${ignored.join(', ')} ${ignored.length === 1 ? 'is' : 'are'} immutable: the change is ignored and the job keeps its ${ignored.length === 1 ? 'value' : 'values'} (delete and re-create the MistJob to change ${ignored.length === 1 ? 'it' : 'them'})`;
      if (this.ignoredChange.get(name) !== `${obj.metadata.generation}:${message}`) {
        this.ignoredChange.set(name, `${obj.metadata.generation}:${message}`);
        this.event(obj, { type: 'Warning', reason: 'ImmutableFieldChanged', message });
      }
    }
    if (what === 'created') this.event(obj, { type: 'Normal', reason: 'Accepted', message: `accepted by the Mist controller (generation ${obj.metadata.generation ?? 1})` });
    if (what === 'updated') this.event(obj, { type: 'Normal', reason: 'SpecChanged', message: `spec changed (generation ${obj.metadata.generation ?? 1})` });
    await this.syncStatus(name);
  }

  /** A spec the controller refuses: status Failed with the reason and the field path, one Warning event. */
  private async refuse(obj: KubeMistJob, reason: string, message: string): Promise<void> {
    const name = obj.metadata.name;
    if (this.refused.get(name) !== message) {
      this.refused.set(name, message);
      this.event(obj, { type: 'Warning', reason, message });
    }
    const gen = obj.metadata.generation ?? 1;
    const now = Date.now();
    const prev = (obj.status?.conditions as Parameters<typeof setCondition>[0] | undefined) ?? [];
    const desired = {
      phase: 'Failed',
      reason,
      message,
      observedGeneration: gen,
      conditions: setCondition(prev, { type: 'Failed', status: 'True', reason, message }, now, gen),
    };
    await this.writeStatus(name, () => {
      const cur = this.informer.cache.get(name);
      return cur ? mergePatchDiff({ phase: cur.status?.phase, reason: cur.status?.reason, message: cur.status?.message, observedGeneration: cur.status?.observedGeneration }, { phase: desired.phase, reason, message, observedGeneration: gen }) && desired : null;
    });
  }

  /** Mirrors the job's status into the MistJob's status subresource when it differs. */
  private async syncStatus(name: string): Promise<void> {
    await this.writeStatus(name, () => {
      const obj = this.informer.cache.get(name);
      const facts = this.ctl.jobFacts(name);
      if (!obj || !facts?.status) return null;
      return statusPatch(obj, facts);
    });
  }

  /** Merge-patches /status with the object's resourceVersion; on 409 re-reads the object and recomputes. */
  private async writeStatus(name: string, patchOf: () => Record<string, unknown> | null): Promise<void> {
    for (let tries = 0; ; tries++) {
      const obj = this.informer.cache.get(name);
      const patch = patchOf();
      if (!obj || !patch) return;
      try {
        const updated = await this.api.patchStatus(name, obj.metadata.resourceVersion ?? '', patch);
        this.stats.statusWrites++;
        if (this.informer.cache.has(name)) this.informer.cache.set(name, updated);
        return;
      } catch (e) {
        const code = httpCode(e);
        if (code === 404) return;
        if (code === 409 && tries < 8) {
          this.stats.conflicts++;
          const fresh = await this.api.get(name).catch((err) => (httpCode(err) === 404 ? undefined : Promise.reject(err)));
          if (!fresh) return;
          this.informer.cache.set(name, fresh);
          continue;
        }
        throw new Error(`status of MistJob ${name}: ${errorText(e)}`);
      }
    }
  }

  /** Writes metadata.finalizers (merge patch with resourceVersion; 409 → re-read and retry). */
  private async setFinalizers(obj: KubeMistJob, want: string[]): Promise<KubeMistJob | undefined> {
    let cur = obj;
    for (let tries = 0; ; tries++) {
      const add = want.filter((f) => !(cur.metadata.finalizers ?? []).includes(f));
      const keep = (cur.metadata.finalizers ?? []).filter((f) => f !== FINALIZER || want.includes(FINALIZER));
      const next = [...keep, ...add];
      if (JSON.stringify(next) === JSON.stringify(cur.metadata.finalizers ?? [])) return cur;
      try {
        const updated = await this.api.patchFinalizers(cur.metadata.name, cur.metadata.resourceVersion ?? '', next);
        if (this.informer.cache.has(cur.metadata.name)) this.informer.cache.set(cur.metadata.name, updated);
        return updated;
      } catch (e) {
        const code = httpCode(e);
        if (code === 404) return undefined;
        if (code === 409 && tries < 8) {
          this.stats.conflicts++;
          const fresh = await this.api.get(cur.metadata.name).catch((err) => (httpCode(err) === 404 ? undefined : Promise.reject(err)));
          if (!fresh) return undefined;
          cur = fresh;
          continue;
        }
        throw new Error(`finalizers of MistJob ${cur.metadata.name}: ${errorText(e)}`);
      }
    }
  }
}
