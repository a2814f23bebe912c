/**
 * The Mist node agent: registers its inventory and heartbeats in the KV bucket mist_agents, answers Launch / Stop /
 * Status commands on mist.v1.agent.<node>.cmd (idempotent by command id, fenced by controller epoch), runs ranks
 * through the Runner, and publishes every report through the durable Outbox to the MIST_REPORTS stream.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { decodeCommand, encodeHeartbeat, encodeHello, encodeReply } from '../../protocol/src/codec.js';
import { isMistError, MistError } from '../../protocol/src/errors.js';
import { AGENTS_BUCKET, agentCommandSubject, agentHeartbeatKey, agentHelloKey, safeToken } from '../../protocol/src/subjects.js';
import type { Command, CommandReply, Device, ReportBody } from '../../protocol/src/types.js';
import { readJson, removeFilesOlderThan, writeJsonDurable } from './fsutil.js';
import { isAlive, procStartTime } from './proc.js';
import { natsConnectOptions, type NatsAuth } from './nats.js';
import { Outbox } from './outbox.js';
import { Runner } from './runner.js';
import type { RuntimeTable } from './runtimes.js';

export const AGENT_VERSION = '0.1.0';

/** The reply-inbox prefix of an agent: _INBOX_<node token> (see docs/agent.md, permissions). */
export function agentInboxPrefix(node: string): string {
  return `_INBOX_${safeToken(node)}`;
}

export interface AgentOptions {
  nats: NatsAuth;
  node: string;
  stateDir: string;
  runtimes: RuntimeTable;
  devices: Device[];
  heartbeatSeconds?: number;
  labels?: Record<string, string>;
  /** Supervision period (tail, exit checks) in ms. */
  tickMs?: number;
  logCapBytes?: number;
  /**
   * How long the records of finished work are kept: stored command replies (the idempotency cache) and the
   * directories (record and logs) of exited ranks. Default 7 days; 0 keeps everything.
   */
  retentionSeconds?: number;
  log?: (msg: string) => void;
}

/** Default retention of finished work in the state dir (AgentOptions.retentionSeconds). */
export const DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600;
/** How often the agent looks for expired records. */
const HOUSEKEEPING_MS = 3600_000;

export interface AgentStats {
  commands: number;
  malformedCommands: number;
  staleEpochRefusals: number;
  duplicateCommands: number;
  heartbeats: number;
  heartbeatErrors: number;
  reportsAppended: number;
  reportsPublished: number;
  reportBacklog: number;
}

interface AgentFile {
  highestEpoch: number;
}

export class Agent {
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private kv: KV | undefined;
  private sub: Subscription | undefined;
  private outbox!: Outbox;
  private runner!: Runner;
  private hbTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private housekeepingTimer: NodeJS.Timeout | undefined;
  private hbSeq = 0;
  private highestEpoch = 0;
  private readonly inflight = new Map<string, Promise<Uint8Array>>();
  private lastMalformedEventMs = 0;
  private stopping = false;
  private readonly log: (msg: string) => void;
  readonly counters = { commands: 0, malformedCommands: 0, staleEpochRefusals: 0, duplicateCommands: 0, heartbeats: 0, heartbeatErrors: 0 };

  constructor(private readonly o: AgentOptions) {
    this.log = o.log ?? ((m) => process.stderr.write(`[mist-agent ${o.node}] ${m}\n`));
  }

  stats(): AgentStats {
    return {
      ...this.counters,
      reportsAppended: this.outbox?.appended ?? 0,
      reportsPublished: this.outbox?.published ?? 0,
      reportBacklog: this.outbox?.backlog ?? 0,
    };
  }

  private lockStateDir(): void {
    mkdirSync(this.o.stateDir, { recursive: true, mode: 0o700 });
    const lockPath = join(this.o.stateDir, 'agent.lock.json');
    const lock = readJson<{ pid: number; startTime: string }>(lockPath);
    if (lock && lock.pid !== process.pid && isAlive(lock.pid, lock.startTime)) {
      throw new MistError('CONFLICT', `state dir ${this.o.stateDir} is in use by agent pid ${lock.pid}`, { retryable: false });
    }
    writeJsonDurable(lockPath, { pid: process.pid, startTime: procStartTime(process.pid) ?? '' });
  }

  async start(): Promise<void> {
    this.lockStateDir();
    this.highestEpoch = readJson<AgentFile>(join(this.o.stateDir, 'agent.json'))?.highestEpoch ?? 0;
    this.outbox = new Outbox({
      dir: join(this.o.stateDir, 'outbox'),
      node: this.o.node,
      publish: async (subject, data, id) => {
        if (!this.js || !this.nc || this.nc.isClosed()) throw new MistError('UNAVAILABLE', 'not connected');
        await this.js.publish(subject, data, { msgID: id, timeout: 5000 });
      },
      onError: () => undefined,
    });
    const emit = (job: string, attempt: number, id: string, body: ReportBody) => {
      this.outbox.add(job, attempt, id, body);
    };
    this.runner = new Runner({
      stateDir: this.o.stateDir,
      node: this.o.node,
      runtimes: this.o.runtimes,
      gpus: this.o.devices.some((d) => d.kind === 'gpu'),
      emit,
      log: this.log,
      logCapBytes: this.o.logCapBytes,
    });
    const rec = this.runner.recover();
    this.runner.tick();
    const bootId = `${Date.now()}-${process.pid}`;
    emit('', 0, `${this.o.node}/agent_started/${bootId}`, {
      kind: 'nodeEvent',
      event: 'agent_started',
      message: `agent ${AGENT_VERSION} started: ${rec.adopted} rank(s) adopted, ${rec.ended} ended while away, ${rec.lost} lost`,
    });
    this.log(`recovered state: adopted ${rec.adopted}, ended ${rec.ended}, lost ${rec.lost}`);
    this.housekeep();

    this.nc = await connect({ ...natsConnectOptions({ name: `mist-agent-${this.o.node}`, inboxPrefix: agentInboxPrefix(this.o.node), ...this.o.nats }) });
    this.js = jetstream(this.nc);
    void this.watchStatus(this.nc);
    this.sub = this.nc.subscribe(agentCommandSubject(this.o.node), {
      callback: (err, msg) => {
        if (err) return;
        this.onCommand(msg);
      },
    });
    await this.nc.flush();
    this.outbox.kick();
    await this.heartbeat(true);
    const hbMs = (this.o.heartbeatSeconds ?? 5) * 1000;
    this.hbTimer = setInterval(() => void this.heartbeat(false), hbMs);
    this.tickTimer = setInterval(() => this.safeTick(), this.o.tickMs ?? 250);
    this.housekeepingTimer = setInterval(() => this.housekeep(), HOUSEKEEPING_MS);
    this.housekeepingTimer.unref();
    this.log(`ready: node ${this.o.node}, ${this.o.devices.length} device(s), commands on ${agentCommandSubject(this.o.node)}`);
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'reconnect') {
        this.log('reconnected to NATS; flushing spooled reports');
        this.kv = undefined;
        this.outbox.kick();
        void this.heartbeat(true);
      } else if (s.type === 'disconnect') {
        this.log('disconnected from NATS; spooling reports');
      }
    }
  }

  /**
   * Removes records of finished work older than the retention: stored command replies (a controller retries a
   * command for seconds, never for days) and exited ranks' directories. Never throws; returns what it removed.
   */
  housekeep(): { commands: number; ranks: number } {
    const retention = this.o.retentionSeconds ?? DEFAULT_RETENTION_SECONDS;
    if (!(retention > 0)) return { commands: 0, ranks: 0 };
    const cutoff = Date.now() - retention * 1000;
    try {
      const out = { commands: removeFilesOlderThan(join(this.o.stateDir, 'commands'), cutoff), ranks: this.runner.prune(cutoff) };
      if (out.commands || out.ranks) this.log(`housekeeping: removed ${out.commands} stored command repl${out.commands === 1 ? 'y' : 'ies'} and ${out.ranks} exited rank director${out.ranks === 1 ? 'y' : 'ies'} older than ${retention} s`);
      return out;
    } catch (e) {
      this.log(`housekeeping failed (will retry): ${(e as Error).message}`);
      return { commands: 0, ranks: 0 };
    }
  }

  private safeTick(): void {
    try {
      this.runner.tick();
    } catch (e) {
      this.log(`supervision pass failed: ${(e as Error).message}`);
    }
  }

  private async openKv(): Promise<KV> {
    if (!this.kv) this.kv = await new Kvm(this.js!).open(AGENTS_BUCKET, { bindOnly: true });
    return this.kv;
  }

  private async heartbeat(withHello: boolean): Promise<void> {
    if (this.stopping || !this.nc || this.nc.isClosed()) return;
    try {
      const kv = await this.openKv();
      const hbEvery = Math.max(1, Math.ceil(60 / (this.o.heartbeatSeconds ?? 5)));
      if (withHello || this.hbSeq % hbEvery === 0) {
        await kv.put(
          agentHelloKey(this.o.node),
          encodeHello({ node: this.o.node, devices: this.o.devices, links: { intraNodeBytesPerSecond: 0, interNodeBytesPerSecond: 0, pcieH2dBytesPerSecond: 0, pcieD2hBytesPerSecond: 0 }, labels: this.o.labels ?? {}, agentVersion: AGENT_VERSION, sentAtMs: Date.now() }),
        );
      }
      this.hbSeq++;
      await kv.put(
        agentHeartbeatKey(this.o.node),
        encodeHeartbeat({ node: this.o.node, seq: this.hbSeq, sentAtMs: Date.now(), runningRanks: this.runner.runningRanks, jobs: this.runner.runningJobs(), utilization: [] }),
      );
      this.counters.heartbeats++;
    } catch (e) {
      this.counters.heartbeatErrors++;
      this.kv = undefined;
      if (this.counters.heartbeatErrors % 10 === 1) this.log(`heartbeat failed (will retry): ${(e as Error).message}`);
    }
  }

  private onCommand(msg: Msg): void {
    void this.handle(msg.data).then(
      (reply) => {
        try {
          if (msg.reply) msg.respond(reply);
        } catch (e) {
          this.log(`cannot reply: ${(e as Error).message}`);
        }
      },
      (e) => this.log(`command handling failed: ${(e as Error).message}`),
    );
  }

  private commandPath(id: string): string {
    return join(this.o.stateDir, 'commands', `${createHash('sha256').update(id).digest('hex').slice(0, 40)}.json`);
  }

  /** Handles one command frame and returns the encoded reply (never throws). */
  async handle(data: Uint8Array): Promise<Uint8Array> {
    let cmd: Command;
    try {
      cmd = decodeCommand(data);
    } catch (e) {
      this.counters.malformedCommands++;
      const err = isMistError(e) ? e : new MistError('DECODE_ERROR', String(e));
      const now = Date.now();
      if (now - this.lastMalformedEventMs > 10_000) {
        this.lastMalformedEventMs = now;
        this.outbox.add('', 0, `${this.o.node}/malformed/${process.pid}/${this.counters.malformedCommands}`, {
          kind: 'nodeEvent',
          event: 'malformed_command',
          message: `${this.counters.malformedCommands} malformed command(s) rejected; last: ${err.message.slice(0, 300)}`,
        });
      }
      this.log(`rejected malformed command (${this.counters.malformedCommands} so far): ${err.message.slice(0, 200)}`);
      return encodeReply({ commandId: 'malformed', ok: false, error: { code: err.code, message: err.message.slice(0, 1000), retryable: false } });
    }
    this.counters.commands++;
    if (cmd.epoch < this.highestEpoch) {
      this.counters.staleEpochRefusals++;
      return encodeReply({ commandId: cmd.id, ok: false, error: { code: 'STALE_EPOCH', message: `command epoch ${cmd.epoch} is older than ${this.highestEpoch}, the highest this agent has seen`, retryable: false } });
    }
    if (cmd.epoch > this.highestEpoch) {
      this.highestEpoch = cmd.epoch;
      writeJsonDurable(join(this.o.stateDir, 'agent.json'), { highestEpoch: cmd.epoch } satisfies AgentFile);
    }
    const running = this.inflight.get(cmd.id);
    if (running) {
      this.counters.duplicateCommands++;
      return running;
    }
    if (cmd.body.kind !== 'status') {
      const saved = readJson<{ id: string; reply: string }>(this.commandPath(cmd.id));
      if (saved && saved.id === cmd.id) {
        this.counters.duplicateCommands++;
        return Buffer.from(saved.reply, 'base64');
      }
    }
    const p = this.execute(cmd).then((reply) => {
      const bytes = encodeReply(reply);
      if (cmd.body.kind !== 'status' && !(reply.ok === false && reply.error.retryable)) {
        writeJsonDurable(this.commandPath(cmd.id), { id: cmd.id, kind: cmd.body.kind, reply: Buffer.from(bytes).toString('base64') });
      }
      return bytes;
    });
    this.inflight.set(cmd.id, p);
    try {
      return await p;
    } finally {
      this.inflight.delete(cmd.id);
    }
  }

  private async execute(cmd: Command): Promise<CommandReply> {
    try {
      const b = cmd.body;
      switch (b.kind) {
        case 'launch': {
          const ranks = await this.runner.launch(b);
          this.log(`launched ${b.job} attempt ${b.attempt}: ranks ${ranks.map((r) => r.rank).join(',')}`);
          return { commandId: cmd.id, ok: true, result: { kind: 'launch', ranks } };
        }
        case 'stop': {
          const stoppedRanks = await this.runner.stop(b.job, b.attempt, Math.min(b.graceSeconds, 600));
          this.runner.tick();
          this.log(`stopped ${b.job} attempt ${b.attempt}: ranks ${stoppedRanks.join(',')} (${b.reason})`);
          return { commandId: cmd.id, ok: true, result: { kind: 'stop', stoppedRanks } };
        }
        case 'status':
          return { commandId: cmd.id, ok: true, result: { kind: 'status', ranks: this.runner.status(b.job) } };
      }
    } catch (e) {
      const err = isMistError(e) ? e : new MistError('INTERNAL', (e as Error).message ?? String(e));
      return { commandId: cmd.id, ok: false, error: { code: err.code, message: err.message, retryable: err.retryable } };
    }
  }

  /** Stops heartbeating and answering; leaves ranks running unless `stopRanks`. Flushes reports for up to `drainMs`. */
  async shutdown(opts: { stopRanks?: boolean; graceSeconds?: number; drainMs?: number } = {}): Promise<void> {
    this.stopping = true;
    clearInterval(this.hbTimer);
    if (opts.stopRanks) {
      await this.runner.stopAll(opts.graceSeconds ?? 10);
      this.runner.tick();
    }
    clearInterval(this.tickTimer);
    clearInterval(this.housekeepingTimer);
    this.sub?.unsubscribe();
    await this.outbox.drained(opts.drainMs ?? 3000);
    this.outbox.close();
    if (this.nc && !this.nc.isClosed()) await this.nc.close().catch(() => undefined);
    this.log('stopped');
  }
}
