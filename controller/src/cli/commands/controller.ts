/**
 * `mist controller`: runs the controller (operator/controller.ts) — the store, the NATS control plane, the
 * reconcile loop and the HTTP API — until SIGTERM/SIGINT, then shuts down gracefully (ranks keep running; a new
 * controller adopts them). docs/controller.md.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { badInput } from '../../../../protocol/src/errors.js';
import { TokenStore, defaultTokenFile } from '../../api/auth.js';
import { createMetrics } from '../../api/metrics.js';
import { dashboardDir } from '../../api/dashboard-dir.js';
import { DEFAULT_HTTP_ADDR } from '../../api/server.js';
import { Controller } from '../../operator/controller.js';
import { defaultNamespace, loadKubeConfig } from '../../operator/k8s/client.js';
import { startKubeSide, type KubeSide } from '../../operator/k8s/run.js';
import { mistVersion } from '../program.js';

interface ControllerCliOptions {
  nats?: string;
  db?: string;
  httpAddr?: string;
  stateDir?: string;
  runtimes?: string;
  tokens?: string;
  cluster?: string;
  kubeconfig?: string;
  inCluster?: boolean;
  namespace?: string;
  leaderElect?: boolean;
  leaseName?: string;
  leaseDuration?: string;
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());
}

/** Names of the runtimes in an admin runtimes file ({"runtimes": {"name": {...}}}). */
export function runtimeNames(file: string): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw badInput('--runtimes', `cannot read ${file}: ${(e as Error).message}`);
  }
  const r = (doc as { runtimes?: unknown })?.runtimes;
  if (!r || typeof r !== 'object' || Array.isArray(r)) throw badInput('--runtimes', `${file}: expected {"runtimes": {"name": {"argv": [...]}}}`);
  return Object.keys(r);
}

export function stderrLogger(prefix: string) {
  const line = (level: string, msg: string) => process.stderr.write(`${new Date().toISOString()} ${prefix} ${level} ${msg}\n`);
  return { info: (m: string) => line('info', m), warn: (m: string) => line('warn', m) };
}

/** Resolves on the first SIGTERM or SIGINT. */
export function untilSignal(): Promise<string> {
  return new Promise((done) => {
    const on = (sig: string) => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      done(sig);
    };
    const onTerm = () => on('SIGTERM');
    const onInt = () => on('SIGINT');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
  });
}

export function registerController(program: Command, summary: string): void {
  program
    .command('controller')
    .description(summary)
    .option('--nats <url>', 'NATS server URL(s), comma-separated (default: $MIST_NATS_URL)')
    .option('--db <url|path>', 'plan store: a SQLite path or a postgres:// URL (default: $MIST_DB, else <state dir>/mist.db)')
    .option('--http-addr <addr>', `HTTP API listen address (default: $MIST_HTTP_ADDR or ${DEFAULT_HTTP_ADDR})`)
    .option('--state-dir <dir>', 'controller state (default: $MIST_STATE_DIR or .mist)')
    .option('--runtimes <file>', 'the admin runtimes file (the same as the agents\'); jobs may name only these runtimes (default: reference)')
    .option('--tokens <file>', 'API token file (default: $MIST_API_TOKENS, else <state dir>/api-tokens)')
    .option('--cluster <name>', 'cluster name calibrations are stored under', 'default')
    .option('--json', 'once serving, print one JSON document {url, epoch} on stdout (logs stay on stderr)')
    .option('--kubeconfig <file>', 'reconcile MistJob resources of this cluster (default: in-cluster when $KUBERNETES_SERVICE_HOST is set; else no Kubernetes)')
    .option('--in-cluster', 'reconcile MistJob resources using the pod\'s service account')
    .option('--namespace <ns>', 'namespace of the MistJobs and the Lease (default: the service account\'s, else the kubeconfig context\'s, else default)')
    .option('--leader-elect', 'run as one of several replicas: only the holder of the Lease reconciles (default: $MIST_LEADER_ELECT)')
    .option('--lease-name <name>', 'coordination.k8s.io Lease name', 'mist-controller')
    .option('--lease-duration <seconds>', 'lease duration; a standby takes over this long after the leader stops renewing', '15')
    .action(async (opts: ControllerCliOptions) => {
      const nats = opts.nats ?? (process.env.MIST_NATS_URL?.trim() || undefined);
      if (!nats) throw badInput('--nats', 'missing', 'give a URL such as nats://127.0.0.1:4222 or set MIST_NATS_URL');
      const stateDir = resolve(opts.stateDir ?? (process.env.MIST_STATE_DIR?.trim() || '.mist'));
      const tokensFile = opts.tokens ?? process.env.MIST_API_TOKENS ?? defaultTokenFile(stateDir);
      const tokens = TokenStore.fromFile(tokensFile);
      const runtimes = opts.runtimes ? runtimeNames(opts.runtimes) : ['reference'];
      const leaderElect = opts.leaderElect ?? truthy(process.env.MIST_LEADER_ELECT);
      const useKube = !!opts.kubeconfig || !!opts.inCluster || !!process.env.KUBERNETES_SERVICE_HOST;
      if (leaderElect && !useKube) throw badInput('--leader-elect', 'needs a Kubernetes API', 'give --kubeconfig FILE or --in-cluster');
      const leaseDuration = Number(opts.leaseDuration ?? '15');
      if (!Number.isFinite(leaseDuration) || leaseDuration < 3) throw badInput('--lease-duration', `${opts.leaseDuration} is not a number of seconds ≥ 3`);
      const log = stderrLogger('[mist-controller]');
      const controller = new Controller({
        standby: leaderElect,
        nats: nats.split(','),
        ...(opts.db ?? process.env.MIST_DB ? { db: opts.db ?? process.env.MIST_DB } : {}),
        stateDir,
        runtimes,
        cluster: opts.cluster ?? 'default',
        http: { addr: opts.httpAddr ?? process.env.MIST_HTTP_ADDR ?? DEFAULT_HTTP_ADDR, tokens, metrics: createMetrics({ version: mistVersion() }), ...(dashboardDir() ? { staticDir: dashboardDir() } : {}) },
        log,
      });
      await controller.start();
      let kube: KubeSide | undefined;
      if (useKube) {
        const kc = loadKubeConfig({ ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}), ...(opts.inCluster ? { inCluster: true } : {}) });
        const namespace = opts.namespace ?? defaultNamespace(kc);
        kube = startKubeSide({
          kc,
          namespace,
          controller,
          leaderElect,
          lease: { name: opts.leaseName ?? 'mist-controller', leaseDurationSeconds: leaseDuration, renewDeadlineSeconds: (leaseDuration * 2) / 3, retryPeriodSeconds: Math.min(2, leaseDuration / 5) },
          log: (m) => log.info(m),
          onLostLeadership: () => {
            // as client-go controllers do: exit, and let the Deployment restart this replica as a fresh standby
            process.stderr.write('mist controller: leadership lost: exiting\n');
            process.exit(1);
          },
        });
        process.stderr.write(`mist controller: MistJobs of namespace ${namespace}${leaderElect ? `, leader election on Lease ${namespace}/${opts.leaseName ?? 'mist-controller'} as ${kube.identity}` : ''}\n`);
      }
      process.stderr.write(`mist controller: serving ${controller.url} (${controller.isLeader ? `epoch ${controller.epoch}` : 'standby'})\n`);
      if ((opts as { json?: boolean }).json) process.stdout.write(JSON.stringify({ url: controller.url, epoch: controller.isLeader ? controller.epoch : null, leader: controller.isLeader }) + '\n');
      const sig = await untilSignal();
      process.stderr.write(`mist controller: ${sig}: shutting down (ranks keep running)\n`);
      await kube?.stop();
      await controller.close();
    });
}
