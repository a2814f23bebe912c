/**
 * The REST API over real HTTP on a loopback port, against FakeControllerService: routes, status codes, auth,
 * the dashboard cookie flow, body limits, YAML/JSON submit, /metrics, and malformed requests.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MistError } from '../../../protocol/src/errors.js';
import { ADMIN_TOKEN, READ_TOKEN, startTestApi, type TestApi } from '../../support/api-harness.js';

const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
const reader = { Authorization: `Bearer ${READ_TOKEN}` };

const JOB_YAML = `apiVersion: mist.io/v1alpha1
kind: MistJob
metadata:
  name: tiny-llm
spec:
  model: tiny-gpt
  resources:
    gpus: 2
    gpuType: cpu
  training:
    globalBatch: 8
    steps: 10
`;

const jobJson = (name: string, gpus: unknown = 1) =>
  JSON.stringify({ apiVersion: 'mist.io/v1alpha1', kind: 'MistJob', metadata: { name }, spec: { model: 'tiny-gpt', resources: { gpus, gpuType: 'cpu' }, training: { globalBatch: 8, steps: 10 } } });

interface ErrBody {
  error: { code: string; message: string; field?: string; retryable: boolean };
}

/** Raw HTTP (node:http), for what fetch hides: exact bodies, chunked uploads, oversized bodies. */
function raw(url: string, opts: { method?: string; path: string; headers?: Record<string, string | number>; body?: Buffer | string; chunks?: Buffer[] }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolveReq, reject) => {
    const u = new URL(url);
    const req = httpRequest({ host: u.hostname, port: u.port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolveReq({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    if (opts.chunks) {
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else req.end(opts.body);
  });
}

describe('API server (REST over HTTP)', () => {
  let api: TestApi;

  beforeEach(async () => {
    api = await startTestApi();
  });

  afterEach(async () => {
    await api.close();
  });

  const get = (path: string, headers: Record<string, string> = admin) => fetch(api.url + path, { headers });
  const post = (path: string, body: string | undefined, headers: Record<string, string>) => fetch(api.url + path, { method: 'POST', headers, body });

  describe('health, readiness, metrics', () => {
    it('/healthz answers 200 without a token', async () => {
      const r = await fetch(api.url + '/healthz');
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), { status: 'ok' });
    });

    it('/readyz follows service.ready(): 200 when ready, 503 with the reason when not, 503 when it throws', async () => {
      let r = await fetch(api.url + '/readyz');
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), { ready: true });
      api.fake.readiness = { ready: false, reason: 'plan store not open' };
      r = await fetch(api.url + '/readyz');
      assert.equal(r.status, 503);
      assert.deepEqual(await r.json(), { ready: false, reason: 'plan store not open' });
      api.fake.failNext = new Error('database went away');
      r = await fetch(api.url + '/readyz');
      assert.equal(r.status, 503);
      assert.match(((await r.json()) as { reason: string }).reason, /database went away/);
    });

    it('/metrics is Prometheus text with the process, build and HTTP families, labelled by route pattern', async () => {
      await get('/api/v1/jobs/nope-a');
      await get('/api/v1/jobs/nope-b');
      await fetch(api.url + '/api/v1/jobs'); // 401
      const r = await fetch(api.url + '/metrics');
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await r.text();
      const types = new Map<string, string>();
      for (const line of text.split('\n')) {
        if (line === '') continue;
        const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
        if (t) {
          types.set(t[1], t[2]);
          continue;
        }
        if (line.startsWith('# HELP ')) continue;
        assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|[Nn]a[Nn]|\+Inf|-Inf)( \d+)?$/, `not an exposition line: ${line}`);
      }
      assert.equal(types.get('mist_build_info'), 'gauge');
      assert.equal(types.get('mist_http_requests_total'), 'counter');
      assert.equal(types.get('mist_http_request_duration_seconds'), 'histogram');
      assert.equal(types.get('process_cpu_user_seconds_total'), 'counter');
      assert.ok([...types.keys()].some((k) => k.startsWith('nodejs_')), 'nodejs_ default metrics');
      assert.match(text, /^mist_build_info\{version="0\.1\.0-test",node="v[\d.]+"\} 1$/m);
      assert.match(text, /^mist_http_requests_total\{method="GET",route="\/api\/v1\/jobs\/:name",code="404"\} 2$/m);
      assert.match(text, /^mist_http_requests_total\{method="GET",route="\/api\/v1\/jobs",code="401"\} 1$/m);
      assert.match(text, /^mist_http_request_duration_seconds_bucket\{le="\+Inf",method="GET",route="\/api\/v1\/jobs\/:name",code="404"\} 2$/m);
      assert.doesNotMatch(text, /nope-a/, 'raw paths never become label values');
    });
  });

  describe('authentication and roles', () => {
    it('401 with WWW-Authenticate: Bearer without a token, and error="invalid_token" with a wrong one', async () => {
      let r = await fetch(api.url + '/api/v1/jobs');
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="mist"');
      assert.equal(((await r.json()) as ErrBody).error.code, 'UNAUTHENTICATED');
      r = await fetch(api.url + '/api/v1/jobs', { headers: { Authorization: 'Bearer not-a-valid-token-at-all' } });
      assert.equal(r.status, 401);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="mist", error="invalid_token"$/);
      r = await fetch(api.url + '/api/v1/jobs', { headers: { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
      assert.equal(r.status, 401);
      assert.equal(api.fake.calls.length, 0, 'the service is not reached');
    });

    it('a read token can read but gets 403 on submit and cancel, which never reach the service', async () => {
      api.fake.addJob({ name: 'a' });
      assert.equal((await get('/api/v1/jobs', reader)).status, 200);
      assert.equal((await get('/api/v1/jobs/a', reader)).status, 200);
      const who = await get('/api/v1/whoami', reader);
      assert.deepEqual(await who.json(), { name: 'bob', role: 'read' });
      let r = await post('/api/v1/jobs', jobJson('b'), { ...reader, 'Content-Type': 'application/json' });
      assert.equal(r.status, 403);
      assert.equal(((await r.json()) as ErrBody).error.code, 'FORBIDDEN');
      r = await post('/api/v1/jobs/a/cancel', undefined, reader);
      assert.equal(r.status, 403);
      assert.deepEqual(api.fake.calls.map((c) => c[0]), ['listJobs', 'getJob']);
    });

    it('dashboard ?token= sets an HttpOnly SameSite=Strict cookie, redirects 303 without the token, and the cookie authenticates the API', async () => {
      const r = await fetch(`${api.url}/jobs/tiny?token=${encodeURIComponent(ADMIN_TOKEN)}&tab=events`, { redirect: 'manual' });
      assert.equal(r.status, 303);
      assert.equal(r.headers.get('location'), '/jobs/tiny?tab=events');
      const cookie = r.headers.get('set-cookie') ?? '';
      assert.match(cookie, /^mist_token=[^;]+; HttpOnly; SameSite=Strict; Path=\/$/);
      const pair = cookie.split(';')[0];
      const api1 = await fetch(api.url + '/api/v1/whoami', { headers: { Cookie: `theme=dark; ${pair}` } });
      assert.equal(api1.status, 200);
      assert.deepEqual(await api1.json(), { name: 'alice', role: 'admin' });
      const bad = await fetch(`${api.url}/?token=wrong-token-0123456789`, { redirect: 'manual' });
      assert.equal(bad.status, 401);
      assert.equal(bad.headers.get('set-cookie'), null);
      const noCookie = await fetch(api.url + '/api/v1/whoami', { headers: { Cookie: 'mist_token=forged-token-0123456789' } });
      assert.equal(noCookie.status, 401);
    });

    it('/healthz, /readyz and /metrics need no token', async () => {
      for (const p of ['/healthz', '/readyz', '/metrics']) assert.equal((await fetch(api.url + p)).status, 200, p);
    });
  });

  describe('jobs', () => {
    it('POST /jobs takes YAML and JSON, answers 201 with the JobView and a Location', async () => {
      let r = await post('/api/v1/jobs', JOB_YAML, { ...admin, 'Content-Type': 'application/yaml' });
      assert.equal(r.status, 201);
      assert.equal(r.headers.get('location'), '/api/v1/jobs/tiny-llm');
      const view = (await r.json()) as Record<string, unknown>;
      assert.equal(view.name, 'tiny-llm');
      assert.equal(view.phase, 'Pending');
      assert.equal(view.gpus, 2);
      assert.equal(view.restarts, 0);
      assert.equal(view.spec, undefined, 'a JobView, not the detail');
      assert.deepEqual(api.fake.calls[0], ['submit', { text: JOB_YAML, format: 'yaml' }]);
      r = await post('/api/v1/jobs', jobJson('second'), { ...admin, 'Content-Type': 'application/json; charset=utf-8' });
      assert.equal(r.status, 201);
      assert.equal(((await r.json()) as { name: string }).name, 'second');
      // No Content-Type: sniffed.
      r = await post('/api/v1/jobs', jobJson('third'), { ...admin, 'Content-Type': '' });
      assert.equal(r.status, 201);
      assert.equal((api.fake.calls.at(-1)?.[1] as { format: string }).format, 'json');
    });

    it('400 names the field; 409 on a taken name', async () => {
      let r = await post('/api/v1/jobs', jobJson('a', 0), { ...admin, 'Content-Type': 'application/json' });
      assert.equal(r.status, 400);
      const body = (await r.json()) as ErrBody;
      assert.equal(body.error.code, 'BAD_INPUT');
      assert.equal(body.error.field, 'spec.resources.gpus');
      assert.match(body.error.message, /^spec\.resources\.gpus: expected an integer ≥ 1/);
      assert.equal((await post('/api/v1/jobs', jobJson('a'), { ...admin, 'Content-Type': 'application/json' })).status, 201);
      r = await post('/api/v1/jobs', jobJson('a'), { ...admin, 'Content-Type': 'application/json' });
      assert.equal(r.status, 409);
      assert.equal(((await r.json()) as ErrBody).error.code, 'CONFLICT');
    });

    it('malformed bodies are 400 on field body (or 415) and never reach the service', async () => {
      const cases: Array<[string, string, number, RegExp]> = [
        ['application/json', '{"kind": "MistJob",', 400, /not valid JSON/],
        ['application/yaml', 'kind: MistJob\n  metadata: [oops\n', 400, /not valid YAML/],
        ['application/yaml', 'a: 1\na: 2\n', 400, /not valid YAML/],
        ['application/yaml', 'kind: MistJob\n---\nkind: MistJob\n', 400, /one YAML document, got 2/],
        ['application/json', '[1, 2]', 400, /expected a MistJob object/],
        ['application/yaml', '"just a string"', 400, /expected a MistJob object/],
        ['application/json', '   ', 400, /is empty/],
        ['application/xml', '<job/>', 415, /Content-Type/],
      ];
      for (const [type, body, status, re] of cases) {
        const r = await post('/api/v1/jobs', body, { ...admin, 'Content-Type': type });
        assert.equal(r.status, status, `${type} ${JSON.stringify(body)}`);
        const e = (await r.json()) as ErrBody;
        assert.equal(e.error.code, 'BAD_INPUT');
        assert.match(e.error.message, re);
        if (status === 400) assert.equal(e.error.field, 'body');
      }
      const bad = await raw(api.url, { method: 'POST', path: '/api/v1/jobs', headers: { ...admin, 'Content-Type': 'application/json' }, body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) });
      assert.equal(bad.status, 400);
      assert.match(bad.body, /not valid UTF-8/);
      assert.equal(api.fake.calls.length, 0);
    });

    it('a body over the limit is 413 (declared or chunked), and the server keeps serving', async () => {
      // Send part of a body and wait for the answer without finishing the upload: the server must answer on its own.
      const partial = (headers: Record<string, string | number>, bytes: number) =>
        new Promise<{ status: number; body: string }>((resolveReq, reject) => {
          const u = new URL(api.url);
          const req = httpRequest({ host: u.hostname, port: u.port, method: 'POST', path: '/api/v1/jobs', headers: { ...admin, 'Content-Type': 'application/json', ...headers } }, (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (d: string) => (body += d));
            res.on('end', () => {
              req.destroy();
              resolveReq({ status: res.statusCode ?? 0, body });
            });
          });
          req.on('error', reject);
          for (let sent = 0; sent < bytes; sent += 64 * 1024) req.write(Buffer.alloc(Math.min(64 * 1024, bytes - sent), 0x20));
        });
      const declared = await partial({ 'Content-Length': 2 * 1024 * 1024 }, 10);
      assert.equal(declared.status, 413);
      assert.match(declared.body, /larger than the limit of 1048576 bytes/);
      const chunked = await partial({}, 1024 * 1024 + 64 * 1024);
      assert.equal(chunked.status, 413);
      assert.equal(api.fake.calls.filter((c) => c[0] === 'submit').length, 0);
      assert.equal((await get('/api/v1/jobs')).status, 200);
      // Just under the limit is read and judged on its content.
      const fits = await raw(api.url, { method: 'POST', path: '/api/v1/jobs', headers: { ...admin, 'Content-Type': 'application/json' }, body: Buffer.alloc(1024 * 1024, 0x20) });
      assert.equal(fits.status, 400);
      assert.match(fits.body, /is empty/);
    });

    it('GET /jobs lists JobViews, filters by phase, rejects bad filters', async () => {
      api.fake.addJob({ name: 'a', phase: 'Running', step: 12, tokensPerSecond: 1500.5 });
      api.fake.addJob({ name: 'b', phase: 'Pending' });
      let r = await get('/api/v1/jobs');
      const all = (await r.json()) as { jobs: Array<{ name: string }> };
      assert.deepEqual(all.jobs.map((j) => j.name), ['a', 'b']);
      r = await get('/api/v1/jobs?phase=Running');
      assert.deepEqual(((await r.json()) as { jobs: Array<{ name: string }> }).jobs.map((j) => j.name), ['a']);
      r = await get('/api/v1/jobs?phase=Run%20ning');
      assert.equal(r.status, 400);
      assert.equal(((await r.json()) as ErrBody).error.field, 'phase');
      r = await get('/api/v1/jobs?state=Running');
      assert.equal(r.status, 400);
      assert.equal(((await r.json()) as ErrBody).error.field, 'state');
    });

    it('GET /jobs/:name returns the detail; 404 NOT_FOUND; 400 on a name that cannot exist', async () => {
      api.fake.addJob({ name: 'a', phase: 'Running' }, { conditions: [{ type: 'Admitted', status: 'True' }] });
      let r = await get('/api/v1/jobs/a');
      assert.equal(r.status, 200);
      const d = (await r.json()) as { name: string; conditions: unknown[]; spec: unknown };
      assert.equal(d.name, 'a');
      assert.deepEqual(d.conditions, [{ type: 'Admitted', status: 'True' }]);
      r = await get('/api/v1/jobs/missing');
      assert.equal(r.status, 404);
      const e = (await r.json()) as ErrBody;
      assert.equal(e.error.code, 'NOT_FOUND');
      assert.match(e.error.message, /missing/);
      r = await get('/api/v1/jobs/Bad_Name');
      assert.equal(r.status, 400);
      r = await get('/api/v1/jobs/a%2Fb');
      assert.equal(r.status, 400, 'an encoded slash stays inside the name');
    });

    it('POST /jobs/:name/cancel answers the JobView; 404 for an unknown job', async () => {
      api.fake.addJob({ name: 'a', phase: 'Running' });
      let r = await post('/api/v1/jobs/a/cancel', undefined, admin);
      assert.equal(r.status, 200);
      assert.equal(((await r.json()) as { phase: string }).phase, 'Cancelled');
      r = await post('/api/v1/jobs/zzz/cancel', '{}', { ...admin, 'Content-Type': 'application/json' });
      assert.equal(r.status, 404);
    });
  });

  describe('logs', () => {
    beforeEach(() => {
      api.fake.addJob({ name: 'a', phase: 'Running' });
      for (let i = 0; i < 4; i++) api.fake.addLog('a', { rank: i % 2, stream: i === 3 ? 'stderr' : 'stdout', line: `line ${i}` });
    });

    it('GET …/logs with rank and tail', async () => {
      let r = await get('/api/v1/jobs/a/logs');
      assert.equal(((await r.json()) as { lines: unknown[] }).lines.length, 4);
      r = await get('/api/v1/jobs/a/logs?rank=1&tail=1');
      assert.deepEqual(await r.json(), { lines: [{ rank: 1, stream: 'stderr', line: 'line 3' }] });
      assert.deepEqual(api.fake.calls.at(-1), ['logs', 'a', { rank: 1, tailLines: 1 }]);
      for (const q of ['rank=-1', 'rank=x', 'tail=1.5', 'follow=maybe']) {
        r = await get(`/api/v1/jobs/a/logs?${q}`);
        assert.equal(r.status, 400, q);
        assert.equal(((await r.json()) as ErrBody).error.field, q.split('=')[0]);
      }
      assert.equal((await get('/api/v1/jobs/zz/logs')).status, 404);
    });

    it('follow=1 streams NDJSON: the tail, then live lines, and ends when the job finishes', async () => {
      const r = await get('/api/v1/jobs/a/logs?follow=1&rank=0&tail=1');
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^application\/x-ndjson/);
      const reader = (r.body as ReadableStream<Uint8Array>).getReader();
      const dec = new TextDecoder();
      let got = '';
      const readLines = async (n: number) => {
        while (got.split('\n').length - 1 < n) {
          const { value, done } = await reader.read();
          if (done) break;
          got += dec.decode(value);
        }
        return got.trim().split('\n').map((l) => JSON.parse(l) as { rank: number; line: string });
      };
      assert.deepEqual((await readLines(1)).map((l) => l.line), ['line 2']);
      api.fake.addLog('a', { rank: 1, stream: 'stdout', line: 'other rank' });
      api.fake.addLog('a', { rank: 0, stream: 'stdout', line: 'live' });
      assert.deepEqual((await readLines(2)).map((l) => l.line), ['line 2', 'live']);
      api.fake.update('a', { phase: 'Succeeded' });
      const rest = await reader.read();
      assert.equal(rest.done, true, 'the stream ends with the job');
      assert.equal(api.fake.followerCount('a'), 0);
    });

    it('a follower that disconnects is unsubscribed', async () => {
      const ac = new AbortController();
      const unfollowed = once(api.fake.events, 'unfollow');
      const r = await fetch(api.url + '/api/v1/jobs/a/logs?follow=1', { headers: admin, signal: ac.signal });
      assert.equal(r.status, 200);
      assert.equal(api.fake.followerCount('a'), 1);
      ac.abort();
      await unfollowed;
      assert.equal(api.fake.followerCount('a'), 0);
    });
  });

  describe('nodes and plans', () => {
    it('GET /nodes lists NodeViews', async () => {
      api.fake.nodeList = [{ name: 'n1', devices: [{ index: 0, kind: 'cpu', model: 'cpu', memoryBytes: 0 }], heartbeatAgeSeconds: 1.5, lost: false }];
      const r = await get('/api/v1/nodes', reader);
      assert.deepEqual(await r.json(), { nodes: api.fake.nodeList });
    });

    it('GET /plans passes validated filters; GET /plans/:id answers the plan or 404', async () => {
      api.fake.planList = [
        { id: 'p1', model: 'gpt3-1.3b', gpu: 'l4-24gb', space: 'mist', job: 'a' },
        { id: 'p2', model: 'llama2-7b', gpu: 'a100-80gb', space: 'megatron', job: 'b' },
      ];
      let r = await get('/api/v1/plans?model=gpt3-1.3b&gpus=8&since=2025-01-01T00:00:00Z&limit=5');
      assert.deepEqual(((await r.json()) as { plans: Array<{ id: string }> }).plans.map((p) => p.id), ['p1']);
      assert.deepEqual(api.fake.calls.at(-1), ['plans', { model: 'gpt3-1.3b', gpus: '8', since: '2025-01-01T00:00:00Z', limit: '5' }]);
      for (const [q, field] of [['gpus=0', 'gpus'], ['limit=abc', 'limit'], ['since=yesterday', 'since'], ['until=2025-13-45', 'until'], ['offset=-1', 'offset'], ['order=slowest', 'order'], ['color=red', 'color']]) {
        r = await get(`/api/v1/plans?${q}`);
        assert.equal(r.status, 400, q);
        assert.equal(((await r.json()) as ErrBody).error.field, field);
      }
      r = await get('/api/v1/plans/p2');
      assert.equal(((await r.json()) as { id: string }).id, 'p2');
      assert.equal((await get('/api/v1/plans/nope')).status, 404);
    });
  });

  describe('errors and malformed requests', () => {
    it('unknown routes are 404 JSON, a wrong method is 405 with Allow', async () => {
      for (const p of ['/api/v1/nope', '/api/v2/jobs', '/api', '/api/v1/jobs/a/b/c', '/ws']) {
        const r = await get(p);
        assert.equal(r.status, 404, p);
        assert.equal(((await r.json()) as ErrBody).error.code, 'NOT_FOUND');
      }
      let r = await fetch(api.url + '/api/v1/jobs', { method: 'DELETE', headers: admin });
      assert.equal(r.status, 405);
      assert.equal(r.headers.get('allow'), 'GET, POST');
      r = await fetch(api.url + '/api/v1/nodes', { method: 'POST', headers: admin });
      assert.equal(r.status, 405);
      assert.equal(r.headers.get('allow'), 'GET');
      r = await fetch(api.url + '/healthz', { method: 'PUT' });
      assert.equal(r.status, 405);
      r = await fetch(api.url + '/', { method: 'POST' });
      assert.equal(r.status, 405);
    });

    it('service errors map to statuses; an unexpected exception is a generic 500 and is logged', async () => {
      api.fake.failNext = new MistError('UNAVAILABLE', 'NATS is down');
      let r = await get('/api/v1/nodes');
      assert.equal(r.status, 503);
      assert.deepEqual(await r.json(), { error: { code: 'UNAVAILABLE', message: 'NATS is down', retryable: true } });
      api.fake.failNext = new TypeError('cannot read properties of undefined');
      r = await get('/api/v1/nodes');
      assert.equal(r.status, 500);
      const e = (await r.json()) as ErrBody;
      assert.equal(e.error.code, 'INTERNAL');
      assert.doesNotMatch(e.error.message, /undefined/, 'internals are not leaked');
      assert.equal(api.errors.length, 1);
      assert.match(api.errors[0], /cannot read properties of undefined/);
      assert.equal((await get('/api/v1/nodes')).status, 200);
    });

    it('bad percent-encoding and garbage on the socket get 400s; the server keeps serving', async () => {
      let r = await raw(api.url, { path: '/api/v1/jobs/%E0%A4%A', headers: admin });
      assert.equal(r.status, 400);
      r = await raw(api.url, { path: '/%E0%A4%A' });
      assert.equal(r.status, 400);
      const u = new URL(api.url);
      const sock = connect(Number(u.port), u.hostname);
      sock.end('THIS IS NOT HTTP\r\n\r\n');
      let reply = '';
      sock.setEncoding('utf8').on('data', (d: string) => (reply += d));
      await once(sock, 'close');
      assert.match(reply, /^HTTP\/1\.1 400 /);
      assert.equal((await fetch(api.url + '/healthz')).status, 200);
    });
  });

  describe('dashboard', () => {
    it('without a dashboard build, / is a placeholder page', async () => {
      const r = await fetch(api.url + '/');
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(await r.text(), /dashboard is coming/);
      assert.equal((await fetch(api.url + '/app.js')).status, 404);
    });

    it('serves staticDir: index.html at /, assets, index.html for client routes, nothing outside the directory', async () => {
      const root = mkdtempSync(join(tmpdir(), 'mist-static-'));
      try {
        mkdirSync(join(root, 'www', 'assets'), { recursive: true });
        writeFileSync(join(root, 'www', 'index.html'), '<!doctype html><title>Mist dashboard</title>');
        writeFileSync(join(root, 'www', 'assets', 'app.js'), 'console.log(1)');
        writeFileSync(join(root, 'secret.txt'), 'secret');
        const s = await startTestApi({ staticDir: join(root, 'www') });
        try {
          let r = await fetch(s.url + '/');
          assert.equal(await r.text(), '<!doctype html><title>Mist dashboard</title>');
          r = await fetch(s.url + '/assets/app.js');
          assert.match(r.headers.get('content-type') ?? '', /^text\/javascript/);
          assert.equal(await r.text(), 'console.log(1)');
          r = await fetch(s.url + '/jobs/tiny-llm');
          assert.match(await r.text(), /Mist dashboard/);
          const esc = await raw(s.url, { path: '/%2e%2e/secret.txt' });
          assert.equal(esc.status, 404);
          assert.doesNotMatch(esc.body, /secret$/);
          const esc2 = await raw(s.url, { path: '/assets/..%2f..%2fsecret.txt' });
          assert.notEqual(esc2.body, 'secret');
          assert.equal((await fetch(s.url + '/missing.css')).status, 404);
        } finally {
          await s.close();
        }
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  });
});
