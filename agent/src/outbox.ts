/**
 * The report outbox (and spool). Every report is appended to <stateDir>/outbox/<gen>.jsonl and fsync'd BEFORE it
 * is published, with its sequence number and de-dup id fixed at that moment; a flusher publishes entries in order
 * to JetStream (Nats-Msg-Id = report id) and durably advances a pointer. While NATS is unreachable entries simply
 * accumulate (that is the spool) and are flushed in order on reconnect; after an agent restart the unpublished
 * tail is published again with the same bytes, so JetStream's duplicate window and the controller's per
 * (job, attempt, node) sequence tracking drop anything published twice.
 *
 * Sequence numbers increase by one per report per (job, attempt) from this node, across agent restarts.
 */
import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { encodeReport } from '../../protocol/src/codec.js';
import { reportSubject } from '../../protocol/src/subjects.js';
import type { Report, ReportBody } from '../../protocol/src/types.js';
import { readJson, writeJsonDurable } from './fsutil.js';

interface Entry {
  subject: string;
  id: string;
  data: Uint8Array;
}

interface Pointer {
  gen: number;
  /** Entries of <gen>.jsonl already published. */
  acked: number;
  /** Highest seq per "job\u0000attempt" as of the start of <gen>. */
  seqs: Record<string, number>;
}

export type Publisher = (subject: string, data: Uint8Array, id: string) => Promise<void>;

export interface OutboxOptions {
  dir: string;
  node: string;
  publish: Publisher;
  /** Concurrent publishes per batch. */
  batch?: number;
  /** Compact the file once this many entries are published. */
  compactAfter?: number;
  retryMs?: number;
  now?: () => number;
  onError?: (e: unknown) => void;
}

export class Outbox {
  private readonly pending: Entry[] = [];
  private readonly seqs = new Map<string, number>();
  private ptr: Pointer;
  private fd: number;
  private lines: number;
  private flushing = false;
  private closed = false;
  private wake: (() => void) | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];
  published = 0;
  appended = 0;

  constructor(private readonly o: OutboxOptions) {
    mkdirSync(o.dir, { recursive: true });
    this.ptr = readJson<Pointer>(this.pointerPath()) ?? { gen: 0, acked: 0, seqs: {} };
    for (const [k, v] of Object.entries(this.ptr.seqs)) this.seqs.set(k, v);
    const file = this.genPath(this.ptr.gen);
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : [];
    let n = 0;
    for (const line of lines) {
      if (line === '') continue;
      let rec: { s: string; i: string; d: string; k: string; q: number };
      try {
        rec = JSON.parse(line);
      } catch {
        break; // a torn last line (crash mid-append): everything before it is intact
      }
      n++;
      if ((this.seqs.get(rec.k) ?? 0) < rec.q) this.seqs.set(rec.k, rec.q);
      if (n > this.ptr.acked) this.pending.push({ subject: rec.s, id: rec.i, data: Buffer.from(rec.d, 'base64') });
    }
    this.lines = n;
    this.fd = openSync(file, 'a', 0o600);
  }

  private pointerPath(): string {
    return join(this.o.dir, 'pointer.json');
  }
  private genPath(gen: number): string {
    return join(this.o.dir, `${gen}.jsonl`);
  }

  /** Reports not yet published. */
  get backlog(): number {
    return this.pending.length;
  }

  /** Assigns the next seq for (job, attempt), appends durably, and schedules a flush. Returns the report. */
  add(job: string, attempt: number, id: string, body: ReportBody): Report {
    if (this.closed) throw new Error('outbox closed');
    const key = `${job}\u0000${attempt}`;
    const seq = (this.seqs.get(key) ?? 0) + 1;
    this.seqs.set(key, seq);
    const report: Report = { id, job, attempt, node: this.o.node, seq, sentAtMs: (this.o.now ?? Date.now)(), body };
    const data = encodeReport(report);
    const subject = reportSubject(job, this.o.node);
    const line = JSON.stringify({ s: subject, i: id, k: key, q: seq, d: Buffer.from(data).toString('base64') }) + '\n';
    writeSync(this.fd, line);
    fsyncSync(this.fd);
    this.lines++;
    this.appended++;
    this.pending.push({ subject, id, data });
    this.kick();
    return report;
  }

  /** Starts (or wakes) the flusher, e.g. on reconnect. */
  kick(): void {
    if (this.wake) {
      const w = this.wake;
      this.wake = undefined;
      w();
    }
    if (!this.flushing && !this.closed) void this.flushLoop();
  }

  /** Resolves when the backlog is empty (or after `timeoutMs`). */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.pending.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  private async flushLoop(): Promise<void> {
    this.flushing = true;
    try {
      while (!this.closed && this.pending.length > 0) {
        const batch = this.pending.slice(0, this.o.batch ?? 64);
        const results = await Promise.allSettled(batch.map((e) => this.o.publish(e.subject, e.data, e.id)));
        let ok = 0;
        while (ok < results.length && results[ok]!.status === 'fulfilled') ok++;
        if (ok > 0) {
          this.pending.splice(0, ok);
          this.ptr.acked += ok;
          this.published += ok;
          this.persistPointer();
        }
        if (ok < results.length) {
          const r = results[ok] as PromiseRejectedResult;
          this.o.onError?.(r.reason);
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            this.retryTimer = setTimeout(() => {
              this.wake = undefined;
              resolve();
            }, this.o.retryMs ?? 500);
          });
          clearTimeout(this.retryTimer);
        }
      }
      if (this.pending.length === 0) {
        if (this.ptr.acked >= (this.o.compactAfter ?? 2000)) this.compact();
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    } finally {
      this.flushing = false;
    }
    if (!this.closed && this.pending.length > 0) void this.flushLoop();
  }

  private persistPointer(): void {
    writeJsonDurable(this.pointerPath(), this.ptr);
  }

  /** Everything is published: start a new generation file and delete the old one. */
  private compact(): void {
    const old = this.ptr.gen;
    closeSync(this.fd);
    this.ptr = { gen: old + 1, acked: 0, seqs: Object.fromEntries(this.seqs) };
    appendFileSync(this.genPath(this.ptr.gen), '');
    this.fd = openSync(this.genPath(this.ptr.gen), 'a', 0o600);
    this.lines = 0;
    this.persistPointer();
    rmSync(this.genPath(old), { force: true });
  }

  close(): void {
    this.closed = true;
    this.kick();
    clearTimeout(this.retryTimer);
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}
