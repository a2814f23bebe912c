/**
 * The Kubernetes permissions of the Mist controller: exactly the verbs the operator (controller/src/operator/k8s)
 * uses, no more. The Helm chart's ClusterRole (or Role, for a namespaced install) renders these rules verbatim;
 * tests/unit/k8s/chart.test.ts renders the chart with the real Helm binary and checks the two are equal, and
 * docs/install.md lists them for admins.
 *
 * Pure data: no I/O.
 */

/** rbac.authorization.k8s.io/v1 PolicyRule (resource rules only). */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

export const OPERATOR_RBAC_RULES: readonly PolicyRule[] = [
  // the informer (list + watch), re-reads before a retried write (get), finalizer patches (patch), and
  // ttlSecondsAfterFinished clean-up (delete) — operator/k8s/client.ts
  { apiGroups: ['mist.io'], resources: ['mistjobs'], verbs: ['get', 'list', 'watch', 'patch', 'delete'] },
  // status writes: a merge patch of /status carrying the resourceVersion
  { apiGroups: ['mist.io'], resources: ['mistjobs/status'], verbs: ['patch'] },
  // one core/v1 Event per transition
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  // leader election on a coordination.k8s.io/v1 Lease: read, create when missing, replace with its resourceVersion
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
];
