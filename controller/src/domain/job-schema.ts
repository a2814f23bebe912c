/**
 * The one JSON schema of a MistJob (docs/jobs.md). The REST API and `mist submit` validate with it (ajv, in
 * job.ts); the Kubernetes CRD's `openAPIV3Schema` is generated from it. It therefore stays inside the
 * Kubernetes *structural schema* subset: every node has a `type` (or `x-kubernetes-preserve-unknown-fields`),
 * and only types, properties, required, enums, minimum/maximum, lengths, patterns, defaults, `additionalProperties`
 * (false, or a value schema for string maps) and descriptions are used: no $ref, oneOf/anyOf or conditionals.
 *
 * Two fields are unions that a structural schema cannot type: `spec.model` (a preset name, or an object of dims)
 * and `spec.resources.gpus` (an integer, or `{min, max}`). They carry `x-kubernetes-preserve-unknown-fields` and no
 * type, as Kubernetes allows; `validateJob` checks each branch against MODEL_OBJECT_SCHEMA / GPU_RANGE_SCHEMA below,
 * with the same ajv, and reports errors by field path like every other field.
 *
 * Defaults here are applied by ajv (`useDefaults`) and, for the CRD, by the API server. Checks that need the
 * admin's runtime list, the GPU catalog or the model presets live in job.ts (they take those lists as input).
 */

export const JOB_API_VERSION = 'mist.io/v1alpha1';
export const JOB_KIND = 'MistJob';

/** RFC 1035 label: lower-case alphanumerics and '-', starting with a letter, ending alphanumeric, ≤ 63. */
export const RFC1035_LABEL = '^[a-z]([-a-z0-9]*[a-z0-9])?$';

/** Dataset URIs the runtimes read: `synthetic:` (optionally `synthetic:<options>`), `file:///abs/path`, `s3://bucket/key`. */
export const DATASET_URI = '^(synthetic:[A-Za-z0-9._=,:-]*|file:///[^\\s]+|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\\s]*)?)$';

/** Checkpoint directories: an absolute path, or a `file:///` or `s3://` URI. */
export const CHECKPOINT_DIR = '^(/[^\\s]*|file:///[^\\s]+|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\\s]*)?)$';

/** The tuner's search spaces (tuner/space.ts SPACE_NAMES; a test keeps the two in step). */
export const TUNER_SPACES = ['mist', 'megatron-paper', 'megatron', 'deepspeed', 'exhaustive'] as const;

/** The pins the tuner accepts (tuner/space.ts PIN_KEYS; a test keeps the two in step). */
export const PIN_PROPERTIES = {
  tp: { type: 'integer', minimum: 1 },
  pp: { type: 'integer', minimum: 1 },
  dp: { type: 'integer', minimum: 1 },
  microBatch: { type: 'integer', minimum: 1 },
  gradAccum: { type: 'integer', minimum: 1 },
  zero: { type: 'integer', minimum: 0, maximum: 3 },
  ckpt: {
    description: "'none', 'selective', 'norms', 'pointwise', 'full', or the number N of last layers of each stage to recompute",
    'x-kubernetes-int-or-string': true,
    pattern: '^(none|selective|norms|pointwise|full|[0-9]+)$',
  },
  layers: { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 1, description: 'per-stage layer counts (implies pp)' },
  offloadOptimizer: { type: 'number', minimum: 0, maximum: 1 },
  offloadWeights: { type: 'number', minimum: 0, maximum: 1 },
  offloadGrads: { type: 'number', minimum: 0, maximum: 1 },
  offloadActivations: { type: 'number', minimum: 0, maximum: 1 },
  splitBackward: { type: 'boolean', description: 'every stage splits its backward (true) or none does (false); absent: the tuner chooses per stage' },
} as const;

const positiveInt = { type: 'integer', minimum: 1 } as const;
const stringMap = { type: 'object', additionalProperties: { type: 'string', maxLength: 253 } } as const;

/** `spec.model` when it is an object: a preset to start from and/or explicit dims (tuner/model.ts resolveModel). */
export const MODEL_OBJECT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    preset: { type: 'string', minLength: 1, description: 'start from this preset; the dims given here override it' },
    name: { type: 'string', minLength: 1 },
    arch: { type: 'string', enum: ['gpt', 'llama', 'lvm'] },
    layers: positiveInt,
    hidden: positiveInt,
    heads: positiveInt,
    kvHeads: positiveInt,
    ffnHidden: positiveInt,
    vocab: positiveInt,
    seqLen: positiveInt,
    tiedEmbeddings: { type: 'boolean' },
    tokensPerImage: positiveInt,
    imagesPerSequence: positiveInt,
  },
} as const;

/** `spec.resources.gpus` when it is an object: an elastic range; the scheduler picks the largest count that fits. */
export const GPU_RANGE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['min', 'max'],
  properties: { min: positiveInt, max: positiveInt },
} as const;

export const JOB_SPEC_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['model', 'training', 'resources'],
  properties: {
    model: {
      description: 'a model preset name (e.g. llama2-70b), or {preset?, arch, layers, hidden, heads, kvHeads?, ffnHidden?, vocab, seqLen}',
      'x-kubernetes-preserve-unknown-fields': true,
    },
    training: {
      type: 'object',
      additionalProperties: false,
      required: ['globalBatch', 'steps'],
      properties: {
        globalBatch: { ...positiveInt, description: 'sequences per optimizer step' },
        seqLen: { ...positiveInt, description: "tokens per sequence; default: the model's seqLen" },
        steps: { ...positiveInt, description: 'optimizer steps to train' },
        dataset: { type: 'string', pattern: DATASET_URI, default: 'synthetic:', description: 'synthetic:, file:///path or s3://bucket/key' },
        checkpoint: {
          type: 'object',
          additionalProperties: false,
          required: ['dir'],
          properties: {
            dir: { type: 'string', pattern: CHECKPOINT_DIR },
            intervalSteps: { ...positiveInt, default: 100 },
          },
        },
        seed: { type: 'integer', minimum: 0, maximum: 4294967295, default: 0 },
      },
    },
    resources: {
      type: 'object',
      additionalProperties: false,
      required: ['gpus', 'gpuType'],
      properties: {
        gpus: { description: 'a GPU (device) count, or {min, max}', 'x-kubernetes-preserve-unknown-fields': true },
        gpuType: { type: 'string', minLength: 1, description: 'a GPU type of the hardware catalog (a100-40gb, a100-80gb, h100-80gb, h200-141gb, l4-24gb, cpu)' },
        nodeSelector: { ...stringMap, description: 'node labels every node of the job must carry' },
      },
    },
    tuner: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        space: { type: 'string', enum: [...TUNER_SPACES], default: 'mist' },
        pins: { type: 'object', additionalProperties: false, default: {}, properties: PIN_PROPERTIES },
        timeBudgetSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 86400, default: 60 },
        samples: { ...positiveInt, maximum: 10000 },
      },
    },
    runtime: { type: 'string', pattern: RFC1035_LABEL, maxLength: 63, default: 'reference', description: 'a runtime of the admin-defined list' },
    restartPolicy: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        maxRestarts: { type: 'integer', minimum: 0, maximum: 1000, default: 3 },
        backoffSeconds: { type: 'number', minimum: 0, maximum: 86400, default: 10 },
        maxBackoffSeconds: { type: 'number', minimum: 0, maximum: 86400, default: 600 },
        exitCodeRules: {
          type: 'array',
          default: [],
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['codes', 'action'],
            properties: {
              codes: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 0, maximum: 255 } },
              action: { type: 'string', enum: ['restart', 'fail'] },
            },
          },
        },
      },
    },
    suspend: { type: 'boolean', default: false },
    activeDeadlineSeconds: positiveInt,
    ttlSecondsAfterFinished: { type: 'integer', minimum: 0 },
    priority: { type: 'integer', minimum: -1000000, maximum: 1000000, default: 0 },
    workload: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        flash: { type: 'boolean', default: true },
        dropout: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0 },
        sequenceParallel: { type: 'boolean', default: false },
        gradDtype: { type: 'string', enum: ['bf16', 'fp32'], default: 'bf16' },
      },
    },
  },
} as const;

export const JOB_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { type: 'string', enum: [JOB_API_VERSION] },
    kind: { type: 'string', enum: [JOB_KIND] },
    metadata: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: {
        name: { type: 'string', pattern: RFC1035_LABEL, minLength: 1, maxLength: 63, description: 'an RFC 1035 label: lower-case letters, digits and -, starting with a letter, ending with a letter or digit, at most 63 characters' },
        namespace: { type: 'string', pattern: RFC1035_LABEL, maxLength: 63 },
        labels: stringMap,
        annotations: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
    spec: JOB_SPEC_SCHEMA,
  },
} as const;
