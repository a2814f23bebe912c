/**
 * JetStream objects of the control plane, created (or updated) by the controller at start:
 *
 *   stream MIST_REPORTS  subjects mist.v1.report.>, file storage, limits retention, discard old,
 *                        max age 7 days, max bytes 1 GiB, duplicate window 2 minutes (all configurable)
 *   consumer mist_controller  durable pull, explicit ack, ack wait 30 s, max deliver 20, deliver all
 *   KV mist_agents       history 1, bucket TTL 5 minutes (a backstop only: on nats-server 2.9 expiry emits no
 *                        watch event, so the registry sweeps stale heartbeats itself)
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { nanos } from '@nats-io/nats-core';
import { AckPolicy, DeliverPolicy, DiscardPolicy, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { AGENTS_BUCKET, REPORT_SUBJECT_ALL, REPORTS_CONSUMER, REPORTS_STREAM } from '../../../protocol/src/subjects.js';

export interface ControlPlaneLimits {
  reportsMaxAgeMs: number;
  reportsMaxBytes: number;
  duplicateWindowMs: number;
  ackWaitMs: number;
  maxDeliver: number;
  agentsTtlMs: number;
}

export const DEFAULT_LIMITS: ControlPlaneLimits = {
  reportsMaxAgeMs: 7 * 24 * 3600 * 1000,
  reportsMaxBytes: 1024 * 1024 * 1024,
  duplicateWindowMs: 2 * 60 * 1000,
  ackWaitMs: 30_000,
  maxDeliver: 20,
  agentsTtlMs: 5 * 60 * 1000,
};

async function ensureStream(jsm: JetStreamManager, l: ControlPlaneLimits): Promise<void> {
  const cfg = {
    name: REPORTS_STREAM,
    subjects: [REPORT_SUBJECT_ALL],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(l.reportsMaxAgeMs),
    max_bytes: l.reportsMaxBytes,
    duplicate_window: nanos(l.duplicateWindowMs),
  };
  try {
    await jsm.streams.info(REPORTS_STREAM);
    await jsm.streams.update(REPORTS_STREAM, cfg);
  } catch (e) {
    if (!/not found/i.test(String((e as Error).message))) throw e;
    await jsm.streams.add(cfg);
  }
  try {
    await jsm.consumers.info(REPORTS_STREAM, REPORTS_CONSUMER);
  } catch (e) {
    if (!/not found/i.test(String((e as Error).message))) throw e;
    await jsm.consumers.add(REPORTS_STREAM, {
      durable_name: REPORTS_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(l.ackWaitMs),
      max_deliver: l.maxDeliver,
      max_ack_pending: 10_000,
    });
  }
}

/** Creates/updates MIST_REPORTS, its durable consumer, and the mist_agents bucket; returns the bucket. */
export async function ensureControlPlane(nc: NatsConnection, limits: Partial<ControlPlaneLimits> = {}): Promise<KV> {
  const l = { ...DEFAULT_LIMITS, ...limits };
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, l);
  return new Kvm(nc).create(AGENTS_BUCKET, { history: 1, ttl: l.agentsTtlMs });
}
