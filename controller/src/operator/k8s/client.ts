/**
 * Kubernetes access for the operator: the KubeConfig (a kubeconfig file, in-cluster, or the default chain), the
 * MistJob resource calls (client-node 1.4's object-parameter API), and the error helpers. Every write that can
 * race carries `metadata.resourceVersion`, so a stale write is a 409 instead of a lost update.
 */
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { CRD_GROUP, CRD_KIND, CRD_PLURAL, CRD_VERSION } from './crd.js';

export { CRD_GROUP, CRD_KIND, CRD_PLURAL, CRD_VERSION };
export const API_VERSION = `${CRD_GROUP}/${CRD_VERSION}`;
/** The finalizer the operator puts on every MistJob it manages: ranks are stopped before the object goes. */
export const FINALIZER = 'mist.io/stop-ranks';
/** `spec.managedBy` of Mist (absent means Mist too). */
export { MIST_MANAGED_BY } from './crd.js';

/** A MistJob as the API server returns it (only what the operator reads is typed). */
export interface KubeMistJob {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    finalizers?: string[];
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** Loads the Kubernetes client configuration: `kubeconfig` path, else in-cluster (service account), else default. */
export function loadKubeConfig(o: { kubeconfig?: string; inCluster?: boolean } = {}): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
  else if (o.inCluster || process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/** The namespace to watch: explicit, else the service account's (in-cluster), else the context's, else default. */
export function defaultNamespace(kc: k8s.KubeConfig): string {
  try {
    const ns = readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim();
    if (ns) return ns;
  } catch {
    /* not in a cluster */
  }
  const ctx = kc.getContextObject(kc.getCurrentContext());
  return ctx?.namespace || 'default';
}

/** HTTP status of a client-node error (ApiException.code, or a watch error's statusCode), else undefined. */
export function httpCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | null;
  if (e && typeof e.code === 'number') return e.code;
  if (e && typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

export function errorText(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  let body = '';
  if (e?.body !== undefined) {
    try {
      const b = typeof e.body === 'string' ? (JSON.parse(e.body) as { message?: string }) : (e.body as { message?: string });
      body = b?.message ?? '';
    } catch {
      body = String(e.body).slice(0, 300);
    }
  }
  return `${typeof e?.code === 'number' ? `HTTP ${e.code}: ` : ''}${body || e?.message || String(err)}`;
}

const MERGE_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/** The MistJob calls the operator makes (and nothing else: see rbac.ts). */
export class MistJobApi {
  readonly co: k8s.CustomObjectsApi;
  readonly core: k8s.CoreV1Api;

  constructor(readonly kc: k8s.KubeConfig, readonly namespace: string) {
    this.co = kc.makeApiClient(k8s.CustomObjectsApi);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  /** The collection path (for watches). */
  get path(): string {
    return `/apis/${CRD_GROUP}/${CRD_VERSION}/namespaces/${this.namespace}/${CRD_PLURAL}`;
  }

  private ids() {
    return { group: CRD_GROUP, version: CRD_VERSION, namespace: this.namespace, plural: CRD_PLURAL };
  }

  async list(): Promise<{ items: KubeMistJob[]; resourceVersion: string }> {
    const r = (await this.co.listNamespacedCustomObject(this.ids())) as { items?: KubeMistJob[]; metadata?: { resourceVersion?: string } };
    return { items: r.items ?? [], resourceVersion: r.metadata?.resourceVersion ?? '' };
  }

  async get(name: string): Promise<KubeMistJob> {
    return (await this.co.getNamespacedCustomObject({ ...this.ids(), name })) as KubeMistJob;
  }

  /** Merge patch of the status subresource, conditional on `resourceVersion` (409 when the object moved on). */
  async patchStatus(name: string, resourceVersion: string, status: Record<string, unknown>): Promise<KubeMistJob> {
    return (await this.co.patchNamespacedCustomObjectStatus({ ...this.ids(), name, body: { metadata: { resourceVersion }, status } }, MERGE_PATCH)) as KubeMistJob;
  }

  /** Merge patch of metadata.finalizers (the whole list), conditional on `resourceVersion`. */
  async patchFinalizers(name: string, resourceVersion: string, finalizers: string[]): Promise<KubeMistJob> {
    return (await this.co.patchNamespacedCustomObject({ ...this.ids(), name, body: { metadata: { resourceVersion, finalizers } } }, MERGE_PATCH)) as KubeMistJob;
  }

  async delete(name: string, uid?: string): Promise<void> {
    await this.co.deleteNamespacedCustomObject({ ...this.ids(), name, ...(uid ? { body: { preconditions: { uid } } } : {}) });
  }

  async createEvent(body: k8s.CoreV1Event): Promise<void> {
    await this.core.createNamespacedEvent({ namespace: this.namespace, body });
  }
}
