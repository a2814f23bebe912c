/**
 * The live feed and /metrics on the real Controller: a nats-server, SQLite, two CPU agents and a tiny job.
 *   - /ws: bearer auth (401 without, 403 cross-origin), hello → snapshot per topic → deltas, seq 1, 2, 3, …;
 *     the job reaches Succeeded through deltas alone; deltas of one topic are throttled (≤ 5/s).
 *   - /metrics parses as Prometheus text (a strict parser) and holds every family of docs/metrics.md.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { TokenStore } from '../../../controller/src/api/auth.js';
import { createMetrics } from '../../../controller/src/api/metrics.js';
import { Controller } from '../../../controller/src/operator/controller.js';
import { startNatsServer, type NatsServer } from '../../support/nats-server.js';
import { parsePrometheusText } from '../../support/prom-text.js';
import { ADMIN_TOKEN, api, startAgents, stopAgents, tempDir, tinyJob, waitFor, writeTokens } from '../controller/harness.js';
import type { AgentProc } from '../control-plane/harness.js';

interface Msg {
  type: string;
  seq: number;
  topic?: string;
  at?: number;
  data?: any;
  message?: string;
}

function wsUrl(base: string): string {
  return base.replace(/^http/, 'ws') + '/ws';
}

/** Opens a socket and collects messages; resolves once open (or rejects with the HTTP status of a refusal). */
function connect(base: string, headers: Record<string, string>): Promise<{ ws: WebSocket; msgs: Msg[]; next(pred: (m: Msg) => boolean, ms?: number): Promise<Msg> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(base), { headers });
    const msgs: Msg[] = [];
    const waiters = new Set<() => void>();
    ws.on('message', (d) => {
      msgs.push(JSON.parse(d.toString()) as Msg);
      for (const w of [...waiters]) w();
    });
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.once('error', reject);
    ws.once('open', () =>
      resolve({
        ws,
        msgs,
        next(pred, ms = 60_000) {
          return new Promise<Msg>((res, rej) => {
            let from = 0;
            const check = () => {
              for (; from < msgs.length; from++) {
                if (pred(msgs[from]!)) {
                  waiters.delete(check);
                  clearTimeout(t);
                  res(msgs[from]!);
                  return;
                }
              }
            };
            const t = setTimeout(() => {
              waiters.delete(check);
              rej(new Error(`no matching message within ${ms} ms; got ${msgs.map((m) => `${m.type}:${m.topic ?? ''}`).join(', ')}`));
            }, ms);
            waiters.add(check);
            check();
          });
        },
      }),
    );
  });
}

describe('integration: /ws live feed and /metrics on the real controller', function () {
  this.timeout(300_000);
  let nats: NatsServer;
  let dir: string;
  let controller: Controller;
  let agents: AgentProc[] = [];
  let base: string;

  before(async () => {
    dir = tempDir('ws-live');
    nats = await startNatsServer({ storeDir: join(dir, 'nats') });
    controller = new Controller({
      nats: nats.url,
      stateDir: join(dir, 'controller'),
      db: join(dir, 'controller', 'mist.db'),
      lostAfterMs: 5000,
      stopGraceSeconds: 2,
      http: { addr: '127.0.0.1:0', tokens: TokenStore.fromFile(writeTokens(dir)), metrics: createMetrics({ version: '9.9.9-test' }) },
    });
    await controller.start();
    base = controller.url!;
    agents = startAgents({ nats: nats.url, dir, count: 2 });
    await waitFor('2 agents', () => controller.aliveNodes().length >= 2, 60_000);
  });

  after(async () => {
    await controller?.close();
    await stopAgents(dir, agents);
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an upgrade without a token (401), with a bad token (401) and from another origin (403)', async () => {
    await assert.rejects(connect(base, {}), (e: { status?: number }) => e.status === 401);
    await assert.rejects(connect(base, { Authorization: 'Bearer not-a-valid-token-at-all' }), (e: { status?: number }) => e.status === 401);
    await assert.rejects(connect(base, { Authorization: `Bearer ${ADMIN_TOKEN}`, Origin: 'http://evil.example' }), (e: { status?: number }) => e.status === 403);
  });

  it('hello, snapshots, then throttled deltas with consecutive seq; a job reaches Succeeded through deltas alone', async () => {
    const c = await connect(base, { Authorization: `Bearer ${ADMIN_TOKEN}` });
    try {
      const hello = await c.next((m) => m.type === 'hello');
      assert.equal(hello.seq, 1);
      c.ws.send(JSON.stringify({ type: 'subscribe', topics: ['jobs', 'overview', 'nodes', 'job/ws-job', 'bogus topic'] }));
      const snap = await c.next((m) => m.type === 'snapshot' && m.topic === 'jobs');
      assert.deepEqual(snap.data.jobs, []);
      await c.next((m) => m.type === 'error' && /unknown topic/.test(m.message ?? ''));
      const nodes = await c.next((m) => m.type === 'snapshot' && m.topic === 'nodes');
      assert.equal(nodes.data.nodes.length, 2);
      // job/ws-job does not exist yet: an error for that topic
      await c.next((m) => m.type === 'error' && m.topic === 'job/ws-job');

      const r = await api(base, '/api/v1/jobs', { method: 'POST', body: tinyJob('ws-job', { steps: 8 }) });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const jobs = new Map<string, { phase: string }>();
      for (const j of snap.data.jobs) jobs.set(j.name, j);
      const phases: string[] = [];
      let cursor = 0;
      await waitFor(
        'ws-job Succeeded via deltas',
        () => {
          for (; cursor < c.msgs.length; cursor++) {
            const m = c.msgs[cursor]!;
            if (m.topic !== 'jobs' || m.type !== 'delta') continue;
            for (const j of m.data.upsert) {
              jobs.set(j.name, j);
              if (j.name === 'ws-job' && phases.at(-1) !== j.phase) phases.push(j.phase);
            }
            for (const n of m.data.remove) jobs.delete(n);
          }
          return jobs.get('ws-job')?.phase === 'Succeeded';
        },
        180_000,
      );
      assert.ok(phases.includes('Running'), `phases seen live: ${phases.join(' → ')}`);
      // consecutive sequence numbers, from 1
      c.msgs.forEach((m, i) => assert.equal(m.seq, i + 1, `message ${i} has seq ${m.seq}`));
      // throttle: deltas of one topic at least ~200 ms apart (≤ 5/s), measured by the server's timestamps
      const jobDeltas = c.msgs.filter((m) => m.type === 'delta' && m.topic === 'jobs').map((m) => m.at!);
      assert.ok(jobDeltas.length >= 2);
      for (let i = 1; i < jobDeltas.length; i++) assert.ok(jobDeltas[i]! - jobDeltas[i - 1]! >= 190, `deltas ${jobDeltas[i - 1]} and ${jobDeltas[i]} are closer than the throttle`);
      // the overview saw the devices allocated while the job ran
      const allocated = c.msgs.filter((m) => m.topic === 'overview').some((m) => m.data.allocations.some((a: { job: string }) => a.job === 'ws-job'));
      assert.ok(allocated, 'the overview showed the job holding devices');
      // a job topic subscribed after the job exists: snapshot with the plan, profiles and logs
      c.ws.send(JSON.stringify({ type: 'subscribe', topics: ['job/ws-job'] }));
      const js = await c.next((m) => m.type === 'snapshot' && m.topic === 'job/ws-job');
      assert.equal(js.data.job.phase, 'Succeeded');
      assert.ok(js.data.job.plan, 'the detail carries the plan');
      assert.ok(js.data.profiles.length >= 8, `a profile per step (${js.data.profiles.length})`);
      assert.ok(Array.isArray(js.data.logs));
    } finally {
      c.ws.close();
    }
  });

  it('/metrics parses as Prometheus text and holds every documented family', async () => {
    const c = await connect(base, { Authorization: `Bearer ${ADMIN_TOKEN}` });
    try {
      const res = await fetch(`${base}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const fam = parsePrometheusText(await res.text());
      const want: Array<[string, string]> = [
        ['mist_jobs', 'gauge'],
        ['mist_jobs_created_total', 'counter'],
        ['mist_jobs_finished_total', 'counter'],
        ['mist_job_admission_wait_seconds', 'histogram'],
        ['mist_job_restarts_total', 'counter'],
        ['mist_reconcile_total', 'counter'],
        ['mist_reconcile_duration_seconds', 'histogram'],
        ['mist_workqueue_depth', 'gauge'],
        ['mist_tuner_solve_duration_seconds', 'histogram'],
        ['mist_tuner_solves_total', 'counter'],
        ['mist_agents_connected', 'gauge'],
        ['mist_agent_heartbeat_age_seconds', 'gauge'],
        ['mist_report_processing_lag_seconds', 'histogram'],
        ['mist_websocket_clients', 'gauge'],
        ['mist_websocket_messages_sent_total', 'counter'],
        ['mist_build_info', 'gauge'],
        ['mist_http_requests_total', 'counter'],
        ['mist_http_request_duration_seconds', 'histogram'],
        ['process_cpu_seconds_total', 'counter'],
        ['process_resident_memory_bytes', 'gauge'],
        ['nodejs_eventloop_lag_seconds', 'gauge'],
      ];
      for (const [name, type] of want) {
        assert.ok(fam.has(name), `family ${name} is exposed`);
        assert.equal(fam.get(name)!.type, type, `${name} is a ${type}`);
        assert.ok(fam.get(name)!.help.length > 0, `${name} has HELP`);
      }
      const v = (name: string, labels: Record<string, string> = {}) =>
        fam.get(name)!.samples.find((s) => s.name === name && Object.entries(labels).every(([k, x]) => s.labels[k] === x))?.value;
      assert.equal(v('mist_jobs', { phase: 'Succeeded' }), 1);
      assert.equal(v('mist_jobs', { phase: 'Running' }), 0);
      assert.equal(v('mist_jobs_created_total'), 1);
      assert.equal(v('mist_agents_connected'), 2);
      assert.equal(v('mist_websocket_clients'), 1);
      assert.equal(v('mist_build_info', { version: '9.9.9-test' }), 1);
      assert.ok(v('mist_reconcile_total', { result: 'changed' })! > 0);
      assert.equal(fam.get('mist_job_admission_wait_seconds')!.samples.find((s) => s.name === 'mist_job_admission_wait_seconds_count')?.value, 1);
      const solves = fam.get('mist_tuner_solves_total')!.samples.reduce((a, s) => a + s.value, 0);
      assert.ok(solves >= 1, 'the tuner solve was counted');
      assert.ok((fam.get('mist_report_processing_lag_seconds')!.samples.find((s) => s.name.endsWith('_count') && s.labels.kind === 'stepProfile')?.value ?? 0) >= 8);
      const ages = fam.get('mist_agent_heartbeat_age_seconds')!.samples;
      assert.deepEqual(ages.map((s) => s.labels.node).sort(), ['n1', 'n2']);
      for (const s of fam.values()) if (s.name.startsWith('mist_')) assert.ok(!/_(ms|milliseconds|kb|mb)($|_)/.test(s.name), `${s.name}: base units`);
    } finally {
      c.ws.close();
    }
  });
});
