/**
 * The controller's HTTP server (node:http, no framework): REST under /api/v1, /healthz, /readyz, /metrics and
 * the dashboard at /. Everything it knows about jobs comes from a `ControllerService` (service.ts).
 * docs/api.md documents every route, status code and the authentication rules; keep it in step.
 *
 * Robustness rules: a malformed request (bad URL encoding, bad JSON or YAML, an oversized body, an unknown route,
 * a wrong method) gets a JSON error and never takes the server down; an unexpected exception in a handler is a
 * 500 INTERNAL with a generic message (the details go to the logger).
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { MistError, isMistError, type ErrorCode } from '../../../protocol/src/errors.js';
import { allows, authenticateRequest, requestToken, tokenCookie, type Principal, type Role, type TokenStore } from './auth.js';
import type { MetricsRegistry } from './metrics.js';
import type { ControllerService, LogLine } from './service.js';
import { attachLive, type LiveHub, type LiveOptions } from './ws.js';

/** pino-compatible: `(fields, message)`. */
export interface ApiLogger {
  debug?(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

export interface ApiServerOptions {
  service: ControllerService;
  tokens: TokenStore;
  metrics: MetricsRegistry;
  /** Directory of the built dashboard; `index.html` there is served at `/`. */
  staticDir?: string;
  logger?: ApiLogger;
  /** Largest request body accepted (default 1 MiB); larger ones get 413. */
  bodyLimitBytes?: number;
  /** Add `Secure` to the dashboard cookie (set when the API is served behind TLS). */
  secureCookies?: boolean;
  /** The live feed at /ws (api/ws.ts): throttle and keepalive settings; `false` serves no WebSocket. */
  live?: Pick<LiveOptions, 'throttleMs' | 'pingMs' | 'nodesRefreshMs' | 'maxClients' | 'logTail'> | false;
}

const liveHubs = new WeakMap<Server, LiveHub>();

/** The WebSocket hub serving /ws on an API server (undefined when `live: false`). */
export function liveHubOf(server: Server): LiveHub | undefined {
  return liveHubs.get(server);
}

export const API_PREFIX = '/api/v1';
export const DEFAULT_BODY_LIMIT = 1024 * 1024;
/** The controller's default listen address (MIST_HTTP_ADDR) and the client's default server (MIST_SERVER). */
export const DEFAULT_HTTP_ADDR = '127.0.0.1:8470';
export const DEFAULT_SERVER_URL = 'http://127.0.0.1:8470';

/** HTTP status for each MistError code. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  BAD_INPUT: 400,
  NOT_IMPLEMENTED: 501,
  INFEASIBLE: 422,
  DECODE_ERROR: 400,
  FRAME_TOO_LARGE: 413,
  UNSUPPORTED_VERSION: 400,
  STALE_EPOCH: 409,
  SETUP_MISSING: 503,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
  CONFLICT: 409,
  NOT_FOUND: 404,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  INTERNAL: 500,
};

/** The JSON body of every error response. */
export interface ApiErrorBody {
  error: { code: ErrorCode; message: string; retryable: boolean; field?: string };
}

/** A BAD_INPUT message starts with the field it is about (`spec.resources.gpus: …`); this recovers it. */
export function fieldOf(e: MistError): string | undefined {
  const explicit = (e as unknown as { field?: unknown }).field;
  if (typeof explicit === 'string') return explicit;
  if (e.code !== 'BAD_INPUT') return undefined;
  const m = /^([A-Za-z_$][\w$.[\]-]*|--[a-z][\w-]*): /.exec(e.message);
  return m ? m[1] : undefined;
}

export function errorBody(e: MistError): ApiErrorBody {
  const field = fieldOf(e);
  return { error: { code: e.code, message: e.message, retryable: e.retryable, ...(field ? { field } : {}) } };
}

/** An HTTP-level error with its own status (413, 405, 415) but a MistError code in the body. */
class HttpError extends MistError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message);
  }
}

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: string[];
  principal: Principal;
}

interface Route {
  method: 'GET' | 'POST';
  /** The label used in metrics and logs. */
  route: string;
  pattern: RegExp;
  need: Role;
  handle(ctx: Ctx): Promise<void>;
}

const JOB_NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const PLAN_ID_RE = /^[A-Za-z0-9._:-]{1,200}$/;
/** Mirrors the plan store's PlanFilter (controller/src/plans/store.ts). */
const PLAN_FILTERS = ['model', 'gpu', 'gpus', 'space', 'job', 'since', 'until', 'limit', 'offset', 'order'] as const;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

const PLACEHOLDER_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mist</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>Mist</h1>
<p>The controller is running. The dashboard is coming; until then use the <code>mist</code> CLI
(<code>mist jobs</code>, <code>mist describe JOB</code>, <code>mist nodes</code>) or the REST API under
<code>/api/v1</code> (see docs/api.md).</p>
</body></html>
`;

const defaultLogger: ApiLogger = {
  info: () => {},
  warn: () => {},
  error: (fields, msg) => process.stderr.write(`mist api: ${msg} ${JSON.stringify(fields)}\n`),
};

function setCommonHeaders(res: ServerResponse): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'no-store');
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

function sendText(res: ServerResponse, status: number, contentType: string, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

function sendError(res: ServerResponse, e: MistError, status?: number, headers: Record<string, string> = {}): void {
  sendJson(res, status ?? (e instanceof HttpError ? e.status : HTTP_STATUS[e.code]), errorBody(e), { ...(e instanceof HttpError ? e.headers : {}), ...headers });
}

function intParam(name: string, value: string, min: number, max: number): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new MistError('BAD_INPUT', `${name}: expected an integer in ${min}..${max}, got "${value.slice(0, 40)}"`);
  }
  return n;
}

/** Rejects query parameters a route does not know (a typo should not silently widen a query). */
function onlyParams(url: URL, allowed: readonly string[]): void {
  for (const k of url.searchParams.keys()) {
    if (!allowed.includes(k)) throw new MistError('BAD_INPUT', `${k}: unknown query parameter${allowed.length ? `; valid: ${allowed.join(', ')}` : ' (this route takes none)'}`);
  }
}

function jobName(raw: string): string {
  if (!JOB_NAME_RE.test(raw)) throw new MistError('BAD_INPUT', `name: "${raw.slice(0, 80)}" is not a job name; valid: lower-case letters, digits, '-' and '.', starting and ending alphanumeric, at most 253 characters`);
  return raw;
}

/** Reads a request body up to `limit` bytes; 413 beyond it. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolveBody, reject) => {
    const tooLarge = () => new HttpError(413, 'BAD_INPUT', `body: larger than the limit of ${limit} bytes`, { Connection: 'close' });
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > limit) {
        done = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!done) {
        done = true;
        resolveBody(Buffer.concat(chunks));
      }
    });
    req.on('error', (e) => {
      if (!done) {
        done = true;
        reject(e);
      }
    });
  });
}

function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

const JSON_TYPES = new Set(['application/json']);
const YAML_TYPES = new Set(['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml']);

/**
 * Decodes a submitted job: JSON or YAML by Content-Type (sniffed when absent or text/plain), one document whose
 * top level is an object. Syntax errors are BAD_INPUT on field `body` with the parser's position.
 */
export function decodeJobBody(body: Buffer, contentType: string): { text: string; format: 'yaml' | 'json' } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new MistError('BAD_INPUT', 'body: is not valid UTF-8');
  }
  if (text.trim() === '') throw new MistError('BAD_INPUT', 'body: is empty; send a MistJob as JSON or YAML');
  let format: 'yaml' | 'json';
  if (JSON_TYPES.has(contentType) || contentType.endsWith('+json')) format = 'json';
  else if (YAML_TYPES.has(contentType)) format = 'yaml';
  else if (contentType === '' || contentType === 'text/plain') format = text.trimStart().startsWith('{') ? 'json' : 'yaml';
  else {
    throw new HttpError(415, 'BAD_INPUT', `Content-Type: "${contentType.slice(0, 80)}" is not supported; valid: application/json, application/yaml`);
  }
  let value: unknown;
  if (format === 'json') {
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new MistError('BAD_INPUT', `body: is not valid JSON (${(e as Error).message})`);
    }
  } else {
    const docs = parseAllDocuments(text, { uniqueKeys: true });
    if (!Array.isArray(docs)) throw new MistError('BAD_INPUT', 'body: is not valid YAML');
    if (docs.length !== 1) throw new MistError('BAD_INPUT', `body: expected one YAML document, got ${docs.length}`);
    const [doc] = docs;
    const err = doc.errors[0];
    if (err) throw new MistError('BAD_INPUT', `body: is not valid YAML (${err.message.split('\n')[0]})`);
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw new MistError('BAD_INPUT', `body: YAML cannot be read (${(e as Error).message.split('\n')[0]})`);
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new MistError('BAD_INPUT', 'body: expected a MistJob object (apiVersion, kind, metadata, spec)');
  }
  return { text, format };
}

export function createApiServer(opts: ApiServerOptions): Server {
  const { service, tokens, metrics } = opts;
  const log = opts.logger ?? defaultLogger;
  const bodyLimit = opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT;
  const staticRoot = opts.staticDir ? resolve(opts.staticDir) : undefined;

  const routes: Route[] = [
    {
      method: 'GET',
      route: `${API_PREFIX}/whoami`,
      pattern: /^\/whoami$/,
      need: 'read',
      async handle({ res, url, principal }) {
        onlyParams(url, []);
        sendJson(res, 200, principal);
      },
    },
    {
      method: 'GET',
      route: `${API_PREFIX}/jobs`,
      pattern: /^\/jobs$/,
      need: 'read',
      async handle({ res, url }) {
        onlyParams(url, ['phase']);
        const phase = url.searchParams.get('phase') ?? undefined;
        if (phase !== undefined && !/^[A-Za-z]{1,32}$/.test(phase)) throw new MistError('BAD_INPUT', `phase: "${phase.slice(0, 40)}" is not a phase name`);
        const jobs = await service.listJobs(phase === undefined ? undefined : { phase });
        sendJson(res, 200, { jobs });
      },
    },
    {
      method: 'POST',
      route: `${API_PREFIX}/jobs`,
      pattern: /^\/jobs$/,
      need: 'admin',
      async handle({ req, res, url }) {
        onlyParams(url, []);
        const body = await readBody(req, bodyLimit);
        const job = await service.submit(decodeJobBody(body, mediaType(req)));
        sendJson(res, 201, job, { Location: `${API_PREFIX}/jobs/${encodeURIComponent(job.name)}` });
      },
    },
    {
      method: 'GET',
      route: `${API_PREFIX}/jobs/:name`,
      pattern: /^\/jobs\/([^/]+)$/,
      need: 'read',
      async handle({ res, url, params }) {
        onlyParams(url, []);
        sendJson(res, 200, await service.getJob(jobName(params[0])));
      },
    },
    {
      method: 'POST',
      route: `${API_PREFIX}/jobs/:name/cancel`,
      pattern: /^\/jobs\/([^/]+)\/cancel$/,
      need: 'admin',
      async handle({ req, res, url, params }) {
        onlyParams(url, []);
        await readBody(req, bodyLimit); // no body is needed; read (and bound) whatever was sent
        sendJson(res, 200, await service.cancel(jobName(params[0])));
      },
    },
    {
      method: 'GET',
      route: `${API_PREFIX}/jobs/:name/logs`,
      pattern: /^\/jobs\/([^/]+)\/logs$/,
      need: 'read',
      async handle(ctx) {
        await handleLogs(ctx);
      },
    },
    {
      method: 'GET',
      route: `${API_PREFIX}/nodes`,
      pattern: /^\/nodes$/,
      need: 'read',
      async handle({ res, url }) {
        onlyParams(url, []);
        sendJson(res, 200, { nodes: await service.nodes() });
      },
    },
    {
      method: 'GET',
      route: `${API_PREFIX}/plans`,
      pattern: /^\/plans$/,
      need: 'read',
      async handle({ res, url }) {
        onlyParams(url, PLAN_FILTERS);
        const filter: Record<string, string> = {};
        for (const k of PLAN_FILTERS) {
          const v = url.searchParams.get(k);
          if (v === null) continue;
          if (k === 'gpus') intParam('gpus', v, 1, 1_000_000);
          else if (k === 'limit') intParam('limit', v, 1, 10_000);
          else if (k === 'offset') intParam('offset', v, 0, 1_000_000_000);
          else if (k === 'order') {
            if (v !== 'newest' && v !== 'fastest') throw new MistError('BAD_INPUT', `order: "${v.slice(0, 40)}" is not an order; valid: newest, fastest`);
          } else if (k === 'since' || k === 'until') {
            if (!/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(v) || Number.isNaN(Date.parse(v))) {
              throw new MistError('BAD_INPUT', `${k}: "${v.slice(0, 40)}" is not an ISO-8601 date or timestamp (e.g. 2025-01-31 or 2025-01-31T12:00:00Z)`);
            }
          } else if (v.length === 0 || v.length > 200) throw new MistError('BAD_INPUT', `${k}: expected 1..200 characters`);
          filter[k] = v;
        }
        sendJson(res, 200, { plans: await service.plans(filter) });
      },
    },
    {
      method: 'GET',
      route: `${API_PREFIX}/plans/:id`,
      pattern: /^\/plans\/([^/]+)$/,
      need: 'read',
      async handle({ res, url, params }) {
        onlyParams(url, []);
        const id = params[0];
        if (!PLAN_ID_RE.test(id)) throw new MistError('BAD_INPUT', `id: "${id.slice(0, 80)}" is not a plan id`);
        sendJson(res, 200, await service.getPlan(id));
      },
    },
  ];

  async function handleLogs({ res, url, params }: Ctx): Promise<void> {
    onlyParams(url, ['rank', 'tail', 'follow']);
    const name = jobName(params[0]);
    const rankText = url.searchParams.get('rank');
    const tailText = url.searchParams.get('tail');
    const followText = url.searchParams.get('follow');
    const rank = rankText === null ? undefined : intParam('rank', rankText, 0, 1_000_000);
    const tailLines = tailText === null ? undefined : intParam('tail', tailText, 0, 1_000_000);
    if (followText !== null && !['0', '1', 'true', 'false'].includes(followText)) {
      throw new MistError('BAD_INPUT', `follow: expected 1 or 0, got "${followText.slice(0, 40)}"`);
    }
    const follow = followText === '1' || followText === 'true';
    const sel = rank === undefined ? {} : { rank };
    if (!follow) {
      const out = await service.logs(name, { ...sel, ...(tailLines === undefined ? {} : { tailLines }) });
      sendJson(res, 200, out);
      return;
    }
    if (!service.followLogs) throw new MistError('NOT_IMPLEMENTED', 'follow: this controller cannot stream logs yet; poll without follow');
    // Subscribe first and buffer, so no line is lost between the snapshot and the live stream.
    const buffered: LogLine[] = [];
    let live = false;
    let ended = false;
    const write = (l: LogLine) => {
      if (!res.writableEnded) res.write(JSON.stringify(l) + '\n');
    };
    const end = () => {
      ended = true;
      if (live && !res.writableEnded) res.end();
    };
    const unsubscribe = service.followLogs(name, sel, (l) => (live ? write(l) : buffered.push(l)), end);
    res.on('close', unsubscribe);
    let snapshot: { lines: LogLine[] };
    try {
      snapshot = await service.logs(name, { ...sel, ...(tailLines === undefined ? {} : { tailLines }) });
    } catch (e) {
      unsubscribe();
      throw e;
    }
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=utf-8' });
    res.flushHeaders();
    for (const l of snapshot.lines) write(l);
    for (const l of buffered) write(l);
    buffered.length = 0;
    live = true;
    if (ended) res.end();
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, url: URL, setRoute: (r: string) => void): Promise<void> {
    const sub = url.pathname.slice(API_PREFIX.length) || '/';
    // Match on the raw path (so an encoded '/' stays inside one segment), then hand out decoded segments.
    const matching = routes.filter((r) => r.pattern.test(sub));
    if (matching.length === 0) throw new MistError('NOT_FOUND', `no route ${req.method} ${url.pathname}; see docs/api.md`);
    const route = matching.find((r) => r.method === req.method || (r.method === 'GET' && req.method === 'HEAD'));
    if (!route) {
      setRoute(matching[0].route);
      const allow = [...new Set(matching.map((r) => r.method))].join(', ');
      throw new HttpError(405, 'BAD_INPUT', `method: ${req.method} is not allowed on ${url.pathname}; allowed: ${allow}`, { Allow: allow });
    }
    setRoute(route.route);
    const principal = authenticateRequest(req, tokens);
    if (!principal) {
      const given = requestToken(req) !== undefined;
      throw new HttpError(
        401,
        'UNAUTHENTICATED',
        given ? 'the token is not valid for this controller' : 'a token is required: send "Authorization: Bearer TOKEN"',
        { 'WWW-Authenticate': given ? 'Bearer realm="mist", error="invalid_token"' : 'Bearer realm="mist"' },
      );
    }
    if (!allows(principal, route.need)) {
      throw new MistError('FORBIDDEN', `${req.method} ${url.pathname} needs an admin token; "${principal.name}" has role ${principal.role}`);
    }
    const m = route.pattern.exec(sub);
    let params: string[];
    try {
      params = (m ? m.slice(1) : []).map((p) => decodeURIComponent(p));
    } catch {
      throw new MistError('BAD_INPUT', 'path: bad percent-encoding');
    }
    await route.handle({ req, res, url, params, principal });
  }

  function serveFile(res: ServerResponse, path: string, size: number): void {
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': size,
      'Cache-Control': 'no-cache',
    });
    if (res.req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(path);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  }

  function fileAt(path: string): { path: string; size: number } | null {
    try {
      const st = statSync(path);
      if (st.isFile()) return { path, size: st.size };
      if (st.isDirectory()) {
        const index = join(path, 'index.html');
        const si = statSync(index, { throwIfNoEntry: false });
        if (si?.isFile()) return { path: index, size: si.size };
      }
    } catch {
      /* not there */
    }
    return null;
  }

  function handleDashboard(req: IncomingMessage, res: ServerResponse, url: URL): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new HttpError(405, 'BAD_INPUT', `method: ${req.method} is not allowed on ${url.pathname}; allowed: GET, HEAD`, { Allow: 'GET, HEAD' });
    }
    const token = url.searchParams.get('token');
    if (token !== null) {
      // First visit from the link `mist up` prints: store the token in a cookie and drop it from the URL.
      if (!tokens.authenticate(token)) {
        sendText(res, 401, 'text/html; charset=utf-8', '<!doctype html><title>Mist</title><p>This token is not valid for this controller. Use the link that <code>mist up</code> printed.</p>\n', {
          'WWW-Authenticate': 'Bearer realm="mist", error="invalid_token"',
        });
        return;
      }
      url.searchParams.delete('token');
      const location = url.pathname + (url.searchParams.size > 0 ? `?${url.searchParams.toString()}` : '');
      res.writeHead(303, { Location: location, 'Set-Cookie': tokenCookie(token, { secure: opts.secureCookies }), 'Content-Length': 0 });
      res.end();
      return;
    }
    let rel: string;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      throw new MistError('BAD_INPUT', 'path: bad percent-encoding');
    }
    if (staticRoot && !rel.includes('\u0000')) {
      const target = resolve(staticRoot, '.' + rel);
      if (target === staticRoot || target.startsWith(staticRoot + sep)) {
        const f = fileAt(target);
        if (f) return serveFile(res, f.path, f.size);
        // Client-side routes (no file extension) get the app's index.html.
        if (extname(rel) === '') {
          const index = fileAt(join(staticRoot, 'index.html'));
          if (index) return serveFile(res, index.path, index.size);
        }
      }
    }
    if (url.pathname === '/' || url.pathname === '/index.html') {
      sendText(res, 200, 'text/html; charset=utf-8', PLACEHOLDER_HTML);
      return;
    }
    throw new MistError('NOT_FOUND', `no file ${url.pathname}`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, setRoute: (r: string) => void): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://mist.invalid');
    } catch {
      throw new MistError('BAD_INPUT', 'path: cannot be parsed as a URL');
    }
    const p = url.pathname;
    if (p === '/healthz' || p === '/readyz' || p === '/metrics') {
      setRoute(p);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        throw new HttpError(405, 'BAD_INPUT', `method: ${req.method} is not allowed on ${p}; allowed: GET, HEAD`, { Allow: 'GET, HEAD' });
      }
      if (p === '/healthz') return sendJson(res, 200, { status: 'ok' });
      if (p === '/readyz') {
        let r: { ready: boolean; reason?: string };
        try {
          r = await service.ready();
        } catch (e) {
          r = { ready: false, reason: e instanceof Error ? e.message : String(e) };
        }
        return sendJson(res, r.ready ? 200 : 503, r.ready ? { ready: true } : { ready: false, reason: r.reason ?? 'not ready' });
      }
      const { contentType, body } = await metrics.render();
      return sendText(res, 200, contentType, body);
    }
    if (p === API_PREFIX || p.startsWith(API_PREFIX + '/')) {
      setRoute('unmatched');
      return handleApi(req, res, url, setRoute);
    }
    if (p === '/api' || p.startsWith('/api/') || p === '/ws' || p.startsWith('/ws/')) {
      setRoute('unmatched');
      throw new MistError('NOT_FOUND', `no route ${req.method} ${p}; the REST API is under ${API_PREFIX} (see docs/api.md)`);
    }
    setRoute('/');
    handleDashboard(req, res, url);
  }

  const server = createServer((req, res) => {
    const started = process.hrtime.bigint();
    let route = 'unmatched';
    setCommonHeaders(res);
    res.on('close', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.observeRequest(req.method ?? 'OTHER', route, res.statusCode, seconds);
      log.debug?.({ method: req.method, route, code: res.statusCode, seconds }, 'http request');
    });
    handle(req, res, (r) => (route = r)).catch((e: unknown) => {
      if (res.headersSent) {
        log.error({ route, err: e instanceof Error ? e.message : String(e) }, 'error after the response started');
        res.destroy();
        return;
      }
      if (isMistError(e)) {
        sendError(res, e);
        if (e instanceof HttpError && e.status === 413) {
          // Stop reading the oversized body; the client has its answer.
          res.on('finish', () => req.destroy());
        }
        return;
      }
      log.error({ route, method: req.method, err: e instanceof Error ? (e.stack ?? e.message) : String(e) }, 'unhandled error in a request handler');
      sendError(res, new MistError('INTERNAL', 'internal error; the controller log has the details'));
    });
  });
  // A client that sends garbage at the HTTP level gets a 400 and its socket closed; the server carries on.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable && err.code !== 'ECONNRESET') {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    } else {
      socket.destroy();
    }
  });
  if (opts.live !== false) {
    liveHubs.set(server, attachLive(server, { service, tokens, metrics, ...(opts.live ?? {}), log: (m) => log.warn({}, m) }));
  }
  return server;
}

/** Parses MIST_HTTP_ADDR: `HOST:PORT`, `[IPv6]:PORT`, `:PORT` (all interfaces) or `PORT`. */
export function parseHttpAddr(addr: string): { host: string; port: number } {
  const s = addr.trim();
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s) ?? (/^(\d{1,5})$/.test(s) ? [s, undefined, '', s] : null);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535) {
    throw new MistError('BAD_INPUT', `MIST_HTTP_ADDR: "${addr}" is not HOST:PORT; e.g. ${DEFAULT_HTTP_ADDR}, 0.0.0.0:8470 or :8470`);
  }
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]);
  return { host, port };
}

/** Starts listening; resolves with the base URL clients use (port 0 picks a free port). */
export function listenApi(server: Server, addr: string | { host: string; port: number }): Promise<{ url: string; host: string; port: number }> {
  const { host, port } = typeof addr === 'string' ? parseHttpAddr(addr) : addr;
  return new Promise((resolveListen, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      reject(
        e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL'
          ? new MistError('UNAVAILABLE', `MIST_HTTP_ADDR: cannot listen on ${host}:${port} (${e.code})`, { cause: e })
          : e,
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const a = server.address() as AddressInfo;
      const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolveListen({ url: `http://${shown}:${a.port}`, host: a.address, port: a.port });
    });
  });
}

/** Stops the server and drops open connections (follow streams included). */
export function closeApi(server: Server): Promise<void> {
  liveHubs.get(server)?.close();
  return new Promise((resolveClose) => {
    server.close(() => resolveClose());
    server.closeAllConnections();
  });
}
