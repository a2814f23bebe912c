/**
 * An in-memory ControllerService for API and CLI tests (never used by the product). It validates just enough of
 * a MistJob to exercise the error paths (BAD_INPUT naming the field, CONFLICT on a taken name), and lets a test
 * script what a job does next: phases that advance on each poll, log lines, followers that end.
 */
import { EventEmitter } from 'node:events';
import { parse as parseYaml } from 'yaml';
import { MistError, badInput } from '../../protocol/src/errors.js';
import { isTerminalPhase, type ControllerService, type JobDetail, type JobView, type LogLine, type NodeView } from '../../controller/src/api/service.js';

interface FakeJob {
  detail: JobDetail;
  logs: LogLine[];
  /** Updates applied one per getJob call (what `mist submit --wait` sees while polling). */
  script: Array<Partial<JobView>>;
}

interface Follower {
  rank?: number;
  onLine: (l: LogLine) => void;
  onEnd?: () => void;
}

const NAME_RE = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

export class FakeControllerService implements ControllerService {
  readonly jobs = new Map<string, FakeJob>();
  nodeList: NodeView[] = [];
  planList: Array<Record<string, unknown>> = [];
  readiness: { ready: boolean; reason?: string } = { ready: true };
  /** Every call, in order: `[method, ...args]`. */
  readonly calls: Array<[string, ...unknown[]]> = [];
  /** Emits 'follow' when a log follower subscribes and 'unfollow' when it unsubscribes (tests await these). */
  readonly events = new EventEmitter();
  /** Thrown (once) by the next call of any method. */
  failNext: unknown = undefined;
  private readonly scripts = new Map<string, Array<Partial<JobView>>>();
  private readonly followers = new Map<string, Set<Follower>>();
  private clock = Date.parse('2025-01-01T00:00:00Z');

  /** The phases (or other fields) a job named `name` goes through on successive polls after it is submitted. */
  scriptFor(name: string, steps: Array<Partial<JobView>>): void {
    this.scripts.set(name, [...steps]);
    const job = this.jobs.get(name);
    if (job) job.script = [...steps];
  }

  private enter(method: string, ...args: unknown[]): void {
    this.calls.push([method, ...args]);
    if (this.failNext !== undefined) {
      const e = this.failNext;
      this.failNext = undefined;
      throw e;
    }
  }

  private job(name: string): FakeJob {
    const j = this.jobs.get(name);
    if (!j) throw new MistError('NOT_FOUND', `job "${name}" does not exist`);
    return j;
  }

  private view(j: FakeJob): JobView {
    const { spec: _spec, status: _status, conditions: _c, events: _e, plan: _p, attempts: _a, profiles: _pr, ...view } = j.detail;
    return view;
  }

  /** Adds a job directly (as if it had been submitted earlier). */
  addJob(view: Partial<JobView> & { name: string }, extra: Partial<JobDetail> = {}): JobDetail {
    this.clock += 1000;
    const detail: JobDetail = {
      phase: 'Pending',
      restarts: 0,
      createdAt: new Date(this.clock).toISOString(),
      spec: {},
      status: {},
      conditions: [],
      events: [],
      ...view,
      ...extra,
    };
    this.jobs.set(view.name, { detail, logs: [], script: this.scripts.get(view.name) ?? [] });
    return detail;
  }

  async submit(job: { text: string; format: 'yaml' | 'json' }): Promise<JobView> {
    this.enter('submit', job);
    let doc: unknown;
    try {
      doc = job.format === 'json' ? JSON.parse(job.text) : parseYaml(job.text);
    } catch (e) {
      throw badInput('body', `does not parse (${(e as Error).message.split('\n')[0]})`);
    }
    const o = doc as { kind?: unknown; metadata?: { name?: unknown }; spec?: { resources?: { gpus?: unknown } } };
    if (o.kind !== 'MistJob') throw badInput('kind', `expected "MistJob", got ${JSON.stringify(o.kind)}`);
    const name = o.metadata?.name;
    if (typeof name !== 'string' || !NAME_RE.test(name)) throw badInput('metadata.name', `${JSON.stringify(name)} is not a valid name`, 'valid: an RFC 1035 label, e.g. tiny-llm');
    if (!o.spec || typeof o.spec !== 'object') throw badInput('spec', 'is required');
    const gpus = o.spec.resources?.gpus;
    if (gpus !== undefined && (typeof gpus !== 'number' || !Number.isInteger(gpus) || gpus < 1)) throw badInput('spec.resources.gpus', `expected an integer ≥ 1, got ${JSON.stringify(gpus)}`);
    if (this.jobs.has(name)) throw new MistError('CONFLICT', `job "${name}" already exists; cancel it or pick another metadata.name`);
    const detail = this.addJob(
      { name, phase: 'Pending', ...(typeof gpus === 'number' ? { gpus } : {}), planId: null, planSummary: null, step: null, tokensPerSecond: null },
      { spec: o.spec, events: [{ type: 'Normal', reason: 'Submitted', message: 'accepted by the API', time: new Date(this.clock).toISOString() }] },
    );
    return this.view(this.job(detail.name));
  }

  async listJobs(filter?: { phase?: string }): Promise<JobView[]> {
    this.enter('listJobs', filter);
    return [...this.jobs.values()].filter((j) => !filter?.phase || j.detail.phase === filter.phase).map((j) => this.view(j));
  }

  async getJob(name: string): Promise<JobDetail> {
    this.enter('getJob', name);
    const j = this.job(name);
    const next = j.script.shift();
    if (next) this.update(name, next);
    return structuredClone(j.detail);
  }

  /** Changes a job's fields; reaching a terminal phase ends its log followers. */
  update(name: string, patch: Partial<JobDetail>): void {
    const j = this.job(name);
    Object.assign(j.detail, patch);
    if (isTerminalPhase(j.detail.phase)) {
      for (const f of this.followers.get(name) ?? []) f.onEnd?.();
      this.followers.delete(name);
    }
  }

  async cancel(name: string): Promise<JobView> {
    this.enter('cancel', name);
    const j = this.job(name);
    if (!isTerminalPhase(j.detail.phase)) {
      j.detail.events.push({ type: 'Normal', reason: 'Cancelled', message: 'cancelled through the API' });
      this.update(name, { phase: 'Cancelled', message: 'cancelled through the API' });
    }
    return this.view(j);
  }

  /** Appends a log line and hands it to the followers of that job. */
  addLog(name: string, l: LogLine): void {
    this.job(name).logs.push(l);
    for (const f of this.followers.get(name) ?? []) if (f.rank === undefined || f.rank === l.rank) f.onLine(l);
  }

  followerCount(name: string): number {
    return this.followers.get(name)?.size ?? 0;
  }

  async logs(name: string, opts: { rank?: number; tailLines?: number }): Promise<{ lines: LogLine[] }> {
    this.enter('logs', name, opts);
    let lines = this.job(name).logs.filter((l) => opts.rank === undefined || l.rank === opts.rank);
    if (opts.tailLines !== undefined) lines = opts.tailLines === 0 ? [] : lines.slice(-opts.tailLines);
    return { lines };
  }

  followLogs(name: string, opts: { rank?: number }, onLine: (l: LogLine) => void, onEnd?: () => void): () => void {
    this.calls.push(['followLogs', name, opts]);
    const f: Follower = { ...opts, onLine, onEnd };
    const set = this.followers.get(name) ?? new Set<Follower>();
    set.add(f);
    this.followers.set(name, set);
    this.events.emit('follow', name);
    return () => {
      if (set.delete(f)) this.events.emit('unfollow', name);
    };
  }

  async nodes(): Promise<NodeView[]> {
    this.enter('nodes');
    return this.nodeList;
  }

  async plans(filter: Record<string, string>): Promise<unknown[]> {
    this.enter('plans', filter);
    const out = this.planList.filter((p) => ['model', 'gpu', 'space', 'job'].every((k) => filter[k] === undefined || p[k] === filter[k]));
    return filter.limit ? out.slice(0, Number(filter.limit)) : out;
  }

  async getPlan(id: string): Promise<unknown> {
    this.enter('getPlan', id);
    const p = this.planList.find((x) => x.id === id);
    if (!p) throw new MistError('NOT_FOUND', `plan "${id}" does not exist`);
    return p;
  }

  async ready(): Promise<{ ready: boolean; reason?: string }> {
    this.enter('ready');
    return this.readiness;
  }
}
