/**
 * The agent registry: a KV watch over mist_agents (hello.<node> = inventory, hb.<node> = heartbeat) plus a
 * periodic sweep that marks a node lost when no heartbeat arrived for `lostAfterMs` (nats-server 2.9 emits no
 * event when the bucket TTL expires a key, so the sweep is what notices a dead agent). The clock is injected.
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { decodeHeartbeat, decodeHello } from '../../../protocol/src/codec.js';
import { AGENT_HEARTBEAT_KEYS, AGENT_HELLO_KEYS, parseAgentKey } from '../../../protocol/src/subjects.js';
import type { AgentHello, Heartbeat } from '../../../protocol/src/types.js';

export type NodeState = 'alive' | 'lost';

export interface AgentInfo {
  node: string;
  hello?: AgentHello;
  heartbeat?: Heartbeat;
  /** Controller clock when the node was last heard from. */
  lastSeenMs: number;
  state: NodeState;
}

export type RegistryEvent =
  | { type: 'registered'; node: string; info: AgentInfo }
  | { type: 'lost'; node: string; info: AgentInfo }
  | { type: 'recovered'; node: string; info: AgentInfo };

export interface RegistryOptions {
  /** A node is lost after this long without a heartbeat. */
  lostAfterMs: number;
  /** Sweep period; 0 disables the timer (call sweep() yourself). Default lostAfterMs / 4. */
  sweepEveryMs?: number;
  now?: () => number;
  /** Keep heartbeat lag samples (now - sentAtMs) for benchmarks. */
  recordLag?: boolean;
}

export class AgentRegistry {
  private readonly agents = new Map<string, AgentInfo>();
  private readonly listeners: Array<(e: RegistryEvent) => void> = [];
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private watches: Array<{ stop(): void }> = [];
  readonly lagSamplesMs: number[] = [];
  readonly stats = { heartbeats: 0, hellos: 0, malformed: 0, lostEvents: 0 };

  constructor(private readonly kv: KV | undefined, private readonly o: RegistryOptions) {
    this.now = o.now ?? Date.now;
  }

  on(listener: (e: RegistryEvent) => void): void {
    this.listeners.push(listener);
  }

  private emit(e: RegistryEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        /* a listener's failure is its own */
      }
    }
  }

  /** Starts watching the bucket (existing values first) and the sweep timer. */
  async start(): Promise<void> {
    if (this.kv) {
      for (const key of [AGENT_HELLO_KEYS, AGENT_HEARTBEAT_KEYS]) {
        const w = await this.kv.watch({ key });
        this.watches.push(w);
        void (async () => {
          for await (const e of w) this.onEntry(e);
        })();
      }
    }
    const every = this.o.sweepEveryMs ?? Math.max(50, Math.floor(this.o.lostAfterMs / 4));
    if (every > 0) this.timer = setInterval(() => this.sweep(), every);
  }

  stop(): void {
    clearInterval(this.timer);
    for (const w of this.watches) w.stop();
    this.watches = [];
  }

  private onEntry(e: KvEntry): void {
    if (e.operation !== 'PUT') return; // deletes and purges: the sweep decides liveness
    this.ingest(e.key, e.value);
  }

  /** Applies one registry value (exposed for tests). Malformed values are counted and ignored. */
  ingest(key: string, value: Uint8Array): void {
    const k = parseAgentKey(key);
    if (!k) {
      this.stats.malformed++;
      return;
    }
    const now = this.now();
    let info = this.agents.get(k.node);
    const fresh = !info;
    if (!info) {
      info = { node: k.node, lastSeenMs: now, state: 'alive' };
      this.agents.set(k.node, info);
    }
    try {
      if (k.kind === 'hello') {
        const h = decodeHello(value);
        if (h.node !== k.node) throw new Error('node mismatch');
        info.hello = h;
        this.stats.hellos++;
      } else {
        const hb = decodeHeartbeat(value);
        if (hb.node !== k.node) throw new Error('node mismatch');
        info.heartbeat = hb;
        info.lastSeenMs = now;
        this.stats.heartbeats++;
        if (this.o.recordLag) this.lagSamplesMs.push(Date.now() - hb.sentAtMs);
      }
    } catch {
      this.stats.malformed++;
      if (fresh) this.agents.delete(k.node);
      return;
    }
    if (fresh) this.emit({ type: 'registered', node: k.node, info });
    else if (info.state === 'lost' && k.kind === 'heartbeat') {
      info.state = 'alive';
      this.emit({ type: 'recovered', node: k.node, info });
    }
  }

  /** Marks nodes without a heartbeat for lostAfterMs as lost; returns the nodes newly lost. */
  sweep(): string[] {
    const now = this.now();
    const lost: string[] = [];
    for (const info of this.agents.values()) {
      if (info.state === 'alive' && now - info.lastSeenMs > this.o.lostAfterMs) {
        info.state = 'lost';
        lost.push(info.node);
        this.stats.lostEvents++;
        this.emit({ type: 'lost', node: info.node, info });
      }
    }
    return lost;
  }

  get(node: string): AgentInfo | undefined {
    return this.agents.get(node);
  }

  nodes(): AgentInfo[] {
    return [...this.agents.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  }

  alive(): string[] {
    return this.nodes().filter((n) => n.state === 'alive').map((n) => n.node);
  }
}
