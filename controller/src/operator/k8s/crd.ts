/**
 * The MistJob CustomResourceDefinition (apiextensions.k8s.io/v1), generated from the one job schema
 * (domain/job-schema.ts JOB_SPEC_SCHEMA). `buildCrd()` is pure; `renderCrdYaml()` is the exact text of
 * charts/mist/crds/mistjobs.mist.io.yaml (written by scripts/gen-crd.mjs; a test fails when they differ).
 *
 * What the generation changes in JOB_SPEC_SCHEMA to make it a Kubernetes structural schema:
 * - `additionalProperties: false` is dropped (Kubernetes forbids it next to `properties`; unknown fields are pruned,
 *   and refused by `kubectl apply`'s default strict field validation);
 * - the draft-07 numeric `exclusiveMinimum: N` / `exclusiveMaximum: N` become OpenAPI v3's `minimum: N` +
 *   `exclusiveMinimum: true` (and the same for maximum);
 * - `spec.managedBy` is added (Kueue/Kubeflow convention): absent or `mist.io/controller` means Mist reconciles the
 *   job; any other value makes Mist leave it alone;
 * - CEL rules (`x-kubernetes-validations`) make the job's shape immutable after creation (IMMUTABLE_FIELDS);
 * - `metadata.name` must be an RFC 1035 label of at most 63 characters (a CEL rule on the root, as in Kubeflow
 *   Trainer), because job names become NATS subject tokens and DNS labels.
 *
 * The status schema types the fields users read (printer columns, `kubectl get -o yaml`) and preserves unknown
 * fields, so that the controller can keep further bookkeeping in the status without a CRD change.
 */
import { stringify } from 'yaml';
import { JOB_API_VERSION, JOB_KIND, JOB_SPEC_SCHEMA, RFC1035_LABEL } from '../../domain/job-schema.js';
import { CONDITION_TYPES } from '../../domain/conditions.js';
import { JOB_PHASES } from '../../domain/lifecycle.js';

export const CRD_GROUP = 'mist.io';
export const CRD_VERSION = 'v1alpha1';
export const CRD_KIND = JOB_KIND;
export const CRD_PLURAL = 'mistjobs';
export const CRD_SINGULAR = 'mistjob';
export const CRD_NAME = `${CRD_PLURAL}.${CRD_GROUP}`;
/** The value of `spec.managedBy` that means Mist (absent means Mist too). */
export const MIST_MANAGED_BY = 'mist.io/controller';
/** Where the generated CRD lives in the repository. */
export const CRD_FILE = 'charts/mist/crds/mistjobs.mist.io.yaml';

if (JOB_API_VERSION !== `${CRD_GROUP}/${CRD_VERSION}`) throw new Error(`job apiVersion ${JOB_API_VERSION} is not ${CRD_GROUP}/${CRD_VERSION}`);

/**
 * Fields of `spec` that cannot change after creation (CEL transition rules): they fix what is being trained and
 * where, so a change would silently make a different job out of an existing one (and its checkpoints). Delete and
 * re-create the job instead. Each may neither be added, removed nor changed. Everything else (steps, globalBatch,
 * dataset, checkpoint, gpus, nodeSelector, tuner, restartPolicy, suspend, deadlines, priority, workload) may change;
 * a change bumps `metadata.generation` and the controller re-plans when the plan inputs changed.
 *
 * `spec.model` is immutable too, but CEL cannot see it: it is a union (a preset name or an object) carried with
 * `x-kubernetes-preserve-unknown-fields` and no type, and Kubernetes does not expose untyped fields to CEL (a rule
 * naming it would make the CRD itself invalid). The controller enforces it (CONTROLLER_IMMUTABLE_FIELDS).
 */
export const IMMUTABLE_FIELDS = [
  'spec.training.seqLen',
  'spec.resources.gpuType',
  'spec.runtime',
  'spec.managedBy',
] as const;

/** Immutable fields the API server cannot check (see IMMUTABLE_FIELDS); the operator refuses changes to them. */
export const CONTROLLER_IMMUTABLE_FIELDS = ['spec.model'] as const;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = { [k: string]: Json };

function clone<T>(x: T): T {
  return JSON.parse(JSON.stringify(x)) as T;
}

/** JSON Schema (draft 07, as used by ajv) -> Kubernetes structural OpenAPI v3 (see the file comment). */
function toStructural(node: Json): Json {
  if (Array.isArray(node)) return node.map(toStructural);
  if (node === null || typeof node !== 'object') return node;
  const out: Schema = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'additionalProperties' && v === false) continue;
    if (k === 'exclusiveMinimum' && typeof v === 'number') {
      out.minimum = v;
      out.exclusiveMinimum = true;
      continue;
    }
    if (k === 'exclusiveMaximum' && typeof v === 'number') {
      out.maximum = v;
      out.exclusiveMaximum = true;
      continue;
    }
    if (k === 'properties' || k === 'patternProperties') {
      const props: Schema = {};
      for (const [name, sub] of Object.entries(v as Schema)) props[name] = toStructural(sub);
      out[k] = props;
      continue;
    }
    if (k === 'default' || k === 'enum') {
      out[k] = clone(v);
      continue;
    }
    out[k] = toStructural(v);
  }
  return out;
}

/** CEL: the (optional) field `f` of `self` may not be added, removed or changed. */
function immutableRule(field: string, path: string): Schema {
  return {
    rule: `has(self.${field}) == has(oldSelf.${field}) && (!has(self.${field}) || self.${field} == oldSelf.${field})`,
    message: `${path} is immutable`,
    fieldPath: `.${field}`,
    reason: 'FieldValueForbidden',
  };
}

function specSchema(): Schema {
  const spec = toStructural(clone(JOB_SPEC_SCHEMA) as unknown as Json) as Schema;
  const props = spec.properties as Record<string, Schema>;
  props.managedBy = {
    type: 'string',
    maxLength: 63,
    minLength: 1,
    description:
      `the controller that reconciles this job: absent or '${MIST_MANAGED_BY}' is Mist; any other value (e.g. ` +
      `'kueue.x-k8s.io/multikueue') makes Mist leave the job alone. Immutable.`,
  };
  // Immutability: rules on the parent object so that adding or removing an optional field counts as a change too
  // (a rule on the field itself is skipped when oldSelf has no value). `runtime` is always present (defaulted).
  const training = props.training as Schema;
  training['x-kubernetes-validations'] = [immutableRule('seqLen', 'spec.training.seqLen')];
  const resources = props.resources as Schema;
  resources['x-kubernetes-validations'] = [immutableRule('gpuType', 'spec.resources.gpuType')];
  spec['x-kubernetes-validations'] = [
    immutableRule('runtime', 'spec.runtime'),
    immutableRule('managedBy', 'spec.managedBy'),
  ];
  spec.description = 'The training job: model, training, resources, tuner, runtime and lifecycle settings (docs/jobs.md).';
  return spec;
}

const time = (description: string): Schema => ({ type: 'string', format: 'date-time', description });

function statusSchema(): Schema {
  return {
    type: 'object',
    description: 'Written by the controller only (the status subresource). Unknown fields are preserved for the controller\'s bookkeeping.',
    'x-kubernetes-preserve-unknown-fields': true,
    properties: {
      phase: { type: 'string', enum: [...JOB_PHASES], description: 'Pending, Planning, Scheduled, Running, Restarting, Suspended, Succeeded or Failed' },
      reason: { type: 'string', description: 'CamelCase reason of the phase' },
      message: { type: 'string', description: 'human-readable detail of the phase' },
      observedGeneration: { type: 'integer', format: 'int64', minimum: 0, description: 'the metadata.generation the status describes' },
      conditions: {
        type: 'array',
        maxItems: 16,
        description: `the current state, one condition per type (${CONDITION_TYPES.join(', ')})`,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
        items: {
          type: 'object',
          required: ['type', 'status'],
          properties: {
            type: { type: 'string', minLength: 1, maxLength: 316 },
            status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
            reason: { type: 'string', maxLength: 1024 },
            message: { type: 'string', maxLength: 32768 },
            lastTransitionTime: time('when status last changed'),
            observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
          },
        },
      },
      plan: {
        type: 'object',
        description: 'the plan the job runs with (the full Plan is in plan history: mist plans show ID)',
        properties: {
          id: { type: 'string' },
          summary: { type: 'string', description: 'e.g. "tp2 pp4 dp4 mb2 zero1"' },
          gpus: { type: 'integer', minimum: 0, description: 'devices the plan uses' },
          space: { type: 'string', description: 'the tuner search space the plan came from' },
        },
      },
      predictedStepSeconds: { type: 'number', minimum: 0, description: 'predicted seconds per optimizer step (the plan)' },
      measuredStepSeconds: { type: 'number', minimum: 0, description: 'measured seconds per optimizer step (agent reports)' },
      progress: {
        type: 'object',
        properties: {
          step: { type: 'integer', minimum: 0 },
          totalSteps: { type: 'integer', minimum: 0 },
          etaSeconds: { type: 'number', minimum: 0 },
          tokensPerSecond: { type: 'number', minimum: 0 },
        },
      },
      attempt: { type: 'integer', minimum: 0, description: 'launches so far' },
      restarts: { type: 'integer', minimum: 0, description: 'counted restarts (against spec.restartPolicy.maxRestarts)' },
      startTime: time('start of the activeDeadlineSeconds clock'),
      completionTime: time('when the job reached Succeeded or Failed'),
      lastFailure: {
        type: 'object',
        properties: {
          attempt: { type: 'integer', minimum: 0 },
          class: { type: 'string', description: 'user_error, out_of_memory, node_lost, infra_error, killed, hung or unknown' },
          reason: { type: 'string' },
          message: { type: 'string' },
          rank: { type: 'integer', minimum: 0 },
          node: { type: 'string' },
          exitCode: { type: 'integer' },
          time: time('when the failure was observed'),
        },
      },
    },
  };
}

/** The MistJob CustomResourceDefinition (a plain object; pure). */
export function buildCrd(): Schema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: CRD_NAME,
      labels: { 'app.kubernetes.io/name': 'mist', 'app.kubernetes.io/part-of': 'mist' },
    },
    spec: {
      group: CRD_GROUP,
      scope: 'Namespaced',
      names: {
        kind: CRD_KIND,
        listKind: `${CRD_KIND}List`,
        plural: CRD_PLURAL,
        singular: CRD_SINGULAR,
        shortNames: ['mj'],
        categories: ['mist'],
      },
      versions: [
        {
          name: CRD_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
            { name: 'GPUs', type: 'integer', jsonPath: '.status.plan.gpus' },
            { name: 'Plan', type: 'string', jsonPath: '.status.plan.summary' },
            { name: 'Step', type: 'integer', jsonPath: '.status.progress.step' },
            { name: 'Tokens/s', type: 'number', jsonPath: '.status.progress.tokensPerSecond' },
            { name: 'Restarts', type: 'integer', jsonPath: '.status.restarts' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: 'A Mist training job: the controller plans it with the Mist tuner and runs it on Mist agents.',
              required: ['spec'],
              'x-kubernetes-validations': [
                {
                  rule: `size(self.metadata.name) <= 63 && self.metadata.name.matches('${RFC1035_LABEL}')`,
                  message: 'metadata.name must be an RFC 1035 label: lower-case letters, digits and -, starting with a letter, ending with a letter or digit, at most 63 characters',
                },
              ],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: specSchema(),
                status: statusSchema(),
              },
            },
          },
        },
      ],
    },
  };
}

const HEADER = [
  '# GENERATED from controller/src/domain/job-schema.ts by controller/src/operator/k8s/crd.ts — do not edit.',
  '# Regenerate: npm run build && node scripts/gen-crd.mjs (a test fails when this file is stale).',
  '# Upgrade in a cluster: kubectl apply --server-side -f charts/mist/crds/ (Helm never upgrades crds/).',
].join('\n');

/** The exact text of charts/mist/crds/mistjobs.mist.io.yaml (deterministic). */
export function renderCrdYaml(): string {
  return `${HEADER}\n${stringify(buildCrd(), { lineWidth: 0, indent: 2, aliasDuplicateObjects: false })}`;
}

/**
 * The CRD's `openAPIV3Schema` as a draft-07 JSON Schema for ajv, emulating what the API server checks on create
 * (with `kubectl`'s default strict field validation): `x-kubernetes-*` keys dropped; boolean
 * `exclusiveMinimum`/`exclusiveMaximum` turned back into numbers; `additionalProperties: false` on every object
 * with `properties` and without `x-kubernetes-preserve-unknown-fields` (unknown fields are refused, not pruned);
 * the root CEL rule on `metadata.name` expressed as a pattern. Transition rules: `transitionViolations`.
 */
export function ajvSchemaOf(openApi: unknown): Schema {
  const walk = (node: Json): Json => {
    if (Array.isArray(node)) return node.map(walk);
    if (node === null || typeof node !== 'object') return node;
    const out: Schema = {};
    const preserve = node['x-kubernetes-preserve-unknown-fields'] === true;
    for (const [k, v] of Object.entries(node)) {
      if (k.startsWith('x-kubernetes-') || k === 'format') continue;
      if ((k === 'exclusiveMinimum' || k === 'exclusiveMaximum') && typeof v === 'boolean') continue;
      if (k === 'properties') {
        const props: Schema = {};
        for (const [name, sub] of Object.entries(v as Schema)) props[name] = walk(sub);
        out.properties = props;
        continue;
      }
      if (k === 'default' || k === 'enum') {
        out[k] = clone(v);
        continue;
      }
      out[k] = walk(v);
    }
    if (node.exclusiveMinimum === true) {
      out.exclusiveMinimum = node.minimum as number;
      delete out.minimum;
    }
    if (node.exclusiveMaximum === true) {
      out.exclusiveMaximum = node.maximum as number;
      delete out.maximum;
    }
    if (node.properties && !preserve && node.additionalProperties === undefined) out.additionalProperties = false;
    return out;
  };
  const root = walk(clone(openApi) as Json) as Schema;
  (root.properties as Record<string, Schema>).metadata = {
    type: 'object',
    properties: { name: { type: 'string', minLength: 1, maxLength: 63, pattern: RFC1035_LABEL } },
  };
  return root;
}

function at(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function stable(x: unknown): string {
  if (x === undefined) return 'undefined';
  if (Array.isArray(x)) return `[${x.map(stable).join(',')}]`;
  if (x && typeof x === 'object') {
    return `{${Object.keys(x).sort().map((k) => `${JSON.stringify(k)}:${stable((x as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(x);
}

/**
 * What the CRD's transition rules (and the controller, for `spec.model`) refuse on an update of `oldObj` to
 * `newObj`: one message per changed immutable field, as the API server words it (`spec.runtime is immutable`).
 * Pure; for fake API servers and the operator's own checks.
 */
export function transitionViolations(oldObj: unknown, newObj: unknown, fields: readonly string[] = [...IMMUTABLE_FIELDS, ...CONTROLLER_IMMUTABLE_FIELDS]): string[] {
  return fields.filter((f) => stable(at(oldObj, f)) !== stable(at(newObj, f))).map((f) => `${f} is immutable`);
}
