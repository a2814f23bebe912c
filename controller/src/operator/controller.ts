/**
 * The controller core: joins the store (plans/), the NATS control plane (bus/), the tuner, the scheduler, the
 * calibration and the pure lifecycle (domain/lifecycle.ts) into one reconcile loop, and implements the API's
 * ControllerService. docs/controller.md describes it; in short:
 *
 *   start: open store → epoch = store.nextEpoch() → NATS + control plane → registry → rebuild every non-terminal
 *          job from the store and the agents' Status replies → report consumer → reconcile everything → API.
 *   reconcile(job): observations (tuner outcome, a scheduling pass, the attempt's rank reports, lost nodes, a
 *          cancel) → decide() → persist the status with optimistic concurrency (re-read and re-decide on
 *          CONFLICT) → events → execute the actions (plan, schedule, launch, stop, delete, requeueAfter).
 *   slow actions (tuning, launch fan-out, stop) run in the background and re-queue the job when they finish.
 *   after a job succeeds: score its prediction out of sample and fit a new calibration for (cluster, GPU type).
 */
import { mkdirSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Server } from 'node:http';
import { MistError, isMistError } from '../../../protocol/src/errors.js';
import type { FailureClass } from '../../../protocol/src/failure.js';
import type { Report } from '../../../protocol/src/types.js';
import { AgentRegistry } from '../bus/registry.js';
import { CommandClient } from '../bus/commands.js';
import { connectBus, type BusAuth } from '../bus/connect.js';
import { ensureControlPlane } from '../bus/infra.js';
import { launchPlan, stopPlan } from '../bus/launcher.js';
import { ReportConsumer } from '../bus/reports.js';
import { parseJobFile, validateJob, type JobSpec, type MistJob } from '../domain/job.js';
import {
  DEFAULT_LIFECYCLE_CONFIG,
  decide,
  isTerminal,
  queuedRequest,
  type Action,
  type JobPhase,
  type JobState,
  type JobStatus,
  type LifecycleConfig,
  type Observation,
  type PlanObservation,
} from '../domain/lifecycle.js';
import type { ClusterSlice, Placement, Plan } from '../domain/plan.js';
import type { JobEvent } from '../domain/conditions.js';
import { canonicalSlice, eligibleNodes, jobValidationContext, schedulePass, type QueueEntry } from '../scheduler/index.js';
import { openStore, type PlanFilter, type Store, type StoredPlan } from '../plans/store.js';
import type { ControllerService, JobDetail, JobView, LogLine, NodeView } from '../api/service.js';
import { closeApi, createApiServer, listenApi } from '../api/server.js';
import type { TokenStore } from '../api/auth.js';
import type { MetricsRegistry } from '../api/metrics.js';
import { registerControllerMetrics, reportKindLabel, solveStatusLabel, type ControllerMetrics } from './controller-metrics.js';
import type { ChangeEvent, Overview, ProfilePoint } from '../api/service.js';
import { AttemptTracker, COLLATERAL_WINDOW_MS, applyReport, applyStatus } from './observations.js';
import { ADDRESS_LABEL, inventoryFrom } from './inventory.js';
import { fittedFrom, planJob, planningHardware } from './planner.js';
import { MAX_FIT_JOBS, refit, sampleOf, scoreJob, type JobScore } from './calibrate.js';
import { WorkQueue } from './reconciler.js';
import type { Calibration as FittedCalibration } from '../calibration/index.js';

export interface ControllerLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface ControllerOptions {
  /** NATS servers (URL or list) or full connection settings. */
  nats: string | string[] | BusAuth;
  /** Store URL or SQLite path (default: MIST_DB, else <stateDir>/mist.db). Ignored when `store` is given. */
  db?: string;
  store?: Store;
  /** Controller state: the SQLite file by default, default checkpoint directories. */
  stateDir: string;
  /** Admin-defined runtime names jobs may use (default ['reference']). */
  runtimes?: readonly string[];
  /** Calibration scope: calibrations are stored per (cluster, GPU type). Default "default". */
  cluster?: string;
  lifecycle?: { watchdog?: Partial<LifecycleConfig['watchdog']>; oom?: Partial<LifecycleConfig['oom']>; stopTimeoutSeconds?: number };
  /** A node is lost after this long without a heartbeat (default 15 s). */
  lostAfterMs?: number;
  /** Grace between SIGTERM and SIGKILL when ranks are stopped (default 5 s). */
  stopGraceSeconds?: number;
  /** HTTP API: address to listen on ("127.0.0.1:0" for a free port); absent = no API server. */
  http?: { addr: string; tokens: TokenStore; metrics: MetricsRegistry; staticDir?: string };
  log?: ControllerLogger;
  /**
   * Leader election (docs/operator.md): start as a standby that takes no epoch, reconciles nothing and answers the
   * API with 503 until `lead()` is called; `stepDown()` stops reconciling. Default false: lead from the start.
   */
  standby?: boolean;
}

/** A change of a job, for the Kubernetes adapter (operator/k8s): the status after a reconcile and its events. */
export interface JobChange {
  name: string;
  /** The persisted status (a copy); absent before the first reconcile. */
  status?: JobStatus & StatusExtras;
  /** The lifecycle's events of this reconcile (possibly none). */
  events: JobEvent[];
  generation: number;
  /** The job was deleted by the controller (ttlSecondsAfterFinished). */
  deleted?: boolean;
}

/** Where a job came from: REST jobs have none; Kubernetes jobs are tagged in the stored document. */
export const SOURCE_ANNOTATION = 'mist.io/source';
export const UID_ANNOTATION = 'mist.io/uid';

/** What the status keeps beyond the lifecycle's fields. */
interface StatusExtras {
  /** Out-of-sample prediction score of the job and the calibration fitted after it (docs/controller.md). */
  calibration?: (JobScore & { fittedFromJobs: string[] }) | { error: string };
}

type StoredStatus = JobStatus & StatusExtras;

interface Entry {
  name: string;
  version: number;
  /** metadata.generation of a Kubernetes job (1 for REST jobs). */
  generation: number;
  createdAt: number;
  doc: MistJob;
  spec: JobSpec;
  status?: StoredStatus;
  extras: StatusExtras;
  cancelRequested: boolean;
  planObs?: PlanObservation;
  planningFor?: number;
  trackers: Map<number, AttemptTracker>;
  launching: Set<number>;
  stopping: Set<number>;
  finished: Set<number>;
  logs: LogLine[];
  followers: Set<{ rank?: number; onLine: (l: LogLine) => void; onEnd?: () => void }>;
  rate?: number;
  stepSeconds?: number;
  calibrating: boolean;
  waiters: Array<() => void>;
}

const MAX_LOG_LINES = 20_000;
const HOLDING: readonly JobPhase[] = ['Scheduled', 'Running', 'Restarting'];

function envNumber(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** Lifecycle settings: defaults, then MIST_WATCHDOG_* / MIST_STOP_TIMEOUT_SECONDS, then the options. */
export function lifecycleConfig(o: ControllerOptions['lifecycle'] = {}): LifecycleConfig {
  const d = DEFAULT_LIFECYCLE_CONFIG;
  const env = {
    k: envNumber('MIST_WATCHDOG_K'),
    minGraceSeconds: envNumber('MIST_WATCHDOG_MIN_GRACE_SECONDS'),
    startupGraceSeconds: envNumber('MIST_WATCHDOG_STARTUP_GRACE_SECONDS'),
  };
  const pick = <T>(...xs: Array<T | undefined>): T => xs.find((x) => x !== undefined) as T;
  return {
    watchdog: {
      k: pick(o.watchdog?.k, env.k, d.watchdog.k),
      minGraceSeconds: pick(o.watchdog?.minGraceSeconds, env.minGraceSeconds, d.watchdog.minGraceSeconds),
      startupGraceSeconds: pick(o.watchdog?.startupGraceSeconds, env.startupGraceSeconds, d.watchdog.startupGraceSeconds),
    },
    oom: { marginStep: o.oom?.marginStep ?? d.oom.marginStep, maxReplans: o.oom?.maxReplans ?? d.oom.maxReplans },
    stopTimeoutSeconds: pick(o.stopTimeoutSeconds, envNumber('MIST_STOP_TIMEOUT_SECONDS'), d.stopTimeoutSeconds),
  };
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createNetServer();
    s.once('error', rej);
    s.listen(0, '0.0.0.0', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

function planSummary(plan: Pick<Plan, 'stages'> | undefined): string | null {
  const s = plan?.stages[0];
  if (!plan || !s) return null;
  return `pp${plan.stages.length} tp${s.tp} dp${s.dp} mb${s.microBatch} z${s.zero}`;
}

export class Controller implements ControllerService {
  private store!: Store;
  private nc!: NatsConnection;
  private registry!: AgentRegistry;
  private consumer!: ReportConsumer;
  private client!: CommandClient;
  private api: Server | undefined;
  private queue: WorkQueue;
  private readonly jobs = new Map<string, Entry>();
  private readonly planCache = new Map<string, Plan>();
  private readonly cfg: LifecycleConfig;
  private readonly runtimes: readonly string[];
  private readonly cluster: string;
  private readonly stateDir: string;
  private readonly log: ControllerLogger;
  private readonly background = new Set<Promise<unknown>>();
  private started = false;
  private closing = false;
  private ownStore = false;
  private leading = false;
  private queueSpent = false;
  private readonly listeners = new Set<(c: JobChange) => void>();
  private metrics?: ControllerMetrics;
  /** Change-feed listeners (the dashboard's WebSocket hub); see watch(). */
  private readonly watchers = new Set<(c: ChangeEvent) => void>();
  /** Jobs whose admission wait was observed (first Running). */
  private readonly admitted = new Set<string>();
  epoch = 0;
  /** The API's URL once it listens. */
  url: string | undefined;

  constructor(private readonly o: ControllerOptions) {
    this.cfg = lifecycleConfig(o.lifecycle);
    this.runtimes = o.runtimes ?? ['reference'];
    this.cluster = o.cluster ?? 'default';
    this.stateDir = resolve(o.stateDir);
    this.log = o.log ?? { info: () => {}, warn: () => {} };
    this.queue = new WorkQueue((k) => this.reconcile(k), { log: (m) => this.log.warn(m) });
  }

  // -------------------------------------------------------------------------------------------------------------
  // start / stop

  async start(): Promise<void> {
    mkdirSync(this.stateDir, { recursive: true });
    if (this.o.store) this.store = this.o.store;
    else {
      this.store = await openStore(this.o.db, { stateDir: this.stateDir });
      this.ownStore = true;
    }
    if (!this.o.standby) this.epoch = await this.store.nextEpoch();
    const auth: BusAuth = typeof this.o.nats === 'string' || Array.isArray(this.o.nats) ? { servers: this.o.nats } : this.o.nats;
    this.nc = await connectBus(auth);
    const kv = await ensureControlPlane(this.nc);
    this.registry = new AgentRegistry(kv, { lostAfterMs: this.o.lostAfterMs ?? 15_000 });
    this.registry.on((e) => this.onRegistry(e.type, e.node));
    await this.registry.start();
    if (this.o.http) this.registerMetrics(this.o.http.metrics);
    if (!this.o.standby) await this.takeOver();
    if (this.o.http) {
      this.api = createApiServer({ service: this, tokens: this.o.http.tokens, metrics: this.o.http.metrics, ...(this.o.http.staticDir ? { staticDir: this.o.http.staticDir } : {}) });
      const l = await listenApi(this.api, this.o.http.addr);
      this.url = l.url;
    }
    this.started = true;
    this.log.info(`controller started${this.leading ? `: epoch ${this.epoch}` : ' as a standby'}, store ${this.store.backend} ${this.store.location}, ${this.jobs.size} job(s)${this.url ? `, API ${this.url}` : ''}`);
  }

  /** True while this controller reconciles (always, without leader election). */
  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Leadership won (operator/k8s/leader.ts): a new epoch from the store — agents refuse the previous leader's
   * commands from now on — then rebuild every job from the store and the agents and reconcile. Returns the epoch.
   */
  async lead(): Promise<number> {
    if (this.leading || this.closing) return this.epoch;
    this.epoch = await this.store.nextEpoch();
    await this.takeOver();
    this.log.info(`leading with epoch ${this.epoch}: ${this.jobs.size} job(s)`);
    return this.epoch;
  }

  /** Leadership lost: stop reconciling at once (nothing more is decided, persisted or sent). */
  async stepDown(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    this.queueSpent = true;
    await this.queue.stop();
    await this.consumer?.stop().catch(() => {});
    this.log.warn(`leadership lost (epoch ${this.epoch}): reconciling stopped`);
  }

  private async takeOver(): Promise<void> {
    this.client = new CommandClient(this.nc, this.epoch, { timeoutMs: 15_000 });
    if (this.queueSpent) this.queue = new WorkQueue((k) => this.reconcile(k), { log: (m) => this.log.warn(m) });
    // rebuild from the store (and the agents, for attempts that may be running)
    this.jobs.clear();
    for (const rec of await this.store.listJobs()) {
      const doc = rec.spec as MistJob & { metadata: { generation?: number } };
      const e = this.entryFrom(rec.name, rec.version, rec.createdAt.getTime(), doc, rec.status as StoredStatus | null);
      this.jobs.set(e.name, e);
    }
    this.leading = true;
    for (const e of this.jobs.values()) await this.recover(e);
    this.consumer = new ReportConsumer(this.nc, (r) => this.onReport(r), { log: (m) => this.log.warn(m) });
    await this.consumer.start();
    this.queue.start();
    for (const e of this.jobs.values()) if (!e.status || !isTerminal(e.status.phase) || e.spec.ttlSecondsAfterFinished !== undefined) this.queue.add(e.name);
  }

  /** Stops serving. Ranks keep running (a new controller adopts them); nothing is lost. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.api) await closeApi(this.api).catch(() => {});
    this.leading = false;
    await this.queue.stop();
    await Promise.allSettled([...this.background]);
    for (const e of this.jobs.values()) for (const f of e.followers) f.onEnd?.();
    this.registry?.stop();
    await this.consumer?.stop().catch(() => {});
    await this.nc?.close().catch(() => {});
    if (this.ownStore) await this.store?.close().catch(() => {});
  }

  private registerMetrics(m: MetricsRegistry): void {
    this.metrics = registerControllerMetrics(m.registry, {
      phases: () => [...this.jobs.values()].map((e) => e.status?.phase ?? 'Pending'),
      queueDepth: () => this.queue.length,
      agents: () => {
        const now = Date.now();
        return this.registry.nodes().map((a) => ({ node: a.node, alive: a.state !== 'lost', heartbeatAgeSeconds: a.heartbeat ? Math.max(0, (now - a.lastSeenMs) / 1000) : null }));
      },
    });
  }

  /** Tells the change-feed listeners that something changed; a listener that throws is ignored. */
  private changed(c: ChangeEvent): void {
    for (const w of this.watchers) {
      try {
        w(c);
      } catch {
        /* a listener's problem */
      }
    }
  }

  private spawn(p: Promise<unknown>): void {
    const q = p.catch((e) => this.log.warn(`background task failed: ${(e as Error).message}`)).finally(() => this.background.delete(q));
    this.background.add(q);
  }

  private entryFrom(name: string, version: number, createdAt: number, doc: MistJob, status: StoredStatus | null): Entry {
    const extras: StatusExtras = {};
    if (status?.calibration) extras.calibration = status.calibration;
    const g = (doc.metadata as { generation?: unknown } | undefined)?.generation;
    return {
      name,
      version,
      generation: typeof g === 'number' && Number.isInteger(g) && g > 0 ? g : 1,
      createdAt,
      doc,
      spec: doc.spec,
      ...(status ? { status } : {}),
      extras,
      cancelRequested: false,
      trackers: new Map(),
      launching: new Set(),
      stopping: new Set(),
      finished: new Set(),
      logs: [],
      followers: new Set(),
      calibrating: false,
      waiters: [],
    };
  }

  /** After a restart: re-issue what may not have been done, and learn from the agents what ranks are doing. */
  private async recover(e: Entry): Promise<void> {
    const st = e.status;
    if (!st || isTerminal(st.phase)) {
      if (st?.phase === 'Succeeded' && !e.extras.calibration) this.spawn(this.calibrateAfter(e));
      return;
    }
    if (st.plan) await this.loadPlan(st.plan.id).catch(() => undefined);
    if (st.phase === 'Planning' && st.planning) {
      const p = st.planning;
      this.startPlanning(e, { kind: 'plan', request: p.request, gpus: p.gpus, gpuType: e.spec.resources.gpuType, ...(p.slice ? { slice: p.slice } : {}), marginFactor: p.marginFactor });
    }
    if (st.attempt > 0 && st.placement && HOLDING.includes(st.phase)) {
      const t = new AttemptTracker(st.attempt, st.world ?? st.placement.length, st.stopSentFor === st.attempt);
      e.trackers.set(st.attempt, t);
      const nodes = [...new Set(st.placement.map((p) => p.node))];
      await Promise.all(
        nodes.map(async (node) => {
          try {
            const r = await this.client.send(node, { kind: 'status', job: e.name }, { timeoutMs: 5000 });
            if (r.ok && r.result?.kind === 'status') applyStatus(t, node, r.result.ranks, Date.now());
          } catch (err) {
            this.log.warn(`job ${e.name}: no Status from ${node} (${(err as Error).message}); the registry decides whether it is lost`);
          }
        }),
      );
      const profiles = await this.store.listProfiles(e.name, { attempt: st.attempt });
      for (const p of profiles) t.step(p.step, p.at.getTime());
      if (st.phase === 'Scheduled' && st.stopSentFor !== st.attempt && t.started.size < t.world && st.plan) {
        // the Launch may never have gone out: send it again (idempotent per command id on every agent)
        this.startLaunch(e, { kind: 'launch', attempt: st.attempt, planId: st.plan.id, placement: st.placement, ...(st.checkpoint ? { resumeFrom: st.checkpoint } : {}) });
      }
      if (st.stopSentFor === st.attempt && !t.observation().stopped) this.startStop(e, { kind: 'stop', attempt: st.attempt, reason: st.reason });
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // inputs: registry and reports

  private onRegistry(type: 'registered' | 'lost' | 'recovered', node: string): void {
    if (this.closing) return;
    this.log.info(`node ${node} ${type}`);
    this.changed({ kind: 'node', node });
    for (const e of this.jobs.values()) {
      const st = e.status;
      if (!st || isTerminal(st.phase)) continue;
      if (type === 'lost' ? st.placement?.some((p) => p.node === node) : st.phase === 'Pending' || st.phase === 'Planning') this.queue.add(e.name);
    }
  }

  private tracker(e: Entry, attempt: number): AttemptTracker | undefined {
    let t = e.trackers.get(attempt);
    if (!t && e.status && e.status.attempt === attempt && attempt > 0) {
      t = new AttemptTracker(attempt, e.status.world ?? e.status.placement?.length ?? 0, e.status.stopSentFor === attempt);
      e.trackers.set(attempt, t);
    }
    return t;
  }

  private async onReport(r: Report): Promise<void> {
    if (r.job === '') {
      if (r.body.kind === 'nodeEvent') this.log.info(`node ${r.node}: ${r.body.event}: ${r.body.message}`);
      return;
    }
    const e = this.jobs.get(r.job);
    if (!e) return; // a deleted job, or another controller's
    const now = Date.now();
    const b = r.body;
    if (r.sentAtMs) this.metrics?.reportLag.observe({ kind: reportKindLabel(b.kind) }, Math.max(0, (now - r.sentAtMs) / 1000));
    if (b.kind === 'stepProfile' || b.kind === 'logTail') queueMicrotask(() => this.changed({ kind: b.kind === 'stepProfile' ? 'profile' : 'log', job: r.job }));
    if (b.kind === 'stepProfile') {
      await this.store.appendProfiles([
        {
          job: r.job,
          attempt: r.attempt,
          node: r.node,
          rank: b.rank,
          stage: b.stage,
          step: b.step,
          ...(b.loss !== undefined && Number.isFinite(b.loss) ? { loss: b.loss } : {}),
          stepSeconds: b.stepSeconds,
          forwardSeconds: b.stageTimes.map((s) => s.forwardSeconds),
          backwardSeconds: b.stageTimes.map((s) => s.backwardSeconds),
          peakMemoryBytes: b.peakMemoryBytes,
          tokens: b.tokens,
          at: new Date(r.sentAtMs || now),
        },
      ]);
      if (b.stepSeconds > 0 && b.tokens > 0) e.rate = b.tokens / b.stepSeconds;
      if (b.stepSeconds > 0) e.stepSeconds = b.stepSeconds;
    } else if (b.kind === 'logTail') {
      for (const line of b.lines) {
        const l: LogLine = { rank: b.rank, stream: b.stream, line };
        e.logs.push(l);
        for (const f of e.followers) if (f.rank === undefined || f.rank === b.rank) f.onLine(l);
      }
      if (e.logs.length > MAX_LOG_LINES) e.logs.splice(0, e.logs.length - MAX_LOG_LINES);
    } else if (b.kind === 'rankExited' && !(b.exitCode === 0 && !b.signal)) {
      const t = e.trackers.get(r.attempt);
      if (!t?.stopRequested) {
        await this.store.appendEvent({ job: r.job, type: 'Warning', reason: 'RankExited', message: `attempt ${r.attempt}: rank ${b.rank} on ${r.node} ended (${b.failureClass}${b.exitCode !== undefined ? `, exit code ${b.exitCode}` : ''}${b.signal ? `, ${b.signal}` : ''})`, at: new Date(now) });
      }
    }
    const t = this.tracker(e, r.attempt);
    if (!t) return;
    const before = JSON.stringify(t.observation());
    applyReport(t, r, now);
    if (JSON.stringify(t.observation()) !== before) this.queue.add(e.name);
  }

  // -------------------------------------------------------------------------------------------------------------
  // reconcile

  private state(e: Entry): JobState {
    return { name: e.name, generation: e.generation, createdAt: e.createdAt, spec: e.spec, ...(e.status ? { status: e.status } : {}) };
  }

  private inventory(except?: string) {
    const held = new Set<string>();
    for (const x of this.jobs.values()) {
      const st = x.status;
      if (!st?.placement || x.name === except || !HOLDING.includes(st.phase)) continue;
      const t = x.trackers.get(st.attempt);
      if (st.phase === 'Restarting' && (!t || t.observation().stopped)) continue;
      for (const p of st.placement) held.add(`${p.node}/${p.device}`);
    }
    return inventoryFrom(this.registry.nodes(), held);
  }

  private observe(e: Entry, now: number): { obs: Observation; wakeMs?: number } {
    const obs: Observation = {};
    let wakeMs: number | undefined;
    if (e.cancelRequested) obs.cancelRequested = true;
    if (e.planObs) obs.plan = e.planObs;
    const st = e.status;
    if (st?.phase === 'Pending' && st.queued && st.plan) {
      const entries: QueueEntry[] = [];
      for (const x of this.jobs.values()) {
        const q = queuedRequest(this.state(x));
        const plan = q && this.planCache.get(q.planId);
        if (!q || !plan) continue;
        const r = x.spec.resources;
        entries.push({ name: x.name, priority: x.spec.priority, createdAt: x.createdAt, request: q.request, plan, resources: { gpuType: r.gpuType, ...(r.nodeSelector ? { nodeSelector: r.nodeSelector } : {}), min: r.gpus.min, max: r.gpus.max } });
      }
      const mine = entries.length ? schedulePass(entries, this.inventory()).find((o) => o.name === e.name) : undefined;
      if (mine) obs.placement = mine.ok ? { request: st.queued.request, ok: true, placement: mine.placement } : { request: st.queued.request, ok: false, reason: mine.reason, ...(mine.resize ? { resize: mine.resize } : {}) };
    }
    if (st && st.attempt > 0) {
      const t = e.trackers.get(st.attempt);
      if (t) {
        const a = t.observation();
        if (t.pendingUserError(now)) {
          a.failures = [];
          wakeMs = COLLATERAL_WINDOW_MS;
        }
        obs.attempt = a;
      }
    }
    const lost = this.registry.nodes().filter((n) => n.state === 'lost').map((n) => n.node);
    if (lost.length) obs.lostNodes = lost;
    return { obs, ...(wakeMs !== undefined ? { wakeMs } : {}) };
  }

  private async reconcile(name: string): Promise<void> {
    const e = this.jobs.get(name);
    if (!e || !this.leading) return;
    const t0 = performance.now();
    let result = 'error';
    try {
      for (let tries = 0; ; tries++) {
        const now = Date.now();
        const { obs, wakeMs } = this.observe(e, now);
        const prev = e.status;
        const d = decide(this.state(e), obs, now, this.cfg);
        const next: StoredStatus = { ...d.status, ...e.extras };
        const changed = JSON.stringify(next) !== JSON.stringify(prev ?? null);
        if (changed) {
          try {
            const rec = await this.store.updateJob(name, e.version, { status: next, phase: next.phase });
            e.version = rec.version;
          } catch (err) {
            if (isMistError(err) && err.code === 'CONFLICT' && tries < 5) {
              const rec = await this.store.getJob(name);
              if (!rec) return;
              e.version = rec.version;
              e.status = (rec.status as StoredStatus | null) ?? undefined;
              continue;
            }
            if (isMistError(err) && err.code === 'NOT_FOUND') return;
            throw err;
          }
          e.status = next;
        }
        result = changed ? 'changed' : 'unchanged';
        for (const ev of d.events) await this.store.appendEvent({ job: name, type: ev.type, reason: ev.reason, message: ev.message, at: new Date(Date.parse(ev.time)) });
        if (changed || d.events.length) this.emit({ name, ...(e.status ? { status: JSON.parse(JSON.stringify(e.status)) as StoredStatus } : {}), events: d.events, generation: e.generation });
        await this.afterTransition(e, prev, next);
        for (const a of d.actions) await this.execute(e, a);
        if (wakeMs !== undefined) this.queue.add(name, wakeMs);
        return;
      }
    } finally {
      this.metrics?.reconciles.inc({ result });
      this.metrics?.reconcileDuration.observe({ result }, (performance.now() - t0) / 1000);
      if (result !== 'unchanged') this.changed({ kind: 'job', job: name });
      const w = e.waiters;
      e.waiters = [];
      for (const f of w) f();
    }
  }

  /** Attempt bookkeeping, device release and calibration when the phase changed. */
  private async afterTransition(e: Entry, prev: StoredStatus | undefined, next: StoredStatus): Promise<void> {
    if (!prev || prev.phase === next.phase) return;
    if (next.phase === 'Running' && !this.admitted.has(e.name)) {
      this.admitted.add(e.name);
      this.metrics?.admissionWait.observe(Math.max(0, (Date.now() - e.createdAt) / 1000));
    }
    if (next.phase === 'Restarting') this.metrics?.restarts.inc({ reason: next.lastFailure?.reason ?? next.reason ?? 'Unknown' });
    if (isTerminal(next.phase)) this.metrics?.jobsFinished.inc({ phase: next.phase });
    const a = prev.attempt;
    const ended = next.phase === 'Restarting' || next.phase === 'Suspended' || isTerminal(next.phase) || next.attempt !== a;
    if (a > 0 && (prev.phase === 'Scheduled' || prev.phase === 'Running') && ended && !e.finished.has(a)) {
      e.finished.add(a);
      const f = next.lastFailure && next.lastFailure.attempt === a ? next.lastFailure : undefined;
      const outcome = next.phase === 'Succeeded' ? 'succeeded' : next.reason === 'Cancelled' ? 'cancelled' : 'failed';
      await this.store
        .finishAttempt(e.name, a, { endedAt: new Date(), outcome, ...(f ? { failureClass: f.class as FailureClass, message: f.message } : outcome !== 'succeeded' ? { message: next.message } : {}) })
        .catch((err) => this.log.warn(`job ${e.name}: finishAttempt ${a}: ${(err as Error).message}`));
    }
    if (!HOLDING.includes(next.phase) || next.phase === 'Restarting') this.wakeQueued(e.name);
    if (isTerminal(next.phase)) {
      for (const f of e.followers) f.onEnd?.();
      e.followers.clear();
      if (next.phase === 'Succeeded') this.spawn(this.calibrateAfter(e));
    }
  }

  /** Devices may have been freed: let the queued jobs try again. */
  private wakeQueued(except?: string): void {
    for (const x of this.jobs.values()) if (x.name !== except && x.status?.phase === 'Pending' && x.status.queued) this.queue.add(x.name);
  }

  private async execute(e: Entry, a: Action): Promise<void> {
    if (!this.leading) return;
    switch (a.kind) {
      case 'plan':
        this.startPlanning(e, a);
        break;
      case 'schedule':
        this.queue.add(e.name);
        break;
      case 'launch':
        this.startLaunch(e, a);
        break;
      case 'stop':
        this.startStop(e, a);
        break;
      case 'delete':
        await this.store.deleteJob(e.name);
        this.jobs.delete(e.name);
        this.admitted.delete(e.name);
        this.queue.forget(e.name);
        this.changed({ kind: 'job', job: e.name });
        this.log.info(`job ${e.name} deleted (ttlSecondsAfterFinished)`);
        this.emit({ name: e.name, events: [], generation: e.generation, deleted: true });
        break;
      case 'requeueAfter':
        this.queue.add(e.name, Math.max(10, Math.ceil(a.seconds * 1000) + 5));
        break;
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // actions

  private async loadPlan(id: string): Promise<Plan> {
    const cached = this.planCache.get(id);
    if (cached) return cached;
    const stored = await this.store.getPlan(id);
    if (!stored) throw new MistError('NOT_FOUND', `plan ${id} is not in the store`);
    this.planCache.set(id, stored.plan);
    return stored.plan;
  }

  private startPlanning(e: Entry, a: Extract<Action, { kind: 'plan' }>): void {
    if (e.planningFor === a.request) return;
    e.planningFor = a.request;
    this.spawn(
      (async () => {
        const gpu = a.gpuType;
        let slice: ClusterSlice | undefined = a.slice;
        if (!slice) {
          const nodes = eligibleNodes(this.inventory(), { gpuType: gpu, ...(e.spec.resources.nodeSelector ? { nodeSelector: e.spec.resources.nodeSelector } : {}) });
          slice = canonicalSlice(nodes, gpu, a.gpus) ?? { gpu, nodes: 1, gpusPerNode: a.gpus };
        }
        const calRow = await this.store.latestCalibration(this.cluster, gpu);
        const cal = fittedFrom(calRow?.params, gpu);
        const planId = `${e.name}-${e.createdAt.toString(36)}-p${a.request}`;
        let obs: PlanObservation;
        const existing = await this.store.getPlan(planId);
        if (existing) {
          this.planCache.set(planId, existing.plan);
          obs = { request: a.request, ok: true, plan: existing.plan };
        } else {
          let hw;
          try {
            hw = planningHardware(gpu, cal, a.marginFactor);
          } catch (err) {
            hw = planningHardware(gpu, undefined, a.marginFactor);
            this.log.warn(`job ${e.name}: calibration of ${this.cluster}/${gpu} not applied: ${(err as Error).message}`);
          }
          const t0 = performance.now();
          const out = await planJob(e.spec, slice, hw, planId, () => performance.now() / 1000).catch((err: unknown) => {
            this.metrics?.tunerSolves.inc({ status: 'error' });
            throw err;
          });
          this.metrics?.tunerSolves.inc({ status: solveStatusLabel(out.plan ? out.record?.status : 'infeasible') });
          this.metrics?.tunerSolveDuration.observe({ solver: out.record?.solver === 'glpk' ? 'glpk' : 'dp' }, out.record?.seconds ?? (performance.now() - t0) / 1000);
          if (out.plan) {
            const plan: Plan = {
              ...out.plan,
              tuner: { ...(out.plan.tuner ?? {}), calibration: cal && calRow ? { cluster: this.cluster, fittedAt: calRow.fittedAt.toISOString(), fromJobs: calRow.fromJobs, fitted: cal } : null },
            };
            await this.store.savePlan(plan, { job: e.name, ...(out.record ? { record: out.record } : {}) });
            this.planCache.set(planId, plan);
            obs = { request: a.request, ok: true, plan };
            this.log.info(`job ${e.name}: plan ${planId} (${planSummary(plan)}) predicted ${plan.predicted?.iterationSeconds.toFixed(4)} s/step${cal ? ' with the calibration of ' + this.cluster + '/' + gpu : ' with the catalog'}, tuned in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
          } else {
            obs = { request: a.request, ok: false, reason: out.reason ?? 'no plan fits' };
            this.log.info(`job ${e.name}: infeasible: ${obs.reason}`);
          }
        }
        e.planObs = obs;
        if (e.planningFor === a.request) e.planningFor = undefined;
        this.queue.add(e.name);
      })(),
    );
  }

  private checkpointDir(e: Entry): { dir: string; every: number; own: boolean } {
    const c = e.spec.training.checkpoint;
    const steps = e.spec.training.steps;
    if (c) return { dir: c.dir.replace(/^file:\/\//, ''), every: c.intervalSteps, own: false };
    return { dir: join(this.stateDir, 'checkpoints', `${e.name}-${e.createdAt.toString(36)}`), every: Math.max(1, Math.ceil(steps / 4)), own: true };
  }

  private startLaunch(e: Entry, a: Extract<Action, { kind: 'launch' }>): void {
    if (e.launching.has(a.attempt)) return;
    e.launching.add(a.attempt);
    const t = this.tracker(e, a.attempt) ?? new AttemptTracker(a.attempt, a.placement.length);
    e.trackers.set(a.attempt, t);
    for (const k of e.trackers.keys()) if (k < a.attempt - 1) e.trackers.delete(k);
    this.spawn(
      (async () => {
        try {
          const plan = await this.loadPlan(a.planId);
          const rank0 = a.placement.find((p) => p.rank === 0) ?? a.placement[0]!;
          const masterAddr = this.registry.get(rank0.node)?.hello?.labels[ADDRESS_LABEL] ?? '127.0.0.1';
          const masterPort = await freePort();
          const ck = this.checkpointDir(e);
          if (ck.own) mkdirSync(ck.dir, { recursive: true });
          const env: Record<string, string> = {
            MIST_STEPS: String(e.spec.training.steps),
            MIST_SEED: String(e.spec.training.seed),
            MIST_CHECKPOINT_DIR: ck.dir,
            MIST_CHECKPOINT_EVERY: String(ck.every),
          };
          if (a.resumeFrom || (ck.own && a.attempt > 1)) env.MIST_RESUME = '1';
          if (e.spec.resources.gpuType === 'cpu') Object.assign(env, { OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MIST_THREADS: '1' });
          await this.store.recordAttempt({ job: e.name, attempt: a.attempt, planId: a.planId, startedAt: new Date() }).catch(() => undefined);
          const out = await launchPlan(this.client, {
            job: e.name,
            attempt: a.attempt,
            plan: { ...(plan as unknown as Record<string, unknown>), placement: a.placement } as { placement: Placement[] } & Record<string, unknown>,
            runtime: e.spec.runtime,
            masterAddr,
            masterPort,
            env,
            deadlineMs: 30_000,
            stopGraceSeconds: this.o.stopGraceSeconds ?? 5,
          });
          if (out.ok) {
            await this.store.appendEvent({ job: e.name, type: 'Normal', reason: 'Launched', message: `attempt ${a.attempt}: ${a.placement.length} ranks launched on ${out.nodes.map((n) => n.node).join(', ')} (master ${masterAddr}:${masterPort}) in ${out.seconds.toFixed(2)} s${env.MIST_RESUME ? `, resuming from the latest checkpoint in ${ck.dir}` : ''}`, at: new Date() });
          } else {
            const bad = out.nodes.find((n) => !n.ok)!;
            const code = bad.error?.code ?? 'UNAVAILABLE';
            const cls: FailureClass = code === 'BAD_INPUT' ? 'user_error' : 'infra_error';
            const rank = Math.min(...a.placement.filter((p) => p.node === bad.node).map((p) => p.rank));
            t.rankExited(rank, bad.node, { failureClass: cls, message: `launch on ${bad.node} failed: ${code}: ${bad.error?.message ?? ''}` }, Date.now());
            t.stopConfirmed = true;
          }
        } catch (err) {
          t.rankExited(a.placement[0]!.rank, a.placement[0]!.node, { failureClass: 'infra_error', message: `launch failed: ${(err as Error).message}` }, Date.now());
        } finally {
          e.launching.delete(a.attempt);
          this.queue.add(e.name);
        }
      })(),
    );
  }

  private startStop(e: Entry, a: Extract<Action, { kind: 'stop' }>): void {
    const t = this.tracker(e, a.attempt) ?? new AttemptTracker(a.attempt, e.status?.world ?? 0, true);
    e.trackers.set(a.attempt, t);
    t.stopRequested = true;
    if (e.stopping.has(a.attempt)) return;
    e.stopping.add(a.attempt);
    const nodes = [...new Set((e.status?.placement ?? []).map((p) => p.node))];
    this.spawn(
      (async () => {
        try {
          const missing = nodes.length ? await stopPlan(this.client, e.name, a.attempt, nodes, this.o.stopGraceSeconds ?? 5, a.reason) : [];
          if (missing.length === 0) t.stopConfirmed = true;
          else this.log.warn(`job ${e.name}: attempt ${a.attempt}: no stop confirmation from ${missing.join(', ')}`);
        } finally {
          e.stopping.delete(a.attempt);
          this.queue.add(e.name);
          this.wakeQueued(e.name);
        }
      })(),
    );
  }

  // -------------------------------------------------------------------------------------------------------------
  // calibration

  private async samplesOfJob(name: string) {
    const rec = await this.store.getJob(name);
    const planId = (rec?.status as JobStatus | null)?.plan?.id;
    if (!planId) return null;
    const plan = await this.loadPlan(planId).catch(() => null);
    if (!plan) return null;
    return sampleOf(plan, await this.store.listProfiles(name));
  }

  private async calibrateAfter(e: Entry): Promise<void> {
    if (e.calibrating || e.extras.calibration) return;
    e.calibrating = true;
    try {
      const planId = e.status?.plan?.id;
      const plan = planId ? await this.loadPlan(planId) : undefined;
      const sample = plan ? sampleOf(plan, await this.store.listProfiles(e.name)) : null;
      if (!plan || !sample) {
        e.extras.calibration = { error: 'too few profiled steps to score or calibrate' };
      } else {
        const used = (plan.tuner as { calibration?: { fitted?: FittedCalibration } | null } | undefined)?.calibration?.fitted;
        const score = scoreJob(e.name, sample, used);
        const gpu = plan.cluster.gpu;
        const prev = await this.store.latestCalibration(this.cluster, gpu);
        const others = (prev?.fromJobs ?? []).filter((j) => j !== e.name).slice(-(MAX_FIT_JOBS - 1));
        const samples = [sample];
        const fromJobs: string[] = [];
        for (const j of others) {
          const s = await this.samplesOfJob(j).catch(() => null);
          if (s && s.plan.cluster.gpu === gpu) {
            samples.unshift(s);
            fromJobs.push(j);
          }
        }
        fromJobs.push(e.name);
        const cal = refit(samples);
        await this.store.saveCalibration({ cluster: this.cluster, gpu, params: cal, fittedAt: new Date(), fromJobs, score });
        e.extras.calibration = { ...score, fittedFromJobs: fromJobs };
        const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
        await this.store.appendEvent({
          job: e.name,
          type: 'Normal',
          reason: 'Calibrated',
          message: `held-out prediction error ${pct(score.predictionErrorBefore)} with the catalog, ${pct(score.predictionErrorAfter)} ${score.protocol === 'split' ? 'fitted on the first half of the steps' : 'with the calibration it was planned with'}; calibration of ${this.cluster}/${gpu} refitted on ${fromJobs.join(', ')}`,
          at: new Date(),
        });
        this.log.info(`job ${e.name}: prediction error before ${pct(score.predictionErrorBefore)}, after ${pct(score.predictionErrorAfter)}; calibration ${this.cluster}/${gpu} fitted on ${fromJobs.join(', ')}`);
      }
    } catch (err) {
      e.extras.calibration = { error: `calibration failed: ${(err as Error).message}` };
      this.log.warn(`job ${e.name}: ${e.extras.calibration.error}`);
    } finally {
      e.calibrating = false;
      this.queue.add(e.name);
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // jobs from Kubernetes (operator/k8s/operator.ts): the MistJob is the desired state, the store the job's state

  /** Listens to job changes (status persisted, lifecycle events, TTL deletion). Returns the unsubscribe. */
  onJob(listener: (c: JobChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(c: JobChange): void {
    for (const l of this.listeners) {
      try {
        l(c);
      } catch (err) {
        this.log.warn(`job listener failed: ${(err as Error).message}`);
      }
    }
  }

  private mustLead(): void {
    if (this.started && !this.leading && !this.closing) {
      throw new MistError('UNAVAILABLE', 'this controller replica is a standby (it does not hold the leader lease); send requests to the leader — the Service routes only to the ready replica, which is the leader');
    }
  }

  /** The source tag of a stored job ('kubernetes' for MistJobs), or undefined for REST jobs. */
  jobSource(name: string): { source?: string; uid?: string } | undefined {
    const e = this.jobs.get(name);
    if (!e) return undefined;
    const a = e.doc.metadata.annotations ?? {};
    return { ...(a[SOURCE_ANNOTATION] ? { source: a[SOURCE_ANNOTATION] } : {}), ...(a[UID_ANNOTATION] ? { uid: a[UID_ANNOTATION] } : {}) };
  }

  /** What the Kubernetes adapter mirrors into a MistJob's status (operator/k8s/status.ts JobFacts). */
  jobFacts(name: string): { status?: StoredStatus; planSummary: string | null; planSpace: string | null; measuredStepSeconds: number | null; tokensPerSecond: number | null; generation: number } | undefined {
    const e = this.jobs.get(name);
    if (!e) return undefined;
    const st = e.status;
    const plan = st?.plan ? this.planCache.get(st.plan.id) : undefined;
    return {
      ...(st ? { status: JSON.parse(JSON.stringify(st)) as StoredStatus } : {}),
      planSummary: planSummary(plan),
      planSpace: plan?.space ?? null,
      measuredStepSeconds: e.stepSeconds ?? null,
      tokensPerSecond: e.rate ?? null,
      generation: e.generation,
    };
  }

  /** Names of the jobs that came from Kubernetes. */
  externalJobs(): string[] {
    return [...this.jobs.values()].filter((e) => e.doc.metadata.annotations?.[SOURCE_ANNOTATION] === 'kubernetes').map((e) => e.name);
  }

  /**
   * Creates or updates a job from a MistJob (validated like a REST submit; BAD_INPUT names the field). A changed
   * spec (suspend included) is stored with the object's generation and reconciled; an unchanged one only updates
   * the generation. `spec.model` is immutable but untyped in the CRD, so the API server cannot refuse a change to
   * it: a changed model is ignored (the job keeps the model its plans were made for) and reported in `ignored`,
   * while the other changes apply. Returns what happened.
   */
  async applyExternal(doc: MistJob, o: { generation: number; uid: string }): Promise<{ what: 'created' | 'updated' | 'unchanged'; ignored: string[] }> {
    if (!this.leading) throw new MistError('UNAVAILABLE', 'not the leader');
    const checked = validateJob(doc, jobValidationContext(this.runtimes));
    const name = checked.metadata.name;
    const prev = this.jobs.get(name);
    const ignored = prev && JSON.stringify(prev.spec.model) !== JSON.stringify(checked.spec.model) ? ['spec.model'] : [];
    const valid = ignored.length && prev ? { ...checked, spec: { ...checked.spec, model: prev.spec.model } } : checked;
    const stored = {
      ...valid,
      metadata: { ...valid.metadata, annotations: { ...(valid.metadata.annotations ?? {}), [SOURCE_ANNOTATION]: 'kubernetes', [UID_ANNOTATION]: o.uid }, generation: o.generation },
    } as MistJob;
    const e = this.jobs.get(name);
    if (!e) {
      const rec = await this.store.createJob({ name, spec: stored, priority: valid.spec.priority, phase: 'Pending', createdAt: new Date() });
      const ne = this.entryFrom(name, rec.version, rec.createdAt.getTime(), stored, null);
      this.jobs.set(name, ne);
      await this.store.appendEvent({ job: name, type: 'Normal', reason: 'Submitted', message: `MistJob ${valid.metadata.namespace ?? ''}/${name} (generation ${o.generation}) accepted`, at: new Date() });
      this.queue.add(name);
      return { what: 'created', ignored };
    }
    if (e.doc.metadata.annotations?.[SOURCE_ANNOTATION] !== 'kubernetes') throw new MistError('CONFLICT', `job "${name}" already exists (submitted through the API)`);
    const same = JSON.stringify(e.spec) === JSON.stringify(valid.spec);
    if (same && e.generation === o.generation) return { what: 'unchanged', ignored };
    for (let tries = 0; ; tries++) {
      try {
        const rec = await this.store.updateJob(name, e.version, { spec: stored });
        e.version = rec.version;
        break;
      } catch (err) {
        if (isMistError(err) && err.code === 'CONFLICT' && tries < 5) {
          const rec = await this.store.getJob(name);
          if (!rec) throw err;
          e.version = rec.version;
          continue;
        }
        throw err;
      }
    }
    e.doc = stored;
    e.spec = stored.spec;
    e.generation = o.generation;
    this.queue.add(name);
    return { what: same ? 'unchanged' : 'updated', ignored };
  }

  /**
   * Removes a job whose MistJob is being deleted: a running job is cancelled and its ranks stopped first (waiting
   * at most `timeoutMs` for the agents' confirmation), then the job leaves the store. Returns whether every rank
   * is known to be stopped.
   */
  async removeExternal(name: string, o: { timeoutMs?: number } = {}): Promise<{ stopped: boolean }> {
    if (!this.leading) throw new MistError('UNAVAILABLE', 'not the leader');
    const e = this.jobs.get(name);
    if (!e) return { stopped: true };
    const deadline = Date.now() + (o.timeoutMs ?? Math.max(10_000, this.cfg.stopTimeoutSeconds * 1000));
    const ranksGone = () => {
      const st = e.status;
      if (!st || st.attempt === 0 || !st.placement) return true;
      if (e.launching.size > 0) return false;
      const t = e.trackers.get(st.attempt);
      if (!t) return st.stopSentFor === st.attempt || !HOLDING.includes(st.phase);
      return t.observation().stopped || (!HOLDING.includes(st.phase) && st.phase !== 'Restarting' && st.stopSentFor !== st.attempt && t.gone.size >= t.world);
    };
    if (e.status && !isTerminal(e.status.phase)) e.cancelRequested = true;
    let stopped = ranksGone();
    while (!stopped && Date.now() < deadline && this.leading) {
      await this.reconciled(e);
      const st = e.status;
      if (st && st.attempt > 0 && st.stopSentFor !== st.attempt && !ranksGone()) this.startStop(e, { kind: 'stop', attempt: st.attempt, reason: 'Deleted' });
      stopped = ranksGone();
      if (!stopped) await new Promise((r) => setTimeout(r, 100));
    }
    if (!this.leading) throw new MistError('UNAVAILABLE', 'leadership lost while deleting');
    await this.store.deleteJob(name);
    this.jobs.delete(name);
    this.queue.forget(name);
    this.wakeQueued();
    this.log.info(`job ${name} deleted (MistJob deleted${stopped ? '' : '; ranks not confirmed stopped'})`);
    return { stopped };
  }

  // -------------------------------------------------------------------------------------------------------------
  // ControllerService

  private entry(name: string): Entry {
    const e = this.jobs.get(name);
    if (!e) throw new MistError('NOT_FOUND', `job "${name}" does not exist`);
    return e;
  }

  private view(e: Entry): JobView {
    const st = e.status;
    const plan = st?.plan ? this.planCache.get(st.plan.id) : undefined;
    return {
      name: e.name,
      phase: st?.phase ?? 'Pending',
      ...(st?.plan ? { gpus: st.plan.gpus } : {}),
      planId: st?.plan?.id ?? null,
      planSummary: planSummary(plan),
      step: st?.progress?.step ?? null,
      tokensPerSecond: st && HOLDING.includes(st.phase) ? (e.rate ?? null) : null,
      ...this.liveFigures(e, plan),
      restarts: st?.restartCount ?? 0,
      createdAt: new Date(e.createdAt).toISOString(),
      message: st?.message ?? null,
      reason: st?.reason ?? null,
    };
  }

  /** Measured MFU and the ETA of a running job, scaled from the plan's prediction by the measured token rate. */
  private liveFigures(e: Entry, plan: Plan | undefined): { mfu: number | null; etaSeconds: number | null; totalSteps: number } {
    const st = e.status;
    const pred = plan?.predicted;
    const rate = st && HOLDING.includes(st.phase) ? e.rate : undefined;
    if (!rate || !pred || !(pred.tokensPerSecond > 0)) return { mfu: null, etaSeconds: null, totalSteps: e.spec.training.steps };
    const tokensPerStep = pred.tokensPerSecond * pred.iterationSeconds;
    const left = st?.progress ? Math.max(0, st.progress.totalSteps - st.progress.step) : e.spec.training.steps;
    return { mfu: (pred.mfu * rate) / pred.tokensPerSecond, etaSeconds: (left * tokensPerStep) / rate, totalSteps: e.spec.training.steps };
  }

  /** Resolves after the job's next reconcile. */
  private reconciled(e: Entry): Promise<void> {
    return new Promise((r) => {
      e.waiters.push(r);
      this.queue.add(e.name);
    });
  }

  async submit(job: { text: string; format: 'yaml' | 'json' }): Promise<JobView> {
    this.mustLead();
    const doc = parseJobFile(job.text, job.format, 'body');
    const valid = validateJob(doc, jobValidationContext(this.runtimes));
    const name = valid.metadata.name;
    if (this.jobs.has(name)) throw new MistError('CONFLICT', `job "${name}" already exists`);
    const rec = await this.store.createJob({ name, spec: valid, priority: valid.spec.priority, phase: 'Pending', createdAt: new Date() });
    const e = this.entryFrom(name, rec.version, rec.createdAt.getTime(), valid, null);
    this.jobs.set(name, e);
    this.metrics?.jobsCreated.inc();
    this.changed({ kind: 'job', job: name });
    await this.store.appendEvent({ job: name, type: 'Normal', reason: 'Submitted', message: `job accepted: ${valid.spec.resources.gpus.min === valid.spec.resources.gpus.max ? valid.spec.resources.gpus.max : `${valid.spec.resources.gpus.min}–${valid.spec.resources.gpus.max}`} × ${valid.spec.resources.gpuType}, runtime ${valid.spec.runtime}`, at: new Date() });
    this.queue.add(name);
    return this.view(e);
  }

  async listJobs(filter?: { phase?: string }): Promise<JobView[]> {
    this.mustLead();
    return [...this.jobs.values()]
      .filter((e) => !filter?.phase || (e.status?.phase ?? 'Pending') === filter.phase)
      .sort((a, b) => a.createdAt - b.createdAt || (a.name < b.name ? -1 : 1))
      .map((e) => this.view(e));
  }

  async getJob(name: string): Promise<JobDetail> {
    this.mustLead();
    const e = this.entry(name);
    const st = e.status;
    const planId = st?.plan?.id;
    const plan = planId ? await this.loadPlan(planId).catch(() => undefined) : undefined;
    const events = await this.store.listEvents(name, { limit: 200 });
    const attempts = await this.store.listAttempts(name);
    return {
      ...this.view(e),
      spec: e.spec,
      status: st ?? null,
      conditions: st?.conditions ?? [],
      events: events.map((x) => ({ type: x.type, reason: x.reason, message: x.message, time: x.at.toISOString() })),
      ...(plan ? { plan } : {}),
      attempts: attempts.map((x) => ({
        attempt: x.attempt,
        planId: x.planId,
        outcome: x.outcome,
        failureClass: x.failureClass,
        message: x.message,
        startedAt: x.startedAt.toISOString(),
        finishedAt: x.endedAt ? x.endedAt.toISOString() : null,
      })),
      calibration: e.extras.calibration ?? null,
    };
  }

  async cancel(name: string): Promise<JobView> {
    this.mustLead();
    const e = this.entry(name);
    if (e.status && isTerminal(e.status.phase)) return this.view(e);
    e.cancelRequested = true;
    await this.reconciled(e);
    return this.view(e);
  }

  async logs(name: string, opts: { rank?: number; tailLines?: number }): Promise<{ lines: LogLine[] }> {
    this.mustLead();
    const e = this.entry(name);
    let lines = opts.rank === undefined ? e.logs : e.logs.filter((l) => l.rank === opts.rank);
    if (opts.tailLines !== undefined) lines = lines.slice(Math.max(0, lines.length - opts.tailLines));
    return { lines: lines.map((l) => ({ ...l })) };
  }

  followLogs(name: string, opts: { rank?: number }, onLine: (l: LogLine) => void, onEnd?: () => void): () => void {
    this.mustLead();
    const e = this.entry(name);
    if (e.status && isTerminal(e.status.phase)) {
      queueMicrotask(() => onEnd?.());
      return () => {};
    }
    const f = { ...(opts.rank !== undefined ? { rank: opts.rank } : {}), onLine, ...(onEnd ? { onEnd } : {}) };
    e.followers.add(f);
    return () => e.followers.delete(f);
  }

  async nodes(): Promise<NodeView[]> {
    this.mustLead();
    const now = Date.now();
    return this.registry.nodes().map((a) => ({
      name: a.node,
      devices: (a.hello?.devices ?? []).map((d) => ({ index: d.index, kind: d.kind, model: d.model, memoryBytes: d.memoryBytes })),
      heartbeatAgeSeconds: a.heartbeat ? Math.max(0, (now - a.lastSeenMs) / 1000) : null,
      lost: a.state === 'lost',
      labels: { ...(a.hello?.labels ?? {}) },
    }));
  }

  async plans(filter: Record<string, string>): Promise<unknown[]> {
    this.mustLead();
    const f: PlanFilter = {};
    if (filter.model) f.model = filter.model;
    if (filter.gpu) f.gpu = filter.gpu;
    if (filter.gpus) f.gpus = Number(filter.gpus);
    if (filter.space) f.space = filter.space;
    if (filter.job) f.job = filter.job;
    if (filter.since) f.since = new Date(filter.since);
    if (filter.until) f.until = new Date(filter.until);
    if (filter.limit) f.limit = Number(filter.limit);
    if (filter.offset) f.offset = Number(filter.offset);
    if (filter.order === 'newest' || filter.order === 'fastest') f.order = filter.order;
    return (await this.store.queryPlans(f)).map((s) => ({ ...s, createdAt: s.createdAt.toISOString() }));
  }

  async getPlan(id: string): Promise<unknown> {
    this.mustLead();
    const p: StoredPlan | null = await this.store.getPlan(id);
    if (!p) throw new MistError('NOT_FOUND', `plan "${id}" does not exist`);
    const record = p.hasRecord ? await this.store.getDecisionRecord(id) : null;
    return { ...p, createdAt: p.createdAt.toISOString(), record };
  }

  watch(listener: (c: ChangeEvent) => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  async overview(): Promise<Overview> {
    const now = Date.now();
    const allocations: Overview['allocations'] = [];
    for (const x of this.jobs.values()) {
      const st = x.status;
      if (!st?.placement || !HOLDING.includes(st.phase)) continue;
      for (const p of st.placement) allocations.push({ node: p.node, device: p.device, job: x.name });
    }
    const queue = [...this.jobs.values()]
      .filter((x) => x.status?.phase === 'Pending' || x.status?.phase === 'Planning')
      .sort((a, b) => b.spec.priority - a.spec.priority || a.createdAt - b.createdAt)
      .map((x) => ({
        name: x.name,
        priority: x.spec.priority,
        gpus: x.status?.plan?.gpus ?? null,
        waitingSeconds: Math.max(0, (now - (x.status?.queued?.since ?? x.createdAt)) / 1000),
        reason: x.status?.reason ?? 'Created',
        message: x.status?.message ?? '',
      }));
    return { allocations, queue };
  }

  async profiles(name: string): Promise<ProfilePoint[]> {
    this.entry(name);
    return (await this.store.listProfiles(name)).map((p) => ({
      attempt: p.attempt,
      rank: p.rank,
      stage: p.stage ?? null,
      node: p.node,
      step: p.step,
      loss: p.loss ?? null,
      stepSeconds: p.stepSeconds,
      peakMemoryBytes: p.peakMemoryBytes ?? null,
      tokens: p.tokens ?? null,
      at: p.at.toISOString(),
    }));
  }

  async ready(): Promise<{ ready: boolean; reason?: string }> {
    if (!this.started) return { ready: false, reason: 'starting' };
    if (this.closing) return { ready: false, reason: 'shutting down' };
    if (!this.leading) return { ready: false, reason: 'standby: another replica holds the leader lease' };
    if (this.nc.isClosed()) return { ready: false, reason: 'NATS connection closed' };
    return { ready: true };
  }

  // -------------------------------------------------------------------------------------------------------------
  // for commands and tests

  /** The job's current status (a copy), or undefined. */
  status(name: string): StoredStatus | undefined {
    const s = this.jobs.get(name)?.status;
    return s ? (JSON.parse(JSON.stringify(s)) as StoredStatus) : undefined;
  }

  get storeHandle(): Store {
    return this.store;
  }

  /** Alive agents known to the registry. */
  aliveNodes(): string[] {
    return this.registry.alive();
  }

  /** True when a finished job's calibration step is done (scored, or given up). */
  calibrationDone(name: string): boolean {
    return !!this.jobs.get(name)?.extras.calibration;
  }
}
