import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { isMistError } from '../../../protocol/src/errors.js';
import { JOB_SCHEMA, PIN_PROPERTIES, TUNER_SPACES } from '../../../controller/src/domain/job-schema.js';
import { backoffSeconds, parseJobFile, planInputsKey, validateJob, validateJobSpec, type JobValidationContext } from '../../../controller/src/domain/job.js';
import { jobValidationContext } from '../../../controller/src/scheduler/admission.js';
import { PIN_KEYS, SPACE_NAMES, parsePins } from '../../../controller/src/tuner/space.js';
import { GPU_TYPES } from '../../../controller/src/tuner/hardware.js';
import { resolveModel } from '../../../controller/src/tuner/model.js';
import { repoRoot } from '../../support/paths.js';

const ctx: JobValidationContext = jobValidationContext(['reference', 'megatron']);

function baseDoc(): Record<string, any> {
  return {
    apiVersion: 'mist.io/v1alpha1',
    kind: 'MistJob',
    metadata: { name: 'job-a' },
    spec: {
      model: 'tiny-llama',
      training: { globalBatch: 16, steps: 10 },
      resources: { gpus: 4, gpuType: 'cpu' },
    },
  };
}

function expectBadInput(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isMistError(e), `expected a MistError, got ${String(e)}`);
    assert.equal(e.code, 'BAD_INPUT');
    assert.match(e.message, pattern);
    return true;
  });
}

describe('domain/job: job files', () => {
  const exampleDir = join(repoRoot, 'examples', 'jobs');
  const expected: Record<string, { name: string; model: string; gpuType: string; min: number; max: number }> = {
    'tiny-llm.yaml': { name: 'tiny-llm', model: 'tiny-llama', gpuType: 'cpu', min: 2, max: 4 },
    'tiny-lvm.yaml': { name: 'tiny-lvm', model: 'tiny-lvm', gpuType: 'cpu', min: 2, max: 2 },
    'gpt3-22b-l4.yaml': { name: 'gpt3-22b-l4', model: 'gpt3-22b', gpuType: 'l4-24gb', min: 32, max: 32 },
    'llama2-70b-h100.yaml': { name: 'llama2-70b-h100', model: 'llama2-70b', gpuType: 'h100-80gb', min: 64, max: 64 },
    'lvm-7b-h100.yaml': { name: 'lvm-7b-h100', model: 'lvm-7b', gpuType: 'h100-80gb', min: 32, max: 32 },
  };

  it('examples/jobs holds exactly the documented examples', () => {
    assert.deepEqual(readdirSync(exampleDir).filter((f) => f.endsWith('.yaml')).sort(), Object.keys(expected).sort());
  });

  for (const [file, want] of Object.entries(expected)) {
    it(`example ${file} validates, with the preset resolved by the tuner`, () => {
      const job = validateJob(parseJobFile(readFileSync(join(exampleDir, file), 'utf8')), ctx);
      assert.equal(job.metadata.name, want.name);
      assert.equal(job.spec.model.preset, want.model);
      assert.equal(job.spec.resources.gpuType, want.gpuType);
      assert.deepEqual(job.spec.resources.gpus, { min: want.min, max: want.max });
      assert.ok(job.spec.training.checkpoint, 'every example checkpoints');
      // the same document as JSON validates to the same job
      const asJson = JSON.stringify(parseJobFile(readFileSync(join(exampleDir, file), 'utf8')));
      assert.deepEqual(validateJob(parseJobFile(asJson, 'json'), ctx), job);
    });
  }

  it('applies every default', () => {
    const job = validateJob(baseDoc(), ctx);
    assert.deepEqual(job.spec, {
      model: { preset: 'tiny-llama' },
      training: { globalBatch: 16, steps: 10, dataset: 'synthetic:', seed: 0 },
      resources: { gpus: { min: 4, max: 4 }, gpuType: 'cpu' },
      tuner: { space: 'mist', pins: {}, timeBudgetSeconds: 60 },
      runtime: 'reference',
      restartPolicy: { maxRestarts: 3, backoffSeconds: 10, maxBackoffSeconds: 600, exitCodeRules: [] },
      suspend: false,
      priority: 0,
      workload: { flash: true, dropout: 0, sequenceParallel: false, gradDtype: 'bf16' },
    });
  });

  it('does not modify its input', () => {
    const doc = baseDoc();
    const before = JSON.stringify(doc);
    validateJob(doc, ctx);
    assert.equal(JSON.stringify(doc), before);
  });

  it('accepts a model given as dims (no preset) and a preset with overrides', () => {
    const d = baseDoc();
    d.spec.model = { arch: 'llama', layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 256, seqLen: 64 };
    assert.equal(validateJob(d, ctx).spec.model.layers, 2);
    d.spec.model = { preset: 'tiny-llama', layers: 8 };
    assert.deepEqual(validateJob(d, ctx).spec.model, { preset: 'tiny-llama', layers: 8 });
  });

  it('accepts pins the tuner parses', () => {
    const d = baseDoc();
    d.spec.tuner = { pins: { tp: 2, ckpt: 'selective', layers: [2, 2], offloadOptimizer: 0.5 } };
    const spec = validateJob(d, ctx).spec;
    assert.deepEqual(parsePins(spec.tuner.pins), { tp: 2, ckpt: 'selective', layers: [2, 2], offloadOptimizer: 0.5 });
    d.spec.tuner = { pins: { ckpt: 3 } };
    assert.deepEqual(parsePins(validateJob(d, ctx).spec.tuner.pins), { ckpt: 3 });
  });

  type Case = { name: string; mutate?: (d: Record<string, any>) => void; text?: string; format?: 'yaml' | 'json'; error: RegExp };
  const cases: Case[] = [
    { name: 'malformed YAML names line and column', text: 'apiVersion: mist.io/v1alpha1\nkind: MistJob\nmetadata: {name: a\nspec: {}\n', error: /^job file: malformed YAML at line \d+, column \d+/ },
    { name: 'malformed JSON names line and column', text: '{\n  "apiVersion": "mist.io/v1alpha1",\n  "kind": }', format: 'json', error: /^job file: malformed JSON at line 3, column \d+/ },
    { name: 'two YAML documents', text: 'a: 1\n---\nb: 2\n', error: /^job file: holds 2 YAML documents/ },
    { name: 'an empty file', text: '\n# nothing\n', error: /^job file: is empty/ },
    { name: 'duplicate YAML keys', text: 'kind: MistJob\nkind: MistJob\n', error: /^job file: malformed YAML at line 2/ },
    { name: 'wrong apiVersion', mutate: (d) => (d.apiVersion = 'mist.io/v1'), error: /^apiVersion: "mist.io\/v1" is not allowed; valid: mist.io\/v1alpha1/ },
    { name: 'wrong kind', mutate: (d) => (d.kind = 'PyTorchJob'), error: /^kind: "PyTorchJob" is not allowed/ },
    { name: 'name not an RFC 1035 label', mutate: (d) => (d.metadata.name = 'Job_A'), error: /^metadata\.name: "Job_A" must match .*RFC 1035/ },
    { name: 'name longer than 63', mutate: (d) => (d.metadata.name = 'a'.repeat(64)), error: /^metadata\.name: must NOT have more than 63 characters/ },
    { name: 'missing spec', mutate: (d) => delete d.spec, error: /^spec: is required/ },
    { name: 'unknown spec field', mutate: (d) => (d.spec.replicas = 2), error: /^spec\.replicas: unknown field; valid fields: model, training/ },
    { name: 'unknown nested field', mutate: (d) => (d.spec.training.epochs = 2), error: /^spec\.training\.epochs: unknown field/ },
    { name: 'missing globalBatch', mutate: (d) => delete d.spec.training.globalBatch, error: /^spec\.training\.globalBatch: is required/ },
    { name: 'globalBatch zero', mutate: (d) => (d.spec.training.globalBatch = 0), error: /^spec\.training\.globalBatch: must be >= 1/ },
    { name: 'globalBatch fractional', mutate: (d) => (d.spec.training.globalBatch = 1.5), error: /^spec\.training\.globalBatch: must be integer/ },
    { name: 'unknown model preset (via the tuner resolver)', mutate: (d) => (d.spec.model = 'gpt5-1t'), error: /^spec\.model: unknown preset "gpt5-1t"; valid presets: .*tiny-llama/ },
    { name: 'unknown preset inside a model object', mutate: (d) => (d.spec.model = { preset: 'nope', layers: 2 }), error: /^spec\.model\.preset: unknown preset "nope"/ },
    { name: 'model dims missing without preset', mutate: (d) => (d.spec.model = { arch: 'gpt', layers: 2 }), error: /^spec\.model\.hidden: is required when no preset is given/ },
    { name: 'model dims inconsistent (resolver)', mutate: (d) => (d.spec.model = { arch: 'gpt', layers: 2, hidden: 65, heads: 4, vocab: 256, seqLen: 64 }), error: /^spec\.model\.heads: 4 does not divide hidden 65/ },
    { name: 'model of the wrong type', mutate: (d) => (d.spec.model = 7), error: /^spec\.model: must be a preset name or an object of dims/ },
    { name: 'model object with an unknown key', mutate: (d) => (d.spec.model = { preset: 'tiny-llama', depth: 3 }), error: /^spec\.model\.depth: unknown field/ },
    { name: 'zero GPUs', mutate: (d) => (d.spec.resources.gpus = 0), error: /^spec\.resources\.gpus: zero GPUs/ },
    { name: 'zero GPUs as min', mutate: (d) => (d.spec.resources.gpus = { min: 0, max: 4 }), error: /^spec\.resources\.gpus\.min: zero GPUs/ },
    { name: 'negative GPUs', mutate: (d) => (d.spec.resources.gpus = -2), error: /^spec\.resources\.gpus: must be a positive integer/ },
    { name: 'GPU range min > max', mutate: (d) => (d.spec.resources.gpus = { min: 8, max: 4 }), error: /^spec\.resources\.gpus\.min: 8 exceeds max 4/ },
    { name: 'GPU range missing max', mutate: (d) => (d.spec.resources.gpus = { min: 2 }), error: /^spec\.resources\.gpus\.max: is required/ },
    { name: 'unknown GPU type', mutate: (d) => (d.spec.resources.gpuType = 'b200'), error: /^spec\.resources\.gpuType: unknown GPU type "b200"; valid: a100-40gb, .*cpu/ },
    { name: 'unknown runtime', mutate: (d) => (d.spec.runtime = 'bash'), error: /^spec\.runtime: unknown runtime "bash"; valid \(admin-defined\): reference, megatron/ },
    { name: 'batch not divisible by pinned dp × microBatch', mutate: (d) => (d.spec.tuner = { pins: { dp: 2, microBatch: 3 } }), error: /^spec\.training\.globalBatch: 16 must be divisible by dp 2 × microBatch 3 = 6/ },
    { name: 'batch not divisible by pinned gradAccum', mutate: (d) => (d.spec.tuner = { pins: { gradAccum: 5 } }), error: /^spec\.training\.globalBatch: 16 must be divisible by gradAccum 5/ },
    { name: 'batch too small for pinned pp', mutate: (d) => ((d.spec.tuner = { pins: { pp: 4, dp: 1, microBatch: 8 } }), (d.spec.resources.gpus = 4)), error: /^spec\.training\.globalBatch: 16 is too small for 4 pipeline stages: gradAccum 2 < pp 4/ },
    { name: 'pinned dp divides no GPU count', mutate: (d) => ((d.spec.tuner = { pins: { dp: 3 } }), (d.spec.training.globalBatch = 48)), error: /^spec\.tuner\.pins\.dp: 3 divides no GPU count in 4\.\.4/ },
    { name: 'pinned dp × tp beyond the range', mutate: (d) => (d.spec.tuner = { pins: { dp: 4, tp: 2 } }), error: /^spec\.tuner\.pins: pinned dp × tp × pp = 8 divides no GPU count/ },
    { name: 'unknown pin', mutate: (d) => (d.spec.tuner = { pins: { sp: 2 } }), error: /^spec\.tuner\.pins\.sp: unknown field/ },
    { name: 'bad ckpt pin', mutate: (d) => (d.spec.tuner = { pins: { ckpt: 'most' } }), error: /^spec\.tuner\.pins\.ckpt: "most" must match/ },
    { name: 'negative ckpt pin', mutate: (d) => (d.spec.tuner = { pins: { ckpt: -1 } }), error: /^spec\.tuner\.pins\.ckpt: -1 must be a string or a non-negative integer/ },
    { name: 'unknown tuner space', mutate: (d) => (d.spec.tuner = { space: 'alpa' }), error: /^spec\.tuner\.space: "alpa" is not allowed; valid: mist, megatron-paper/ },
    { name: 'bad dataset URI', mutate: (d) => (d.spec.training.dataset = 'http://x/y'), error: /^spec\.training\.dataset: "http:\/\/x\/y" must match .*; synthetic:, file:\/\/\/path or s3:\/\/bucket\/key/ },
    { name: 'relative checkpoint dir', mutate: (d) => (d.spec.training.checkpoint = { dir: 'ckpt' }), error: /^spec\.training\.checkpoint\.dir: "ckpt" must match/ },
    { name: 'checkpoint interval beyond steps', mutate: (d) => (d.spec.training.checkpoint = { dir: '/ck', intervalSteps: 50 }), error: /^spec\.training\.checkpoint\.intervalSteps: 50 exceeds steps 10/ },
    { name: 'exit code ruled twice', mutate: (d) => (d.spec.restartPolicy = { exitCodeRules: [{ codes: [1, 2], action: 'fail' }, { codes: [2], action: 'restart' }] }), error: /^spec\.restartPolicy\.exitCodeRules\[1\]\.codes: exit code 2 is already ruled by exitCodeRules\[0\]/ },
    { name: 'exit code rule with a bad action', mutate: (d) => (d.spec.restartPolicy = { exitCodeRules: [{ codes: [1], action: 'ignore' }] }), error: /^spec\.restartPolicy\.exitCodeRules\[0\]\.action: "ignore" is not allowed/ },
    { name: 'backoff cap below backoff', mutate: (d) => (d.spec.restartPolicy = { backoffSeconds: 30, maxBackoffSeconds: 10 }), error: /^spec\.restartPolicy\.maxBackoffSeconds: 10 is below backoffSeconds 30/ },
    { name: 'negative maxRestarts', mutate: (d) => (d.spec.restartPolicy = { maxRestarts: -1 }), error: /^spec\.restartPolicy\.maxRestarts: must be >= 0/ },
    { name: 'dropout of 1', mutate: (d) => (d.spec.workload = { dropout: 1 }), error: /^spec\.workload\.dropout: must be < 1/ },
    { name: 'suspend not a boolean', mutate: (d) => (d.spec.suspend = 'yes'), error: /^spec\.suspend: must be boolean/ },
    { name: 'label value not a string', mutate: (d) => (d.metadata.labels = { team: 7 }), error: /^metadata\.labels\.team: must be string/ },
    { name: 'a job that is not an object', mutate: (d) => Object.assign(d, { spec: [] }), error: /^spec: must be an object/ },
  ];
  for (const c of cases) {
    it(`rejects ${c.name}`, () => {
      expectBadInput(() => {
        if (c.text !== undefined) return validateJob(parseJobFile(c.text, c.format), ctx);
        const d = baseDoc();
        c.mutate!(d);
        return validateJob(d, ctx);
      }, c.error);
    });
  }

  it('without a resolver, an unknown preset passes (the check is the caller-supplied resolver)', () => {
    const d = baseDoc();
    d.spec.model = 'gpt5-1t';
    assert.equal(validateJob(d, { runtimes: ['reference'], gpuTypes: ['cpu'] }).spec.model.preset, 'gpt5-1t');
  });

  it('detects JSON by its first character and YAML otherwise', () => {
    assert.deepEqual(parseJobFile('  {"a": 1}'), { a: 1 });
    assert.deepEqual(parseJobFile('a: 1'), { a: 1 });
  });

  it('planInputsKey ignores fields that do not affect the plan and sees those that do', () => {
    const a = validateJob(baseDoc(), ctx).spec;
    const more = { ...a, training: { ...a.training, steps: 999 }, suspend: true, priority: 5 };
    assert.equal(planInputsKey(more), planInputsKey(a));
    assert.notEqual(planInputsKey({ ...a, training: { ...a.training, globalBatch: 32 } }), planInputsKey(a));
    assert.notEqual(planInputsKey({ ...a, resources: { ...a.resources, gpus: { min: 2, max: 4 } } }), planInputsKey(a));
  });

  it('backoff doubles per restart and is capped', () => {
    const p = { maxRestarts: 9, backoffSeconds: 10, maxBackoffSeconds: 100, exitCodeRules: [] };
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((n) => backoffSeconds(p, n)), [0, 10, 20, 40, 80, 100]);
  });

  it('property: a valid spec re-validates to itself (defaults are a fixed point)', () => {
    fc.assert(
      fc.property(
        fc.record({
          gb: fc.integer({ min: 1, max: 4096 }),
          min: fc.integer({ min: 1, max: 64 }),
          extra: fc.integer({ min: 0, max: 64 }),
          steps: fc.integer({ min: 1, max: 10000 }),
          priority: fc.integer({ min: -100, max: 100 }),
          suspend: fc.boolean(),
          runtime: fc.constantFrom('reference', 'megatron'),
          gpuType: fc.constantFrom(...GPU_TYPES),
          preset: fc.constantFrom('tiny-llama', 'tiny-lvm', 'gpt3-1.3b', 'llama2-7b'),
        }),
        (r) => {
          const d = baseDoc();
          d.spec = {
            model: r.preset,
            training: { globalBatch: r.gb, steps: r.steps },
            resources: { gpus: r.extra ? { min: r.min, max: r.min + r.extra } : r.min, gpuType: r.gpuType },
            runtime: r.runtime,
            priority: r.priority,
            suspend: r.suspend,
          };
          const once = validateJob(d, ctx);
          const twice = validateJob(JSON.parse(JSON.stringify(once)), ctx);
          assert.deepEqual(twice, once);
          assert.equal(once.spec.resources.gpus.min, r.min);
          assert.equal(once.spec.resources.gpus.max, r.min + r.extra);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('property: every rejected spec names a field path under spec (or the file)', () => {
    const fields: Array<[string[], unknown]> = [
      [['training', 'globalBatch'], 0],
      [['training', 'steps'], -1],
      [['resources', 'gpus'], 0],
      [['resources', 'gpuType'], 'tpu'],
      [['runtime'], 'x'],
      [['priority'], 1.5],
      [['tuner', 'timeBudgetSeconds'], 0],
      [['restartPolicy', 'backoffSeconds'], -1],
      [['activeDeadlineSeconds'], 0],
      [['ttlSecondsAfterFinished'], -5],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...fields), ([path, bad]) => {
        const d = baseDoc();
        let o = d.spec;
        for (const k of path.slice(0, -1)) o = o[k] ??= {};
        o[path[path.length - 1]!] = bad;
        expectBadInput(() => validateJob(d, ctx), new RegExp(`^spec\\.${path.join('\\.')}: `));
      }),
    );
  });
});

describe('domain/job-schema: one structural schema', () => {
  const ALLOWED = new Set([
    'type', 'properties', 'required', 'enum', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength',
    'pattern', 'default', 'additionalProperties', 'items', 'minItems', 'maxItems', 'description',
    'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-int-or-string',
  ]);
  function walk(node: Record<string, unknown>, path: string, out: string[]): void {
    for (const k of Object.keys(node)) if (!ALLOWED.has(k)) out.push(`${path}: keyword ${k}`);
    if (!node.type && !node['x-kubernetes-preserve-unknown-fields'] && !node['x-kubernetes-int-or-string']) out.push(`${path}: no type`);
    for (const [k, v] of Object.entries((node.properties as Record<string, Record<string, unknown>>) ?? {})) walk(v, `${path}.${k}`, out);
    if (node.items) walk(node.items as Record<string, unknown>, `${path}[]`, out);
    if (node.additionalProperties && typeof node.additionalProperties === 'object') walk(node.additionalProperties as Record<string, unknown>, `${path}{}`, out);
  }

  it('uses only the structural subset: typed nodes, no $ref/oneOf/anyOf', () => {
    const problems: string[] = [];
    walk(JOB_SCHEMA as unknown as Record<string, unknown>, '', problems);
    assert.deepEqual(problems, []);
  });

  it('every object closes its properties (additionalProperties false or a map value schema)', () => {
    const open: string[] = [];
    const visit = (n: Record<string, any>, p: string) => {
      if (n.type === 'object' && n.additionalProperties === undefined) open.push(p);
      for (const [k, v] of Object.entries(n.properties ?? {})) visit(v as Record<string, any>, `${p}.${k}`);
      if (n.items) visit(n.items, `${p}[]`);
    };
    visit(JOB_SCHEMA, '');
    assert.deepEqual(open, []);
  });

  it('lists the tuner spaces and pins of tuner/space.ts', () => {
    assert.deepEqual([...TUNER_SPACES], [...SPACE_NAMES]);
    assert.deepEqual(Object.keys(PIN_PROPERTIES).sort(), [...PIN_KEYS].sort());
  });

  it('every preset of the tuner is accepted by name', () => {
    for (const name of ['gpt3-22b', 'llama2-70b', 'lvm-7b', 'tiny-gpt']) {
      const d = baseDoc();
      d.spec.model = name;
      d.spec.resources.gpus = 8;
      assert.equal(validateJobSpec(d.spec, ctx).model.preset, name);
      assert.equal(resolveModel(name).name, name);
    }
  });
});
