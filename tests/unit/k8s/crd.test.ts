import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parse, parseAllDocuments } from 'yaml';
import {
  CRD_FILE, CRD_NAME, IMMUTABLE_FIELDS, MIST_MANAGED_BY, ajvSchemaOf, buildCrd, renderCrdYaml, transitionViolations,
} from '../../../controller/src/operator/k8s/crd.js';
import { JOB_SCHEMA } from '../../../controller/src/domain/job-schema.js';
import { validateJob } from '../../../controller/src/domain/job.js';
import { jobValidationContext } from '../../../controller/src/scheduler/admission.js';
import { repoRoot } from '../../support/paths.js';
import { schemaHasPath, structuralViolations } from './structural.js';

type Obj = Record<string, any>;

const crd = buildCrd() as Obj;
const version = crd.spec.versions[0];
const openApi = version.schema.openAPIV3Schema;

function validator() {
  const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true });
  return ajv.compile(ajvSchemaOf(openApi));
}
const validate = validator();

function errorsOf(obj: unknown): string[] {
  const ok = validate(obj);
  return ok ? [] : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${e.params.additionalProperty})` : ''}`);
}

function exampleFiles(dir: string): string[] {
  return readdirSync(join(repoRoot, dir)).filter((f) => f.endsWith('.yaml')).sort().map((f) => join(dir, f));
}

function tinyJob(): Obj {
  return {
    apiVersion: 'mist.io/v1alpha1',
    kind: 'MistJob',
    metadata: { name: 'tiny' },
    spec: { model: 'tiny-llama', training: { globalBatch: 8, steps: 10 }, resources: { gpus: 2, gpuType: 'cpu' } },
  };
}

describe('k8s: the MistJob CRD', () => {
  it('names, scope, version and subresource follow DESIGN.md §2', () => {
    assert.equal(crd.apiVersion, 'apiextensions.k8s.io/v1');
    assert.equal(crd.kind, 'CustomResourceDefinition');
    assert.equal(crd.metadata.name, 'mistjobs.mist.io');
    assert.equal(CRD_NAME, 'mistjobs.mist.io');
    assert.equal(crd.spec.group, 'mist.io');
    assert.equal(crd.spec.scope, 'Namespaced');
    assert.deepEqual(crd.spec.names, { kind: 'MistJob', listKind: 'MistJobList', plural: 'mistjobs', singular: 'mistjob', shortNames: ['mj'], categories: ['mist'] });
    assert.equal(crd.spec.versions.length, 1);
    assert.equal(version.name, 'v1alpha1');
    assert.equal(version.served, true);
    assert.equal(version.storage, true);
    assert.deepEqual(version.subresources, { status: {} });
  });

  it('is a structural schema (offline checks of the apiextensions rules)', () => {
    assert.deepEqual(structuralViolations(openApi), []);
  });

  it('the structural checker catches what the API server would refuse', () => {
    const broken = {
      type: 'object',
      properties: {
        metadata: { type: 'object', properties: { name: { type: 'string' } } },
        a: { properties: { b: { type: 'string' } } },
        c: { type: 'object', additionalProperties: false, properties: { d: { type: 'integer', exclusiveMinimum: 0 } } },
        e: { type: 'array' },
        f: { $ref: '#/x', type: 'string' },
        g: { type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['k'], items: { type: 'object', properties: { k: { type: 'string' } } } },
        h: { type: 'object', 'x-kubernetes-validations': [{ rule: 'self.u == oldSelf.u' }], properties: { u: { 'x-kubernetes-preserve-unknown-fields': true } } },
      },
    };
    const v = structuralViolations(broken).join('\n');
    for (const m of [
      'properties.metadata: only type object',
      'properties.a: type is required',
      'properties.c: additionalProperties: false is forbidden',
      'properties.c.properties.d: exclusiveMinimum must be a boolean',
      'properties.e: arrays need a single items schema',
      'properties.f: keyword $ref is not allowed',
      'properties.g: map key k must be required or defaulted',
      'properties.h: rule names u, which has no type',
    ]) assert.ok(v.includes(m), `missing "${m}" in:\n${v}`);
  });

  it('the spec schema is generated from JOB_SCHEMA: the same fields, plus managedBy', () => {
    const spec = openApi.properties.spec;
    assert.deepEqual(Object.keys(spec.properties).sort(), [...Object.keys(JOB_SCHEMA.properties.spec.properties), 'managedBy'].sort());
    assert.deepEqual(spec.required, [...JOB_SCHEMA.properties.spec.required]);
    assert.equal(spec.properties.model['x-kubernetes-preserve-unknown-fields'], true);
    assert.equal(spec.properties.resources.properties.gpus['x-kubernetes-preserve-unknown-fields'], true);
    assert.equal(spec.properties.runtime.default, 'reference');
    assert.equal(spec.properties.tuner.properties.timeBudgetSeconds.exclusiveMinimum, true);
    assert.equal(spec.properties.tuner.properties.timeBudgetSeconds.minimum, 0);
    assert.equal(spec.properties.managedBy.type, 'string');
    assert.equal(spec.properties.managedBy.default, undefined, 'absent managedBy means Mist');
  });

  it('makes the shape fields immutable with CEL transition rules', () => {
    const spec = openApi.properties.spec;
    const rules = [
      ...spec['x-kubernetes-validations'].map((r: Obj) => ({ at: 'spec', ...r })),
      ...spec.properties.training['x-kubernetes-validations'].map((r: Obj) => ({ at: 'spec.training', ...r })),
      ...spec.properties.resources['x-kubernetes-validations'].map((r: Obj) => ({ at: 'spec.resources', ...r })),
    ];
    const covered = rules.map((r: Obj) => `${r.at}${r.fieldPath}`).sort();
    assert.deepEqual(covered, [...IMMUTABLE_FIELDS].sort());
    for (const r of rules) {
      assert.match(r.rule, /oldSelf/, 'a transition rule');
      assert.equal(r.message, `${r.at}${r.fieldPath} is immutable`);
    }
  });

  it('transitionViolations mirrors the rules (and the controller-enforced spec.model)', () => {
    const a = tinyJob();
    const b = structuredClone(a);
    b.spec.training.steps = 99;
    b.spec.resources.gpus = { min: 2, max: 8 };
    assert.deepEqual(transitionViolations(a, b), []);
    b.spec.training.seqLen = 128;
    b.spec.runtime = 'megatron';
    b.spec.managedBy = 'kueue.x-k8s.io/multikueue';
    b.spec.model = { preset: 'tiny-llama', layers: 4 };
    assert.deepEqual(transitionViolations(a, b), ['spec.training.seqLen is immutable', 'spec.runtime is immutable', 'spec.managedBy is immutable', 'spec.model is immutable']);
  });

  it('has a status subresource schema with conditions as a map keyed by type', () => {
    const st = openApi.properties.status;
    for (const k of ['phase', 'reason', 'message', 'conditions', 'observedGeneration', 'plan', 'predictedStepSeconds', 'measuredStepSeconds', 'progress', 'restarts', 'startTime', 'completionTime', 'lastFailure']) {
      assert.ok(st.properties[k], `status.${k}`);
    }
    assert.equal(st.properties.conditions['x-kubernetes-list-type'], 'map');
    assert.deepEqual(st.properties.conditions['x-kubernetes-list-map-keys'], ['type']);
    assert.deepEqual(Object.keys(st.properties.conditions.items.properties).sort(), ['lastTransitionTime', 'message', 'observedGeneration', 'reason', 'status', 'type']);
    assert.deepEqual(Object.keys(st.properties.plan.properties).sort(), ['gpus', 'id', 'space', 'summary']);
    assert.deepEqual(Object.keys(st.properties.progress.properties).sort(), ['etaSeconds', 'step', 'tokensPerSecond', 'totalSteps']);
  });

  it('printer columns Phase, GPUs, Plan, Step, Tokens/s, Restarts, Age point at schema fields', () => {
    const cols = version.additionalPrinterColumns as Obj[];
    assert.deepEqual(cols.map((c) => c.name), ['Phase', 'GPUs', 'Plan', 'Step', 'Tokens/s', 'Restarts', 'Age']);
    for (const c of cols) assert.ok(schemaHasPath(openApi, c.jsonPath), `${c.name}: ${c.jsonPath}`);
    assert.equal(schemaHasPath(openApi, '.status.nope'), false);
  });

  it('every default validates against its own schema', () => {
    const ajv = new Ajv({ strict: false });
    const walk = (n: Obj, path: string): void => {
      if ('default' in n) {
        const sub = ajvSchemaOf({ type: 'object', properties: { v: n } });
        delete (sub.properties as Obj).metadata;
        assert.ok(ajv.validate(sub, { v: n.default }), `${path}: default ${JSON.stringify(n.default)}: ${ajv.errorsText()}`);
      }
      for (const [k, v] of Object.entries(n.properties ?? {})) walk(v as Obj, `${path}.${k}`);
      if (n.items) walk(n.items, `${path}[]`);
    };
    walk(openApi, '');
  });

  it(`${CRD_FILE} is the generated text (regenerating changes nothing)`, () => {
    const committed = readFileSync(join(repoRoot, CRD_FILE), 'utf8');
    assert.equal(committed, renderCrdYaml(), 'stale: run `npm run build && node scripts/gen-crd.mjs`');
    assert.equal(renderCrdYaml(), renderCrdYaml(), 'deterministic');
    assert.deepEqual(parse(committed), buildCrd());
  });
});

describe('k8s: manifests validate against the CRD schema', () => {
  for (const file of [...exampleFiles('examples/jobs'), ...exampleFiles('examples/k8s')]) {
    it(`${file} is a valid MistJob`, () => {
      const docs = parseAllDocuments(readFileSync(join(repoRoot, file), 'utf8')).map((d) => d.toJS());
      assert.ok(docs.length >= 1);
      for (const doc of docs) {
        assert.equal(doc.apiVersion, 'mist.io/v1alpha1');
        assert.equal(doc.kind, 'MistJob');
        assert.deepEqual(errorsOf(doc), []);
        assert.deepEqual(transitionViolations(doc, structuredClone(doc)), []);
      }
    });
  }

  for (const file of exampleFiles('examples/k8s')) {
    it(`${file} is also a valid job for the REST API and mist submit (validateJob)`, () => {
      const doc = parse(readFileSync(join(repoRoot, file), 'utf8'));
      assert.doesNotThrow(() => validateJob(doc, jobValidationContext(['reference'])));
    });
  }

  it('examples/k8s has a tiny-llm job and a gpt3-22b job on L4', () => {
    const jobs = exampleFiles('examples/k8s').map((f) => parse(readFileSync(join(repoRoot, f), 'utf8')));
    assert.ok(jobs.some((j) => j.metadata.name === 'tiny-llm' && j.spec.resources.gpuType === 'cpu'));
    assert.ok(jobs.some((j) => j.spec.model?.preset === 'gpt3-22b' && j.spec.resources.gpuType === 'l4-24gb'));
  });

  it('applies the schema defaults like the API server does', () => {
    const job = tinyJob();
    assert.deepEqual(errorsOf(job), []);
    assert.equal(job.spec.runtime, 'reference');
    assert.equal(job.spec.suspend, false);
    assert.equal(job.spec.tuner.space, 'mist');
    assert.equal(job.spec.restartPolicy.maxRestarts, 3);
    assert.equal(job.spec.training.dataset, 'synthetic:');
  });

  const refusals: Array<[string, (j: Obj) => void, RegExp]> = [
    ['a zero global batch', (j) => { j.spec.training.globalBatch = 0; }, /^\/spec\/training\/globalBatch must be >= 1$/],
    ['a missing gpuType', (j) => { delete j.spec.resources.gpuType; }, /^\/spec\/resources must have required property 'gpuType'$/],
    ['an unknown spec field', (j) => { j.spec.replicas = 3; }, /^\/spec must NOT have additional properties \(replicas\)$/],
    ['an unknown tuner space', (j) => { j.spec.tuner = { space: 'random' }; }, /^\/spec\/tuner\/space must be equal to one of the allowed values$/],
    ['a zero time budget (exclusive minimum)', (j) => { j.spec.tuner = { timeBudgetSeconds: 0 }; }, /^\/spec\/tuner\/timeBudgetSeconds must be > 0$/],
    ['a bad dataset URI', (j) => { j.spec.training.dataset = 'http://x/y'; }, /^\/spec\/training\/dataset must match pattern/],
    ['a bad exit-code action', (j) => { j.spec.restartPolicy = { exitCodeRules: [{ codes: [1], action: 'retry' }] }; }, /^\/spec\/restartPolicy\/exitCodeRules\/0\/action must be equal to one of the allowed values$/],
    ['a name that is not an RFC 1035 label', (j) => { j.metadata.name = '9lives'; }, /^\/metadata\/name must match pattern/],
    ['a status phase that does not exist', (j) => { j.status = { phase: 'Exploded' }; }, /^\/status\/phase must be equal to one of the allowed values$/],
    ['a condition status other than True/False/Unknown', (j) => { j.status = { conditions: [{ type: 'Running', status: 'Yes' }] }; }, /^\/status\/conditions\/0\/status must be equal to one of the allowed values$/],
  ];
  for (const [name, mutate, expected] of refusals) {
    it(`refuses ${name}, naming the field path`, () => {
      const job = tinyJob();
      mutate(job);
      const errs = errorsOf(job);
      assert.ok(errs.some((e) => expected.test(e)), `expected ${expected} in ${JSON.stringify(errs)}`);
    });
  }

  it('keeps unknown status fields (the controller\'s bookkeeping) and a managedBy other than Mist', () => {
    const job = tinyJob();
    job.spec.managedBy = 'kueue.x-k8s.io/multikueue';
    job.status = { phase: 'Running', attempt: 1, restarts: 0, placement: [{ node: 'n1', devices: [0, 1] }], conditions: [{ type: 'Running', status: 'True', reason: 'RanksStarted', message: '', lastTransitionTime: '2026-01-01T00:00:00Z', observedGeneration: 1 }] };
    assert.deepEqual(errorsOf(job), []);
    assert.notEqual(job.spec.managedBy, MIST_MANAGED_BY);
  });
});
