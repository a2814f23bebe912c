/**
 * The HTTP client behind `mist submit/jobs/describe/logs/cancel/nodes`, plus what those commands share: the
 * `--server`/`--token` options, how the server and token are found, and small table renderers.
 *
 * Server: `--server URL`, else MIST_SERVER, else http://127.0.0.1:8470 (the controller's default MIST_HTTP_ADDR).
 * Token: `--token`, else MIST_TOKEN, else the file named by MIST_API_TOKENS, else MIST_STATE_DIR/api-tokens
 * (default .mist/api-tokens, written by `mist up`); from a file the first admin token is used (else the first).
 *
 * Every failure is a MistError: the controller's own error (its code and message), UNAVAILABLE when it cannot
 * be reached, UNAUTHENTICATED/FORBIDDEN for 401/403 with what to do about it.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ERROR_CODES, MistError, badInput, type ErrorCode } from '../../../protocol/src/errors.js';
import { defaultTokenFile, parseTokenFile } from '../api/auth.js';
import { DEFAULT_SERVER_URL } from '../api/server.js';
import type { JobDetail, JobView, LogLine, NodeView } from '../api/service.js';

export interface ClientFlags {
  server?: string;
  token?: string;
  json?: boolean;
}

export interface ClientConfig {
  server: string;
  token?: string;
  /** Where the token came from, for error messages ("--token", "MIST_TOKEN", a file path). */
  tokenSource?: string;
}

/** Adds the options every client command takes. */
export function withClientOptions(cmd: Command): Command {
  return cmd
    .option('--server <url>', `controller URL (default: MIST_SERVER, else ${DEFAULT_SERVER_URL})`)
    .option('--token <token>', 'API token (default: MIST_TOKEN, else the MIST_API_TOKENS file, else MIST_STATE_DIR/api-tokens)')
    .option('--json', 'print one JSON document on stdout');
}

function tokenFromFile(path: string): string | undefined {
  try {
    const entries = parseTokenFile(readFileSync(path, 'utf8'), path);
    return (entries.find((e) => e.role === 'admin') ?? entries[0])?.token;
  } catch {
    return undefined;
  }
}

export function resolveClientConfig(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const rawServer = flags.server ?? (env.MIST_SERVER || DEFAULT_SERVER_URL);
  const flag = flags.server !== undefined ? '--server' : env.MIST_SERVER ? 'MIST_SERVER' : 'server';
  let u: URL;
  try {
    u = new URL(rawServer);
  } catch {
    throw badInput(flag, `"${rawServer}" is not a URL`, `e.g. ${DEFAULT_SERVER_URL}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw badInput(flag, `"${rawServer}" must be an http:// or https:// URL`);
  const server = u.toString().replace(/\/+$/, '');
  if (flags.token !== undefined) {
    if (flags.token.trim() === '') throw badInput('--token', 'is empty');
    return { server, token: flags.token.trim(), tokenSource: '--token' };
  }
  if (env.MIST_TOKEN) return { server, token: env.MIST_TOKEN.trim(), tokenSource: 'MIST_TOKEN' };
  for (const path of [env.MIST_API_TOKENS, defaultTokenFile(env.MIST_STATE_DIR || '.mist')]) {
    if (!path) continue;
    const token = tokenFromFile(path);
    if (token) return { server, token, tokenSource: path };
  }
  return { server };
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'EPIPE']);

function causeCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur && typeof cur === 'object'; i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const errors = (cur as { errors?: unknown[] }).errors;
    if (Array.isArray(errors) && errors.length > 0) cur = errors[0];
    else cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

export class ApiClient {
  constructor(readonly config: ClientConfig) {}

  private unreachable(e: unknown): MistError {
    const code = causeCode(e);
    return new MistError('UNAVAILABLE', `cannot reach the controller at ${this.config.server}${code ? ` (${code})` : ''}: is \`mist controller\` (or \`mist up\`) running?`, { cause: e });
  }

  private async fetch(method: string, path: string, init: { body?: string; contentType?: string; timeoutMs?: number } = {}): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.config.token) headers.Authorization = `Bearer ${this.config.token}`;
    if (init.contentType) headers['Content-Type'] = init.contentType;
    let res: Response;
    try {
      res = await fetch(this.config.server + path, {
        method,
        headers,
        body: init.body,
        redirect: 'error',
        ...(init.timeoutMs === 0 ? {} : { signal: AbortSignal.timeout(init.timeoutMs ?? 60_000) }),
      });
    } catch (e) {
      const name = (e as Error)?.name;
      if (name === 'TimeoutError' || name === 'AbortError') {
        throw new MistError('TIMEOUT', `the controller at ${this.config.server} did not answer ${method} ${path} in time`, { cause: e });
      }
      const code = causeCode(e);
      if (code === undefined || NETWORK_CODES.has(code) || (e instanceof TypeError && /fetch failed/.test(e.message))) throw this.unreachable(e);
      throw e;
    }
    if (!res.ok) throw await this.errorFrom(res, method, path);
    return res;
  }

  private async errorFrom(res: Response, method: string, path: string): Promise<MistError> {
    let body: { error?: { code?: string; message?: string } } | undefined;
    try {
      body = (await res.json()) as typeof body;
    } catch {
      body = undefined;
    }
    const serverMessage = body?.error?.message;
    const known = body?.error?.code && body.error.code in ERROR_CODES ? (body.error.code as ErrorCode) : undefined;
    if (res.status === 401) {
      const where = this.config.tokenSource
        ? `the token from ${this.config.tokenSource} is not valid for this controller`
        : `no token was given (looked at --token, MIST_TOKEN, MIST_API_TOKENS and ${defaultTokenFile(process.env.MIST_STATE_DIR || '.mist')})`;
      return new MistError('UNAUTHENTICATED', `the controller at ${this.config.server} refused the request (401 unauthenticated): ${where}; pass --token TOKEN or set MIST_TOKEN`);
    }
    if (res.status === 403) {
      return new MistError('FORBIDDEN', `the controller at ${this.config.server} refused ${method} ${path} (403 forbidden): ${serverMessage ?? 'this token may not do that'}; use an admin token`);
    }
    const code: ErrorCode =
      known ??
      (res.status === 400 || res.status === 413 || res.status === 415 ? 'BAD_INPUT' : res.status === 404 ? 'NOT_FOUND' : res.status === 409 ? 'CONFLICT' : res.status === 503 ? 'UNAVAILABLE' : res.status === 504 ? 'TIMEOUT' : 'INTERNAL');
    return new MistError(code, serverMessage ?? `${method} ${path}: the controller answered HTTP ${res.status}`);
  }

  private async json<T>(method: string, path: string, init: { body?: string; contentType?: string } = {}): Promise<T> {
    const res = await this.fetch(method, path, init);
    try {
      return (await res.json()) as T;
    } catch (e) {
      throw new MistError('DECODE_ERROR', `${method} ${path}: the controller's answer is not JSON`, { cause: e });
    }
  }

  whoami(): Promise<{ name: string; role: string }> {
    return this.json('GET', '/api/v1/whoami');
  }

  async listJobs(phase?: string): Promise<JobView[]> {
    const q = phase ? `?phase=${encodeURIComponent(phase)}` : '';
    return (await this.json<{ jobs: JobView[] }>('GET', `/api/v1/jobs${q}`)).jobs;
  }

  submit(text: string, format: 'yaml' | 'json'): Promise<JobView> {
    return this.json('POST', '/api/v1/jobs', { body: text, contentType: format === 'json' ? 'application/json' : 'application/yaml' });
  }

  getJob(name: string): Promise<JobDetail> {
    return this.json('GET', `/api/v1/jobs/${encodeURIComponent(name)}`);
  }

  cancel(name: string): Promise<JobView> {
    return this.json('POST', `/api/v1/jobs/${encodeURIComponent(name)}/cancel`);
  }

  private logsQuery(opts: { rank?: number; tail?: number; follow?: boolean }): string {
    const q = new URLSearchParams();
    if (opts.rank !== undefined) q.set('rank', String(opts.rank));
    if (opts.tail !== undefined) q.set('tail', String(opts.tail));
    if (opts.follow) q.set('follow', '1');
    const s = q.toString();
    return s ? `?${s}` : '';
  }

  logs(name: string, opts: { rank?: number; tail?: number }): Promise<{ lines: LogLine[] }> {
    return this.json('GET', `/api/v1/jobs/${encodeURIComponent(name)}/logs${this.logsQuery(opts)}`);
  }

  /** Streams lines (NDJSON) until the controller ends the stream (the job finished) or the connection drops. */
  async followLogs(name: string, opts: { rank?: number; tail?: number }, onLine: (l: LogLine) => void): Promise<void> {
    const res = await this.fetch('GET', `/api/v1/jobs/${encodeURIComponent(name)}/logs${this.logsQuery({ ...opts, follow: true })}`, { timeoutMs: 0 });
    if (!res.body) return;
    const decoder = new TextDecoder();
    let rest = '';
    const emit = (text: string) => {
      if (text.trim() === '') return;
      try {
        onLine(JSON.parse(text) as LogLine);
      } catch (e) {
        throw new MistError('DECODE_ERROR', `log stream: a line is not JSON (${(e as Error).message})`);
      }
    };
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        rest += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = rest.indexOf('\n')) >= 0) {
          emit(rest.slice(0, nl));
          rest = rest.slice(nl + 1);
        }
      }
    } catch (e) {
      if (e instanceof MistError) throw e;
      throw new MistError('UNAVAILABLE', `the log stream from ${this.config.server} broke off (${causeCode(e) ?? (e as Error).message}); run the command again to resume`, { cause: e });
    }
    emit(rest + decoder.decode());
  }

  async nodes(): Promise<NodeView[]> {
    return (await this.json<{ nodes: NodeView[] }>('GET', '/api/v1/nodes')).nodes;
  }

  async plans(filter: Record<string, string>): Promise<unknown[]> {
    const q = new URLSearchParams(filter).toString();
    return (await this.json<{ plans: unknown[] }>('GET', `/api/v1/plans${q ? `?${q}` : ''}`)).plans;
  }

  getPlan(id: string): Promise<unknown> {
    return this.json('GET', `/api/v1/plans/${encodeURIComponent(id)}`);
  }
}

export function clientFrom(flags: ClientFlags): ApiClient {
  return new ApiClient(resolveClientConfig(flags));
}

// ---- rendering shared by the client commands ----

/** Columns padded to their widest cell, two spaces apart. */
export function renderTable(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (cell ?? '').padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

/** kubectl-style age: 45s, 12m, 3h, 5d. */
export function formatAge(iso: string | null | undefined, now: number = Date.now()): string {
  const t = iso ? Date.parse(iso) : NaN;
  if (Number.isNaN(t)) return '-';
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 2 * 3600) return `${Math.floor(s / 60)}m`;
  if (s < 2 * 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function dash(v: unknown): string {
  return v === null || v === undefined || v === '' ? '-' : String(v);
}

export function formatRate(v: number | null | undefined): string {
  return typeof v === 'number' && Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '-';
}

export function formatBytes(n: number): string {
  const GiB = 1024 ** 3;
  return n >= GiB ? `${(n / GiB).toFixed(n % GiB === 0 ? 0 : 1)} GiB` : `${(n / 1024 ** 2).toFixed(0)} MiB`;
}
