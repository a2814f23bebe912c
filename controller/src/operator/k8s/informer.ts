/**
 * A list+watch informer over the MistJobs of one namespace, built on client-node's `Watch` (client-node's own
 * `makeInformer` stops for good on any error but 410, research/ecosystem.md §2.4). This one never stops until
 * told to: list → watch from the list's resourceVersion (with bookmarks) → on a clean end re-watch from the
 * latest resourceVersion → on 410 Gone (HTTP or an ERROR event) relist and diff against the cache → on any other
 * error back off exponentially (reset after a successful list/watch) and start again.
 */
import * as k8s from '@kubernetes/client-node';
import { errorText, httpCode, type KubeMistJob, type MistJobApi } from './client.js';

export interface InformerHandlers {
  /** Added or changed (also for every object of a relist whose resourceVersion moved). */
  upsert(obj: KubeMistJob): void;
  deleted(obj: KubeMistJob): void;
}

export interface InformerOptions {
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Server-side watch timeout (the watch ends cleanly and is re-opened). Default 300 s. */
  watchTimeoutSeconds?: number;
  log?: (msg: string) => void;
}

export class MistJobInformer {
  readonly cache = new Map<string, KubeMistJob>();
  /** The resourceVersion the next watch starts from ('' = relist first). */
  resourceVersion = '';
  /** Counters, for logs and tests. */
  readonly stats = { lists: 0, watches: 0, errors: 0, expired: 0, bookmarks: 0 };
  private stopped = true;
  private loop: Promise<void> | undefined;
  private abort: AbortController | undefined;
  private wake: (() => void) | undefined;
  private readonly synced: Array<() => void> = [];
  private hasSynced = false;

  constructor(private readonly api: MistJobApi, private readonly h: InformerHandlers, private readonly o: InformerOptions = {}) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    await this.loop;
  }

  /** Resolves after the first complete list. */
  whenSynced(): Promise<void> {
    if (this.hasSynced) return Promise.resolve();
    return new Promise((r) => this.synced.push(r));
  }

  private async relist(): Promise<void> {
    const { items, resourceVersion } = await this.api.list();
    this.stats.lists++;
    const seen = new Set<string>();
    for (const obj of items) {
      seen.add(obj.metadata.name);
      const old = this.cache.get(obj.metadata.name);
      this.cache.set(obj.metadata.name, obj);
      if (!old || old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.h.upsert(obj);
    }
    for (const [name, obj] of [...this.cache]) {
      if (seen.has(name)) continue;
      this.cache.delete(name);
      this.h.deleted(obj);
    }
    this.resourceVersion = resourceVersion;
    if (!this.hasSynced) {
      this.hasSynced = true;
      for (const r of this.synced.splice(0)) r();
    }
  }

  /** One watch; resolves when it ends (cleanly or with 410), rejects on other errors. */
  private watchOnce(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let expired = false;
      let failed: Error | undefined;
      const onEvent = (type: string, obj: KubeMistJob & { code?: number; message?: string }) => {
        if (type === 'BOOKMARK') {
          this.stats.bookmarks++;
          if (obj?.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
          return;
        }
        if (type === 'ERROR') {
          if (obj?.code === 410) expired = true;
          else failed = Object.assign(new Error(`watch error: ${obj?.message ?? JSON.stringify(obj)}`), { statusCode: obj?.code });
          this.abort?.abort();
          return;
        }
        const name = obj?.metadata?.name;
        if (!name) return;
        if (obj.metadata.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
        if (type === 'DELETED') {
          this.cache.delete(name);
          this.h.deleted(obj);
        } else {
          this.cache.set(name, obj);
          this.h.upsert(obj);
        }
      };
      const done = (err: unknown) => {
        if (err && !expired && !failed && !this.stopped) {
          if (httpCode(err) === 410) expired = true;
          else if ((err as { name?: string }).name !== 'AbortError') failed = err as Error;
        }
        if (expired) {
          this.stats.expired++;
          this.resourceVersion = '';
        }
        if (failed) reject(failed);
        else resolve();
      };
      this.stats.watches++;
      void new k8s.Watch(this.api.kc)
        .watch(this.api.path, { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: this.o.watchTimeoutSeconds ?? 300 }, onEvent, done)
        .then((ac) => {
          this.abort = ac;
          if (this.stopped) ac.abort();
        })
        .catch(done);
    });
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        if (this.stopped) break;
        await this.watchOnce();
        failures = 0;
      } catch (err) {
        if (this.stopped) break;
        if (httpCode(err) === 410) {
          this.stats.expired++;
          this.resourceVersion = '';
          continue;
        }
        failures++;
        this.stats.errors++;
        const delay = Math.min(this.o.maxBackoffMs ?? 30_000, (this.o.baseBackoffMs ?? 250) * 2 ** Math.min(failures - 1, 16));
        this.o.log?.(`MistJob list/watch failed (retry ${failures} in ${delay} ms): ${errorText(err)}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, delay);
          this.wake = () => {
            clearTimeout(t);
            r();
          };
        });
        this.wake = undefined;
      }
    }
  }
}
