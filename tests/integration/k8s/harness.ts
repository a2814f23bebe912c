/**
 * Harness of the Kubernetes operator tests: the loopback fake API server (tests/support/fake-kube-api.ts) with
 * the chart's CRD, a real nats-server, CPU agents with the reference runtime, and controllers in this process
 * wired to the fake API exactly as `mist controller --kubeconfig` wires them (operator/k8s/run.ts).
 */
import { join } from 'node:path';
import { parse } from 'yaml';
import * as k8s from '@kubernetes/client-node';
import { Controller } from '../../../controller/src/operator/controller.js';
import { startKubeSide, type KubeSide } from '../../../controller/src/operator/k8s/run.js';
import { FakeKubeApi, chartCrd } from '../../support/fake-kube-api.js';
import { tinyJob, waitFor } from '../controller/harness.js';

export { waitFor };
export const NS = 'training';

export async function startFakeApi(o: { bookmarkEveryMs?: number } = {}): Promise<FakeKubeApi> {
  const api = new FakeKubeApi({ crd: await chartCrd(), bookmarkEveryMs: o.bookmarkEveryMs ?? 500 });
  await api.start();
  return api;
}

export interface Instance {
  ctl: Controller;
  kube: KubeSide;
  stop(): Promise<void>;
}

const verbose = (tag: string) => (m: string) => process.env.MIST_TEST_VERBOSE && process.stderr.write(`[${tag}] ${m}\n`);

/** A controller + its Kubernetes side against the fake API (sharing `db` with the other instances). */
export async function startInstance(o: { fake: FakeKubeApi; nats: string; dir: string; name: string; leaderElect?: boolean; leaseDurationSeconds?: number }): Promise<Instance> {
  const ctl = new Controller({
    nats: o.nats,
    stateDir: join(o.dir, o.name),
    db: join(o.dir, 'mist.db'),
    lostAfterMs: 5000,
    stopGraceSeconds: 2,
    standby: !!o.leaderElect,
    log: { info: verbose(o.name), warn: verbose(o.name) },
  });
  await ctl.start();
  const d = o.leaseDurationSeconds ?? 4;
  const kube = startKubeSide({
    kc: o.fake.kubeConfig(NS),
    namespace: NS,
    controller: ctl,
    leaderElect: !!o.leaderElect,
    identity: o.name,
    lease: { leaseDurationSeconds: d, renewDeadlineSeconds: (d * 2) / 3, retryPeriodSeconds: d / 8 },
    operator: { stopTimeoutMs: 20_000, informer: { baseBackoffMs: 50, maxBackoffMs: 500 }, queue: { baseBackoffMs: 50, maxBackoffMs: 1000 } },
    log: verbose(`${o.name}-k8s`),
  });
  return {
    ctl,
    kube,
    async stop() {
      await kube.stop();
      await ctl.close();
    },
  };
}

/** A MistJob object (what `kubectl apply` sends) for the tiny CPU job of the controller tests. */
export function mistJob(name: string, o: Parameters<typeof tinyJob>[1] & { suspend?: boolean; managedBy?: string } = {}): Record<string, any> {
  const doc = parse(tinyJob(name, o)) as Record<string, any>;
  doc.metadata.namespace = NS;
  if (o.suspend !== undefined) doc.spec.suspend = o.suspend;
  if (o.managedBy !== undefined) doc.spec.managedBy = o.managedBy;
  return doc;
}

/** client-node's CustomObjectsApi against the fake server (the "kubectl" of the tests). */
export function kubectl(fake: FakeKubeApi): k8s.CustomObjectsApi {
  return fake.kubeConfig(NS).makeApiClient(k8s.CustomObjectsApi);
}

export const ids = { group: 'mist.io', version: 'v1alpha1', namespace: NS, plural: 'mistjobs' };

export const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

export function condition(obj: any, type: string): any {
  return (obj?.status?.conditions ?? []).find((c: any) => c.type === type);
}
