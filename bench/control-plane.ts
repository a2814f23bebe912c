/**
 * Control-plane benchmark (DESIGN.md §9): 1,000 simulated agents (in a few child processes, one NATS connection
 * each) heartbeat every second into mist_agents on a loopback nats-server this bench starts; one controller
 * (this process: AgentRegistry + CommandClient) watches them. Prints controller CPU and RSS over a steady
 * heartbeat window, heartbeat processing lag p99 (controller receipt − agent send time), and the fan-out time of
 * a 512-rank launch (64 nodes × 8 ranks, all-or-nothing launchPlan) to simulated agents (p50, p99).
 *
 *   npm run bench:control-plane [-- --json] [--agents N] [--procs P] [--window-seconds S] [--launches L]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { decodeCommand, encodeHeartbeat, encodeHello, encodeReply } from '../protocol/src/codec.js';
import { AGENTS_BUCKET, agentCommandSubject, agentHeartbeatKey, agentHelloKey } from '../protocol/src/subjects.js';
import { AgentRegistry } from '../controller/src/bus/registry.js';
import { CommandClient } from '../controller/src/bus/commands.js';
import { connectBus } from '../controller/src/bus/connect.js';
import { ensureControlPlane } from '../controller/src/bus/infra.js';
import { launchPlan } from '../controller/src/bus/launcher.js';
import type { Placement } from '../controller/src/domain/plan.js';
import { startNatsServer } from '../tests/support/nats-server.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
function argStr(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const node = (i: number) => `sim-${String(i).padStart(4, '0')}`;
const quantile = (xs: number[], q: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};

/** Child mode: run `count` simulated agents starting at index `from`. */
async function simulate(url: string, from: number, count: number, hbMs: number): Promise<void> {
  const timers: NodeJS.Timeout[] = [];
  const conns = [];
  for (let i = from; i < from + count; i++) {
    const name = node(i);
    const nc = await connect({ servers: url, name, maxReconnectAttempts: -1 });
    conns.push(nc);
    const kv = await new Kvm(jetstream(nc)).open(AGENTS_BUCKET, { bindOnly: true });
    nc.subscribe(agentCommandSubject(name), {
      callback: (_e, msg) => {
        try {
          const c = decodeCommand(msg.data);
          const b = c.body;
          const result =
            b.kind === 'launch' ? { kind: 'launch' as const, ranks: b.ranks.map((r) => ({ rank: r.rank, pid: 10_000 + r.rank })) } : b.kind === 'stop' ? { kind: 'stop' as const, stoppedRanks: [] } : { kind: 'status' as const, ranks: [] };
          msg.respond(encodeReply({ commandId: c.id, ok: true, result }));
        } catch (e) {
          msg.respond(encodeReply({ commandId: 'malformed', ok: false, error: { code: 'DECODE_ERROR', message: String(e), retryable: false } }));
        }
      },
    });
    await kv.put(agentHelloKey(name), encodeHello({ node: name, devices: Array.from({ length: 8 }, (_, d) => ({ index: d, kind: 'gpu' as const, model: 'sim', memoryBytes: 80 * 2 ** 30 })), links: { intraNodeBytesPerSecond: 0, interNodeBytesPerSecond: 0, pcieH2dBytesPerSecond: 0, pcieD2hBytesPerSecond: 0 }, labels: {}, agentVersion: 'sim', sentAtMs: Date.now() }));
    let seq = 0;
    const beat = () => {
      seq++;
      kv.put(agentHeartbeatKey(name), encodeHeartbeat({ node: name, seq, sentAtMs: Date.now(), runningRanks: 0, jobs: [], utilization: [] })).catch(() => undefined);
    };
    beat();
    setTimeout(() => timers.push(setInterval(beat, hbMs)), Math.floor(Math.random() * hbMs));
  }
  process.stdout.write(`ready ${count}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const agents = arg('agents', 1000);
  const procs = arg('procs', 4);
  const windowS = arg('window-seconds', 10);
  const launches = arg('launches', 40);
  const hbMs = 1000;
  const say = (m: string) => process.stderr.write(`[bench] ${m}\n`);
  const t0 = Date.now();
  const server = await startNatsServer();
  const children: ChildProcess[] = [];
  try {
    const nc = await connectBus({ servers: server.url });
    const kv = await ensureControlPlane(nc);
    const registry = new AgentRegistry(kv, { lostAfterMs: 10_000, recordLag: true });
    await registry.start();
    const self = fileURLToPath(import.meta.url);
    const per = Math.ceil(agents / procs);
    for (let p = 0; p < procs; p++) {
      const from = p * per;
      const count = Math.min(per, agents - from);
      if (count <= 0) break;
      const c = spawn(process.execPath, [self, '--sim', server.url, '--from', String(from), '--count', String(count), '--hb-ms', String(hbMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
      children.push(c);
    }
    say(`starting ${agents} simulated agents in ${children.length} processes`);
    const deadline = Date.now() + 90_000;
    while (registry.alive().length < agents) {
      if (Date.now() > deadline) throw new Error(`only ${registry.alive().length} of ${agents} agents registered`);
      await new Promise((r) => setTimeout(r, 100));
    }
    say(`${agents} agents registered after ${((Date.now() - t0) / 1000).toFixed(1)} s; measuring ${windowS} s of heartbeats`);
    registry.lagSamplesMs.length = 0;
    const cpu0 = process.cpuUsage();
    const w0 = performance.now();
    const hb0 = registry.stats.heartbeats;
    await new Promise((r) => setTimeout(r, windowS * 1000));
    const cpu = process.cpuUsage(cpu0);
    const wallS = (performance.now() - w0) / 1000;
    const cpuPercent = ((cpu.user + cpu.system) / 1e6 / wallS) * 100;
    const rss = process.memoryUsage().rss;
    const lagP99 = quantile(registry.lagSamplesMs, 0.99) / 1000;
    const hbRate = (registry.stats.heartbeats - hb0) / wallS;
    say(`heartbeats processed: ${hbRate.toFixed(0)}/s`);

    const client = new CommandClient(nc, 1, { timeoutMs: 10_000 });
    const placement: Placement[] = [];
    for (let n = 0; n < 64; n++) for (let d = 0; d < 8; d++) placement.push({ rank: n * 8 + d, node: node(n), device: d, stage: Math.floor(n / 16), dpRank: d, tpRank: 0 });
    const plan = { version: 1, id: 'bench-512', placement };
    const times: number[] = [];
    for (let i = 0; i < launches; i++) {
      const out = await launchPlan(client, { job: 'bench/j512', attempt: i + 1, plan, runtime: 'reference', masterAddr: '127.0.0.1', masterPort: 29500, deadlineMs: 10_000 });
      if (!out.ok) throw new Error(`launch ${i} failed: ${JSON.stringify(out.nodes.filter((n) => !n.ok).slice(0, 3))}`);
      times.push(out.seconds);
    }
    const doc = {
      agents: registry.alive().length,
      fanoutP50Seconds: quantile(times, 0.5),
      fanoutP99Seconds: quantile(times, 0.99),
      heartbeatLagP99Seconds: lagP99,
      controllerCpuPercent: cpuPercent,
      controllerRssBytes: rss,
    };
    registry.stop();
    await nc.close();
    if (json) process.stdout.write(JSON.stringify(doc) + '\n');
    else {
      process.stdout.write(
        [
          `agents                      ${doc.agents} (heartbeat every ${hbMs / 1000} s; ${hbRate.toFixed(0)} heartbeats/s processed)`,
          `controller CPU              ${doc.controllerCpuPercent.toFixed(1)} % of one core (over ${wallS.toFixed(1)} s)`,
          `controller RSS              ${(doc.controllerRssBytes / 2 ** 20).toFixed(1)} MiB`,
          `heartbeat lag p99           ${(doc.heartbeatLagP99Seconds * 1000).toFixed(1)} ms`,
          `512-rank fan-out (64 nodes) p50 ${(doc.fanoutP50Seconds * 1000).toFixed(1)} ms, p99 ${(doc.fanoutP99Seconds * 1000).toFixed(1)} ms over ${launches} launches (goal p99 < 1 s: ${doc.fanoutP99Seconds < 1 ? 'met' : 'NOT met'})`,
          `total run                   ${((Date.now() - t0) / 1000).toFixed(1)} s`,
          '',
        ].join('\n'),
      );
    }
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    await server.stop();
  }
}

if (process.argv[2] === '--sim') {
  simulate(process.argv[3]!, arg('from', 0), arg('count', 0), arg('hb-ms', 1000)).catch((e) => {
    process.stderr.write(`sim failed: ${(e as Error).stack}\n`);
    process.exit(1);
  });
} else {
  void argStr;
  main().then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
      process.exit(1);
    },
  );
}
