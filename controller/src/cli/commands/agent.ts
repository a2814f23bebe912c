/**
 * `mist agent`: runs the node agent (agent/src/agent.ts) until SIGTERM/SIGINT. Ranks keep running when the agent
 * stops (they survive agent restarts and are adopted again) unless --stop-ranks-on-exit is given.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { badInput } from '../../../../protocol/src/errors.js';
import { Agent } from '../../../../agent/src/agent.js';
import { detectDevices } from '../../../../agent/src/inventory.js';
import { loadRuntimes, type RuntimeTable } from '../../../../agent/src/runtimes.js';

interface AgentCliOptions {
  nats?: string;
  node?: string;
  cpuDevices?: string;
  stateDir?: string;
  runtimes?: string;
  creds?: string;
  user?: string;
  password?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  heartbeatSeconds?: string;
  retentionDays?: string;
  stopRanksOnExit?: boolean;
  label?: string[];
}

export function registerAgent(program: Command, summary: string): void {
  program
    .command('agent')
    .description(summary)
    .option('--nats <url>', 'NATS server URL(s), comma-separated (default: $MIST_NATS_URL)')
    .option('--node <name>', 'this node\'s name (unique in the cluster)')
    .option('--cpu-devices <n>', 'CPU devices to offer when nvidia-smi finds no GPU', '1')
    .option('--state-dir <dir>', 'where ranks, logs, the report spool and the agent\'s state live (default: $MIST_STATE_DIR/agent-<node> or .mist/agent-<node>)')
    .option('--runtimes <file>', 'JSON list of runtimes this agent may run: {"runtimes": {"name": {"argv": [...]}}}')
    .option('--creds <file>', 'NATS credentials file')
    .option('--user <user>', 'NATS user')
    .option('--password <password>', 'NATS password (default: $MIST_NATS_PASSWORD)')
    .option('--tls-ca <file>', 'CA certificate to verify the NATS server')
    .option('--tls-cert <file>', 'client certificate')
    .option('--tls-key <file>', 'client key')
    .option('--heartbeat-seconds <s>', 'heartbeat period', '5')
    .option('--retention-days <d>', 'keep stored command replies and exited ranks\' directories (records, logs) this long; 0 keeps everything', '7')
    .option('--label <k=v...>', 'node labels announced in the registry')
    .option('--stop-ranks-on-exit', 'stop running ranks when the agent stops (default: leave them running)')
    .option('--json', 'once connected, print one JSON document {node, devices, runtimes} on stdout (logs stay on stderr)')
    .action(async (opts: AgentCliOptions) => {
      const url = opts.nats ?? process.env.MIST_NATS_URL;
      if (!url) throw badInput('--nats', 'missing', 'give a URL such as nats://127.0.0.1:4222 or set MIST_NATS_URL');
      if (!opts.node) throw badInput('--node', 'missing', 'give this node\'s name');
      const cpu = Number(opts.cpuDevices);
      if (!Number.isInteger(cpu) || cpu < 1 || cpu > 1024) throw badInput('--cpu-devices', `${opts.cpuDevices} is not an integer in [1, 1024]`);
      const hb = Number(opts.heartbeatSeconds);
      if (!Number.isFinite(hb) || hb < 0.1 || hb > 3600) throw badInput('--heartbeat-seconds', `${opts.heartbeatSeconds} is not a number in [0.1, 3600]`);
      const retentionDays = Number(opts.retentionDays);
      if (!Number.isFinite(retentionDays) || retentionDays < 0 || retentionDays > 3650) throw badInput('--retention-days', `${opts.retentionDays} is not a number in [0, 3650]`, 'valid: days, e.g. 7; 0 keeps everything');
      if (opts.creds && opts.user) throw badInput('--creds', 'give either --creds or --user/--password, not both');
      const runtimes: RuntimeTable = opts.runtimes ? loadRuntimes(opts.runtimes) : {};
      const labels: Record<string, string> = {};
      for (const l of opts.label ?? []) {
        const eq = l.indexOf('=');
        if (eq <= 0) throw badInput('--label', `${l} is not key=value`);
        labels[l.slice(0, eq)] = l.slice(eq + 1);
      }
      const stateDir = resolve(opts.stateDir ?? `${process.env.MIST_STATE_DIR ?? '.mist'}/agent-${opts.node}`);
      const devices = await detectDevices(cpu);
      const agent = new Agent({
        nats: {
          servers: url.split(','),
          user: opts.user,
          password: opts.password ?? (opts.user ? process.env.MIST_NATS_PASSWORD : undefined),
          credsFile: opts.creds,
          tls: { caFile: opts.tlsCa, certFile: opts.tlsCert, keyFile: opts.tlsKey },
        },
        node: opts.node,
        stateDir,
        runtimes,
        devices,
        heartbeatSeconds: hb,
        retentionSeconds: retentionDays * 24 * 3600,
        labels,
      });
      await agent.start();
      if ((opts as { json?: boolean }).json) process.stdout.write(JSON.stringify({ node: opts.node, devices, runtimes: Object.keys(runtimes) }) + '\n');
      await new Promise<void>((done) => {
        const onSignal = (sig: string) => {
          process.stderr.write(`[mist-agent ${opts.node}] ${sig}: shutting down${opts.stopRanksOnExit ? ' and stopping ranks' : '; ranks keep running'}\n`);
          agent.shutdown({ stopRanks: opts.stopRanksOnExit }).finally(done);
        };
        process.once('SIGTERM', () => onSignal('SIGTERM'));
        process.once('SIGINT', () => onSignal('SIGINT'));
      });
    });
}
