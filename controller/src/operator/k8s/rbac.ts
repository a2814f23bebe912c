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
  // informers (list + watch), reads, the finalizer and spec-side patches; delete for ttlSecondsAfterFinished
  { apiGroups: ['mist.io'], resources: ['mistjobs'], verbs: ['get', 'list', 'watch', 'patch', 'update', 'delete'] },
  // status writes (merge patch with resourceVersion; update as a fallback)
  { apiGroups: ['mist.io'], resources: ['mistjobs/status'], verbs: ['get', 'patch', 'update'] },
  // adding/removing the mist.io/cleanup finalizer where OwnerReferencesPermissionEnforcement is on
  { apiGroups: ['mist.io'], resources: ['mistjobs/finalizers'], verbs: ['update'] },
  // one Event per transition (core/v1 and events.k8s.io/v1)
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
  // leader election on a coordination.k8s.io/v1 Lease
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'] },
];
