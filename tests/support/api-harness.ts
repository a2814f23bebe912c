/**
 * An API server on a free loopback port backed by FakeControllerService, and a way to run the real `mist` CLI
 * against it without blocking the test process's event loop (the server lives in that loop).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenStore } from '../../controller/src/api/auth.js';
import { createMetrics, type MetricsRegistry } from '../../controller/src/api/metrics.js';
import { closeApi, createApiServer, listenApi, type ApiLogger } from '../../controller/src/api/server.js';
import type { CliResult } from './cli.js';
import { FakeControllerService } from './fake-controller.js';
import { mistBin, repoRoot } from './paths.js';

export const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
export const READ_TOKEN = 'read-token-0123456789abcdef';

export interface TestApi {
  url: string;
  server: Server;
  fake: FakeControllerService;
  metrics: MetricsRegistry;
  /** What the server logged at error level. */
  errors: string[];
  close(): Promise<void>;
}

export async function startTestApi(opts: { staticDir?: string; bodyLimitBytes?: number } = {}): Promise<TestApi> {
  const fake = new FakeControllerService();
  const metrics = createMetrics({ version: '0.1.0-test' });
  const tokens = new TokenStore([
    { token: ADMIN_TOKEN, role: 'admin', name: 'alice' },
    { token: READ_TOKEN, role: 'read', name: 'bob' },
  ]);
  const errors: string[] = [];
  const logger: ApiLogger = { info: () => {}, warn: () => {}, error: (f, m) => errors.push(`${m} ${JSON.stringify(f)}`) };
  const server = createApiServer({ service: fake, tokens, metrics, logger, ...opts });
  const { url } = await listenApi(server, { host: '127.0.0.1', port: 0 });
  return { url, server, fake, metrics, errors, close: () => closeApi(server) };
}

/** A scratch directory used as MIST_STATE_DIR so no token file of the developer's leaks into a test. */
export function scratchDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'mist-api-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs `mist ARGS` as a child process, asynchronously; env vars that steer the client are cleared unless given. */
export function runMistAsync(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [mistBin, ...args], {
      cwd: repoRoot,
      env: { ...process.env, MIST_SERVER: '', MIST_TOKEN: '', MIST_API_TOKENS: '', MIST_STATE_DIR: join(tmpdir(), 'mist-no-such-state-dir'), ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? (signal ? -1 : -1), stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}
