/**
 * The dashboard's live feed: a WebSocket at `/ws` (ws 8) on the API's HTTP server. docs/dashboard.md, "Live
 * protocol", is the reference; in short:
 *
 *   - auth: the upgrade request carries the `mist_token` cookie (set by the dashboard's `?token=` visit) or
 *     `Authorization: Bearer TOKEN`, checked like every REST request (authenticateRequest); a browser's Origin
 *     must match the Host (no cross-site socket). 401/403 refuse the upgrade.
 *   - the server says `hello`; the client sends `{"type":"subscribe","topics":[…]}` (jobs, nodes, overview,
 *     job/NAME); the server answers each topic with a `snapshot`, then sends `delta`s when it changes.
 *   - every server message carries `seq`, 1, 2, 3, … per connection; a client that sees a gap resubscribes.
 *   - deltas are coalesced and throttled per client (at most one flush per `throttleMs`, default 200 ms, so
 *     ≤ 5 messages/s per topic); a client whose socket is backed up is skipped until it drains.
 *   - the server pings every `pingMs` (default 15 s); a client that did not answer the previous ping is dropped.
 *
 * What changed comes from the core's change feed (ControllerService.watch); without one the hub re-reads every
 * second. The data is computed once per change and shared by all clients; each client gets its own diff.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { isMistError } from '../../../protocol/src/errors.js';
import { authenticateRequest, type Principal, type TokenStore } from './auth.js';
import type { MetricsRegistry } from './metrics.js';
import type { ChangeEvent, ControllerService, JobView, LogLine, NodeView, Overview, ProfilePoint } from './service.js';

export interface LiveOptions {
  service: ControllerService;
  tokens: TokenStore;
  metrics?: MetricsRegistry;
  /** Minimum milliseconds between two flushes to one client (default 200: ≤ 5 updates/s). */
  throttleMs?: number;
  /** Keepalive ping period (default 15 000 ms). */
  pingMs?: number;
  /** How often heartbeat ages are refreshed for `nodes`/`overview` subscribers (default 2000 ms). */
  nodesRefreshMs?: number;
  /** Most open connections; more are refused with 503 (default 1000). */
  maxClients?: number;
  /** Lines of log tail in a `job/NAME` topic (default 200). */
  logTail?: number;
  log?: (msg: string) => void;
}

export const WS_PATH = '/ws';
const MAX_INBOUND = 64 * 1024;
const BACKLOG_BYTES = 4 * 1024 * 1024;
const TOPIC_RE = /^(jobs|nodes|overview|job\/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)$/;
const MAX_TOPICS = 32;

export type ServerMessage =
  | { type: 'hello'; seq: number; principal: Principal; throttleMs: number; topics: string[] }
  | { type: 'snapshot' | 'delta'; seq: number; topic: string; at: number; data: unknown }
  | { type: 'error'; seq: number; message: string; topic?: string };

interface JobTopicState {
  job: string;
  profiles: number;
  logs: string;
}

interface Client {
  ws: WebSocket;
  principal: Principal;
  seq: number;
  alive: boolean;
  topics: Set<string>;
  dirty: Set<string>;
  /** Topics whose snapshot is still owed. */
  fresh: Set<string>;
  lastFlush: number;
  timer: NodeJS.Timeout | undefined;
  flushing: boolean;
  sentJobs: Map<string, string>;
  sentPlain: Map<string, string>;
  sentJob: Map<string, JobTopicState>;
}

/** One value computed on demand and shared until invalidated (one read of the core per change, not per client). */
class Shared<T> {
  private p: Promise<T> | undefined;
  constructor(private readonly load: () => Promise<T>) {}
  get(): Promise<T> {
    this.p ??= this.load();
    return this.p;
  }
  invalidate(): void {
    this.p = undefined;
  }
}

function rejectUpgrade(socket: Duplex, status: number, text: string, extra = ''): void {
  const body = JSON.stringify({ error: { code: status === 401 ? 'UNAUTHENTICATED' : status === 403 ? 'FORBIDDEN' : status === 404 ? 'NOT_FOUND' : 'UNAVAILABLE', message: text, retryable: status === 503 } }) + '\n';
  if (socket.writable) {
    socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : status === 404 ? 'Not Found' : 'Service Unavailable'}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`);
  } else socket.destroy();
}

/** A browser's Origin must name the host it connects to (cookie-authenticated sockets cannot be opened cross-site). */
export function originAllowed(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true; // not a browser (CLI, bench, tests): the token is proof enough
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

export class LiveHub {
  readonly wss: WebSocketServer;
  private readonly clients = new Set<Client>();
  private readonly throttleMs: number;
  private readonly logTail: number;
  private readonly jobs: Shared<JobView[]>;
  private readonly nodes: Shared<NodeView[]>;
  private readonly overview: Shared<Overview & { nodes: NodeView[]; jobs: Array<Pick<JobView, 'name' | 'phase'>> }>;
  private readonly details = new Map<string, { detail: Shared<unknown>; profiles: Shared<ProfilePoint[]>; logs: Shared<LogLine[]> }>();
  private readonly timers: NodeJS.Timeout[] = [];
  private unwatch: (() => void) | undefined;
  private closed = false;

  constructor(private readonly o: LiveOptions) {
    this.throttleMs = o.throttleMs ?? 200;
    this.logTail = o.logTail ?? 200;
    const s = o.service;
    this.jobs = new Shared(() => s.listJobs());
    this.nodes = new Shared(() => s.nodes());
    this.overview = new Shared(async () => {
      const [ov, nodes, jobs] = await Promise.all([s.overview ? s.overview() : Promise.resolve({ allocations: [], queue: [] }), this.nodes.get(), this.jobs.get()]);
      return { ...ov, nodes, jobs: jobs.map((j) => ({ name: j.name, phase: j.phase })) };
    });
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_INBOUND, clientTracking: false });
    if (s.watch) this.unwatch = s.watch((c) => this.onChange(c));
    else this.timers.push(setInterval(() => this.markAll(), 1000).unref());
    this.timers.push(
      setInterval(() => {
        this.nodes.invalidate();
        this.overview.invalidate();
        this.mark((t) => t === 'nodes' || t === 'overview');
      }, o.nodesRefreshMs ?? 2000).unref(),
    );
    this.timers.push(setInterval(() => this.ping(), o.pingMs ?? 15_000).unref());
  }

  get size(): number {
    return this.clients.size;
  }

  /** Handles an HTTP upgrade; anything but `/ws` is refused with 404. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://mist.invalid').pathname;
    } catch {
      return rejectUpgrade(socket, 404, 'bad URL');
    }
    if (path !== WS_PATH) return rejectUpgrade(socket, 404, `no WebSocket at ${path.slice(0, 80)}; the live feed is ${WS_PATH}`);
    if (this.closed) return rejectUpgrade(socket, 503, 'shutting down');
    const principal = authenticateRequest(req, this.o.tokens);
    if (!principal) return rejectUpgrade(socket, 401, 'a token is required: the mist_token cookie or "Authorization: Bearer TOKEN"', 'WWW-Authenticate: Bearer realm="mist"\r\n');
    if (!originAllowed(req)) return rejectUpgrade(socket, 403, 'cross-origin WebSocket refused');
    if (this.clients.size >= (this.o.maxClients ?? 1000)) return rejectUpgrade(socket, 503, 'too many WebSocket clients');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, principal));
  }

  private accept(ws: WebSocket, principal: Principal): void {
    const c: Client = { ws, principal, seq: 0, alive: true, topics: new Set(), dirty: new Set(), fresh: new Set(), lastFlush: 0, timer: undefined, flushing: false, sentJobs: new Map(), sentPlain: new Map(), sentJob: new Map() };
    this.clients.add(c);
    this.o.metrics?.websocketClients.set(this.clients.size);
    ws.on('pong', () => (c.alive = true));
    ws.on('message', (data, isBinary) => this.onMessage(c, isBinary ? '' : data.toString()));
    ws.on('close', () => this.drop(c));
    ws.on('error', () => this.drop(c));
    this.send(c, { type: 'hello', seq: 0, principal, throttleMs: this.throttleMs, topics: ['jobs', 'nodes', 'overview', 'job/NAME'] });
  }

  private drop(c: Client): void {
    if (!this.clients.delete(c)) return;
    if (c.timer) clearTimeout(c.timer);
    this.o.metrics?.websocketClients.set(this.clients.size);
    c.ws.terminate();
  }

  private send(c: Client, m: ServerMessage): void {
    if (c.ws.readyState !== c.ws.OPEN) return;
    m.seq = ++c.seq;
    this.o.metrics?.websocketMessages.inc({ type: m.type });
    c.ws.send(JSON.stringify(m));
  }

  private onMessage(c: Client, text: string): void {
    let m: { type?: unknown; topics?: unknown };
    try {
      m = JSON.parse(text) as typeof m;
    } catch {
      return this.send(c, { type: 'error', seq: 0, message: 'expected a JSON message like {"type":"subscribe","topics":["jobs"]}' });
    }
    const topics = Array.isArray(m.topics) ? m.topics.filter((t): t is string => typeof t === 'string') : [];
    if (m.type === 'subscribe') {
      for (const t of topics) {
        if (!TOPIC_RE.test(t)) {
          this.send(c, { type: 'error', seq: 0, topic: t.slice(0, 300), message: `unknown topic "${t.slice(0, 80)}"; valid: jobs, nodes, overview, job/NAME` });
          continue;
        }
        if (!c.topics.has(t) && c.topics.size >= MAX_TOPICS) {
          this.send(c, { type: 'error', seq: 0, topic: t, message: `at most ${MAX_TOPICS} topics per connection` });
          continue;
        }
        c.topics.add(t);
        c.fresh.add(t);
        c.dirty.add(t);
      }
      this.schedule(c, true);
    } else if (m.type === 'unsubscribe') {
      for (const t of topics) {
        c.topics.delete(t);
        c.dirty.delete(t);
        c.fresh.delete(t);
        c.sentPlain.delete(t);
        c.sentJob.delete(t);
        if (t === 'jobs') c.sentJobs.clear();
      }
    } else {
      this.send(c, { type: 'error', seq: 0, message: 'unknown message type; valid: subscribe, unsubscribe' });
    }
  }

  private detailOf(name: string) {
    let d = this.details.get(name);
    if (!d) {
      const s = this.o.service;
      d = {
        detail: new Shared(() => s.getJob(name)),
        profiles: new Shared(() => (s.profiles ? s.profiles(name) : Promise.resolve([]))),
        logs: new Shared(async () => (await s.logs(name, { tailLines: this.logTail })).lines),
      };
      this.details.set(name, d);
    }
    return d;
  }

  private onChange(c: ChangeEvent): void {
    if (c.kind === 'node') {
      this.nodes.invalidate();
      this.overview.invalidate();
      this.mark((t) => t === 'nodes' || t === 'overview');
      return;
    }
    const d = this.details.get(c.job);
    const topic = `job/${c.job}`;
    if (c.kind === 'log') {
      d?.logs.invalidate();
      this.mark((t) => t === topic);
      return;
    }
    if (c.kind === 'profile') d?.profiles.invalidate();
    d?.detail.invalidate();
    this.jobs.invalidate();
    this.overview.invalidate();
    this.mark((t) => t === topic || t === 'jobs' || (c.kind === 'job' && t === 'overview'));
  }

  private markAll(): void {
    this.jobs.invalidate();
    this.nodes.invalidate();
    this.overview.invalidate();
    for (const d of this.details.values()) {
      d.detail.invalidate();
      d.profiles.invalidate();
      d.logs.invalidate();
    }
    this.mark(() => true);
  }

  private mark(pred: (topic: string) => boolean): void {
    for (const c of this.clients) {
      let any = false;
      for (const t of c.topics) {
        if (pred(t)) {
          c.dirty.add(t);
          any = true;
        }
      }
      if (any) this.schedule(c, false);
    }
    // forget cached details nobody watches
    for (const name of this.details.keys()) {
      const t = `job/${name}`;
      if (![...this.clients].some((c) => c.topics.has(t))) this.details.delete(name);
    }
  }

  /** At most one flush per throttle window; changes inside the window are coalesced into the next flush. */
  private schedule(c: Client, soon: boolean): void {
    if (c.timer || c.flushing) return;
    const wait = soon ? 0 : Math.max(0, c.lastFlush + this.throttleMs - Date.now());
    c.timer = setTimeout(() => {
      c.timer = undefined;
      void this.flush(c);
    }, wait);
  }

  private async flush(c: Client): Promise<void> {
    if (!this.clients.has(c) || c.dirty.size === 0) return;
    if (c.ws.bufferedAmount > BACKLOG_BYTES) {
      // a slow client: keep its dirty set and try again later (its updates coalesce meanwhile)
      c.lastFlush = Date.now();
      this.schedule(c, false);
      return;
    }
    c.flushing = true;
    c.lastFlush = Date.now();
    const topics = [...c.dirty];
    c.dirty.clear();
    try {
      for (const t of topics) {
        if (!c.topics.has(t)) continue;
        try {
          await this.flushTopic(c, t, c.fresh.delete(t));
        } catch (e) {
          const message = isMistError(e) ? e.message : e instanceof Error ? e.message : String(e);
          this.send(c, { type: 'error', seq: 0, topic: t, message });
          if (isMistError(e) && e.code === 'NOT_FOUND') c.topics.delete(t);
        }
      }
    } finally {
      c.flushing = false;
      if (c.dirty.size > 0) this.schedule(c, false);
    }
  }

  private async flushTopic(c: Client, t: string, fresh: boolean): Promise<void> {
    const at = Date.now();
    if (t === 'jobs') {
      const jobs = await this.jobs.get();
      if (fresh) {
        c.sentJobs = new Map(jobs.map((j) => [j.name, JSON.stringify(j)]));
        return this.send(c, { type: 'snapshot', seq: 0, topic: t, at, data: { jobs } });
      }
      const upsert: JobView[] = [];
      const seen = new Set<string>();
      for (const j of jobs) {
        seen.add(j.name);
        const s = JSON.stringify(j);
        if (c.sentJobs.get(j.name) !== s) {
          upsert.push(j);
          c.sentJobs.set(j.name, s);
        }
      }
      const remove = [...c.sentJobs.keys()].filter((n) => !seen.has(n));
      for (const n of remove) c.sentJobs.delete(n);
      if (upsert.length || remove.length) this.send(c, { type: 'delta', seq: 0, topic: t, at, data: { upsert, remove } });
      return;
    }
    if (t === 'nodes' || t === 'overview') {
      const data = t === 'nodes' ? { nodes: await this.nodes.get() } : await this.overview.get();
      const s = JSON.stringify(data);
      if (!fresh && c.sentPlain.get(t) === s) return;
      c.sentPlain.set(t, s);
      return this.send(c, { type: fresh ? 'snapshot' : 'delta', seq: 0, topic: t, at, data });
    }
    // job/NAME
    const d = this.detailOf(t.slice(4));
    const [job, profiles, logs] = await Promise.all([d.detail.get(), d.profiles.get(), d.logs.get()]);
    const prev = fresh ? undefined : c.sentJob.get(t);
    const jobText = JSON.stringify(job);
    const logText = JSON.stringify(logs);
    const next: JobTopicState = { job: jobText, profiles: profiles.length, logs: logText };
    c.sentJob.set(t, next);
    if (!prev) return this.send(c, { type: 'snapshot', seq: 0, topic: t, at, data: { job, profiles, logs } });
    const data: Record<string, unknown> = {};
    if (prev.job !== jobText) data.job = job;
    if (profiles.length < prev.profiles) data.profiles = profiles;
    else if (profiles.length > prev.profiles) data.profilesAppend = profiles.slice(prev.profiles);
    if (prev.logs !== logText) data.logs = logs;
    if (Object.keys(data).length) this.send(c, { type: 'delta', seq: 0, topic: t, at, data });
  }

  private ping(): void {
    for (const c of this.clients) {
      if (!c.alive) {
        this.drop(c);
        continue;
      }
      c.alive = false;
      try {
        c.ws.ping();
      } catch {
        this.drop(c);
      }
    }
  }

  /** Closes every socket (1001 going away) and stops the timers. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unwatch?.();
    for (const t of this.timers) clearInterval(t);
    for (const c of [...this.clients]) {
      try {
        c.ws.close(1001, 'server shutting down');
      } catch {
        /* already gone */
      }
      this.drop(c);
    }
    this.wss.close();
  }
}

/** Serves `/ws` on an HTTP server; the hub closes with the server. */
export function attachLive(server: Server, o: LiveOptions): LiveHub {
  const hub = new LiveHub(o);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => hub.handleUpgrade(req, socket, head));
  server.on('close', () => hub.close());
  return hub;
}
