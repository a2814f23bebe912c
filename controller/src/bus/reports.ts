/**
 * Report intake: a durable explicit-ack pull consumer (mist_controller) on MIST_REPORTS. Each message is decoded
 * and checked against its subject; malformed ones are term()'d (never redelivered) and counted. Handling is
 * idempotent: per (job, attempt, node) the consumer tracks which sequence numbers were handled (a contiguous
 * watermark plus the set above it), so a report published twice — after an agent restart, a spool flush, or a
 * lost ack — is acked and dropped. A handler that throws gets the message nak'd for redelivery.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { decodeReport } from '../../../protocol/src/codec.js';
import { parseReportSubject, REPORTS_CONSUMER, REPORTS_STREAM } from '../../../protocol/src/subjects.js';
import type { Report } from '../../../protocol/src/types.js';

export interface ReportMeta {
  subject: string;
  streamSeq: number;
  deliveryCount: number;
}

export type ReportHandler = (report: Report, meta: ReportMeta) => void | Promise<void>;

export interface ReportStats {
  received: number;
  handled: number;
  duplicates: number;
  malformed: number;
  /** Reports that arrived with a seq above the next expected one (out of order or missing before them). */
  gaps: number;
  handlerErrors: number;
}

/** Which sequence numbers of one (job, attempt, node) were handled. */
export class SeqTracker {
  private watermark: number | undefined;
  private readonly above = new Set<number>();
  /** Recently handled report ids (bounded): catches an event re-created with a new seq after an agent crash. */
  private readonly ids = new Set<string>();

  constructor(private readonly maxAbove = 100_000, private readonly maxIds = 10_000) {}

  isDuplicate(seq: number, id?: string): boolean {
    if (id !== undefined && this.ids.has(id)) return true;
    return this.watermark !== undefined && (seq <= this.watermark || this.above.has(seq));
  }

  markId(id: string): void {
    this.ids.add(id);
    if (this.ids.size > this.maxIds) this.ids.delete(this.ids.values().next().value as string);
  }

  /** Records `seq` as handled; returns true when it left a gap below it. */
  mark(seq: number): boolean {
    // First sight (fresh controller): anything earlier was handled by a previous incarnation or never existed.
    if (this.watermark === undefined) this.watermark = seq - 1;
    let gap = false;
    if (seq === this.watermark + 1) {
      this.watermark = seq;
      while (this.above.delete(this.watermark + 1)) this.watermark++;
    } else if (seq > this.watermark) {
      this.above.add(seq);
      gap = true;
      if (this.above.size > this.maxAbove) {
        this.watermark = Math.min(...this.above) - 1;
        while (this.above.delete(this.watermark + 1)) this.watermark++;
      }
    }
    return gap;
  }

  get highest(): number {
    return Math.max(this.watermark ?? 0, ...this.above);
  }
}

export interface ReportConsumerOptions {
  /** Messages pulled per batch. */
  maxMessages?: number;
  log?: (msg: string) => void;
  /** nak delay when the handler throws. */
  retryDelayMs?: number;
}

export class ReportConsumer {
  readonly stats: ReportStats = { received: 0, handled: 0, duplicates: 0, malformed: 0, gaps: 0, handlerErrors: 0 };
  private readonly trackers = new Map<string, SeqTracker>();
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly nc: NatsConnection, private readonly handler: ReportHandler, private readonly o: ReportConsumerOptions = {}) {}

  async start(): Promise<void> {
    const js = jetstream(this.nc);
    const consumer = await js.consumers.get(REPORTS_STREAM, REPORTS_CONSUMER);
    this.messages = await consumer.consume({ max_messages: this.o.maxMessages ?? 256 });
    const msgs = this.messages;
    this.loop = (async () => {
      for await (const m of msgs) await this.process(m);
    })().catch((e) => this.o.log?.(`report consumer stopped: ${(e as Error).message}`));
  }

  async stop(): Promise<void> {
    this.messages?.stop();
    await this.loop;
  }

  tracker(job: string, attempt: number, node: string): SeqTracker | undefined {
    return this.trackers.get(`${job}\u0000${attempt}\u0000${node}`);
  }

  /** Handles one delivered message (exposed for tests). Never throws. */
  async process(m: JsMsg): Promise<void> {
    this.stats.received++;
    let report: Report;
    try {
      report = decodeReport(m.data);
      const s = parseReportSubject(m.subject);
      if (!s) throw new Error(`subject ${m.subject} is not a report subject`);
      if (s.node !== report.node || s.job !== report.job) throw new Error(`report ${report.id} names job ${report.job} node ${report.node} but came on ${m.subject}`);
    } catch (e) {
      this.stats.malformed++;
      this.o.log?.(`malformed report on ${m.subject} (stream seq ${m.seq}): ${(e as Error).message}`);
      m.term(`malformed: ${(e as Error).message}`.slice(0, 200));
      return;
    }
    const key = `${report.job}\u0000${report.attempt}\u0000${report.node}`;
    let t = this.trackers.get(key);
    if (!t) this.trackers.set(key, (t = new SeqTracker()));
    if (t.isDuplicate(report.seq, report.id)) {
      this.stats.duplicates++;
      if (!t.isDuplicate(report.seq)) t.mark(report.seq); // same event re-created under a new seq: fill its slot
      m.ack();
      return;
    }
    try {
      await this.handler(report, { subject: m.subject, streamSeq: m.seq, deliveryCount: m.info.deliveryCount });
    } catch (e) {
      this.stats.handlerErrors++;
      this.o.log?.(`report ${report.id} handler failed (will be redelivered): ${(e as Error).message}`);
      m.nak(this.o.retryDelayMs ?? 1000);
      return;
    }
    if (t.mark(report.seq)) this.stats.gaps++;
    t.markId(report.id);
    this.stats.handled++;
    m.ack();
  }
}
