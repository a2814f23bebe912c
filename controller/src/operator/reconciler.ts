/**
 * The reconcile work queue (controller-runtime style): keyed by job name, a key is queued at most once, one
 * worker handles one key at a time (so two reconciles of one job never interleave), `add(key, delayMs)` wakes a key
 * later (the earliest wake-up wins), and a handler that throws re-queues its key with per-key exponential backoff
 * (reset on the next success).
 */

export interface WorkQueueOptions {
  /** First retry delay after a failure (ms). */
  baseBackoffMs?: number;
  /** Cap of the retry delay (ms). */
  maxBackoffMs?: number;
  log?: (msg: string) => void;
}

export class WorkQueue {
  private readonly ready: string[] = [];
  private readonly queued = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private running: string | undefined;
  /** A key added again while its handler runs: handled once more afterwards. */
  private readonly dirty = new Set<string>();
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  private kick: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly handler: (key: string) => Promise<void>, private readonly o: WorkQueueOptions = {}) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Queues `key` now, or after `delayMs` (kept when an earlier wake-up is already set). */
  add(key: string, delayMs = 0): void {
    if (this.stopped) return;
    if (delayMs > 0) {
      const at = Date.now() + delayMs;
      const t = this.timers.get(key);
      if (t && t.at <= at) return;
      if (t) clearTimeout(t.timer);
      const timer = setTimeout(() => {
        this.timers.delete(key);
        this.add(key);
      }, Math.min(delayMs, 2 ** 31 - 1));
      timer.unref?.();
      this.timers.set(key, { at, timer });
      return;
    }
    if (this.running === key) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.ready.push(key);
    this.kick?.();
  }

  /** Forgets a key (deleted job): no pending wake-up, no retry. */
  forget(key: string): void {
    const t = this.timers.get(key);
    if (t) clearTimeout(t.timer);
    this.timers.delete(key);
    this.failures.delete(key);
  }

  get length(): number {
    return this.ready.length;
  }

  /** Resolves when nothing is queued or running (pending timers do not count). */
  idle(): Promise<void> {
    if (!this.running && this.ready.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    this.ready.length = 0;
    this.queued.clear();
    this.kick?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const key = this.ready.shift();
      if (key === undefined) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
        await new Promise<void>((r) => (this.kick = r));
        this.kick = undefined;
        continue;
      }
      this.queued.delete(key);
      this.running = key;
      try {
        await this.handler(key);
        this.failures.delete(key);
      } catch (e) {
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        const delay = Math.min(this.o.maxBackoffMs ?? 30_000, (this.o.baseBackoffMs ?? 200) * 2 ** Math.min(n - 1, 20));
        this.o.log?.(`reconcile ${key} failed (retry ${n} in ${delay} ms): ${(e as Error).message}`);
        this.add(key, delay);
      } finally {
        this.running = undefined;
      }
      if (this.dirty.delete(key)) this.add(key);
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
