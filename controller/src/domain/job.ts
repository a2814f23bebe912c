/**
 * The MistJob: its typed spec, the job-file parser and the validator (docs/jobs.md). One schema (job-schema.ts)
 * checks shapes, ranges and patterns and applies defaults; this file adds what a schema cannot say: the two union
 * fields (`model`, `resources.gpus`), cross-field rules (min ≤ max, batch divisibility under pinned knobs) and the
 * checks against lists the caller supplies (runtimes, GPU types, model presets). Every error is a MistError
 * BAD_INPUT whose message starts with the field path, e.g. `spec.training.globalBatch: must be divisible by …`.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { MistError, badInput, isMistError } from '../../../protocol/src/errors.js';
import type { Arch } from './model.js';
import { GPU_RANGE_SCHEMA, JOB_API_VERSION, JOB_KIND, JOB_SCHEMA, JOB_SPEC_SCHEMA, MODEL_OBJECT_SCHEMA } from './job-schema.js';

// ---------------------------------------------------------------------------------------------------------------
// Types

/** A model given by preset and/or dims (tuner/model.ts resolveModel reads exactly this). */
export interface ModelRef {
  preset?: string;
  name?: string;
  arch?: Arch;
  layers?: number;
  hidden?: number;
  heads?: number;
  kvHeads?: number;
  ffnHidden?: number;
  vocab?: number;
  seqLen?: number;
  tiedEmbeddings?: boolean;
  tokensPerImage?: number;
  imagesPerSequence?: number;
}

/** A GPU count range; a fixed count n is {min: n, max: n}. */
export interface GpuRange {
  min: number;
  max: number;
}

export interface CheckpointSpec {
  /** Absolute path, file:/// or s3:// URI; the runtime writes a plan-independent layout there. */
  dir: string;
  intervalSteps: number;
}

export interface TrainingSpec {
  globalBatch: number;
  /** Default: the model's seqLen. */
  seqLen?: number;
  steps: number;
  /** `synthetic:` (default), `file:///…` or `s3://…`. */
  dataset: string;
  checkpoint?: CheckpointSpec;
  seed: number;
}

export interface ResourcesSpec {
  gpus: GpuRange;
  gpuType: string;
  nodeSelector?: Record<string, string>;
}

/** Tuner pins, keyed as tuner/space.ts Pins (tuner.parsePins reads this object). */
export type PinsSpec = Record<string, number | string | number[]>;

export interface TunerSpec {
  space: 'mist' | 'megatron-paper' | 'megatron' | 'deepspeed' | 'exhaustive';
  pins: PinsSpec;
  timeBudgetSeconds: number;
  samples?: number;
}

export interface ExitCodeRule {
  codes: number[];
  action: 'restart' | 'fail';
}

export interface RestartPolicy {
  maxRestarts: number;
  /** First backoff; doubles per counted restart, capped at maxBackoffSeconds. */
  backoffSeconds: number;
  maxBackoffSeconds: number;
  exitCodeRules: ExitCodeRule[];
}

export interface WorkloadSpec {
  flash: boolean;
  dropout: number;
  sequenceParallel: boolean;
  gradDtype: 'bf16' | 'fp32';
}

/** A validated spec with every default applied. */
export interface JobSpec {
  model: ModelRef;
  training: TrainingSpec;
  resources: ResourcesSpec;
  tuner: TunerSpec;
  runtime: string;
  restartPolicy: RestartPolicy;
  suspend: boolean;
  activeDeadlineSeconds?: number;
  ttlSecondsAfterFinished?: number;
  priority: number;
  workload: WorkloadSpec;
}

export interface JobMetadata {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A job file / REST body / custom resource: `{apiVersion: mist.io/v1alpha1, kind: MistJob, metadata, spec}`. */
export interface MistJob {
  apiVersion: typeof JOB_API_VERSION;
  kind: typeof JOB_KIND;
  metadata: JobMetadata;
  spec: JobSpec;
}

/** What the validator checks against; the caller supplies the lists (domain/ imports no tuner or config). */
export interface JobValidationContext {
  /** Names of the admin-defined runtimes (e.g. ['reference', 'megatron']). */
  runtimes: readonly string[];
  /** GPU types of the hardware catalog (tuner/hardware.ts GPU_TYPES). */
  gpuTypes: readonly string[];
  /**
   * Resolves the model (e.g. `(m, field) => resolveModel(m, field)` from tuner/model.ts); throws BAD_INPUT for an
   * unknown preset or bad dims. Gets the preset name when only a preset is given, else the object.
   */
  resolveModel?(model: string | ModelRef, field: string): unknown;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing

export type JobFileFormat = 'yaml' | 'json';

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: lines[lines.length - 1]!.length + 1 };
}

/** Offset of the first JSON syntax error in `text` (Node 20's messages do not always say). */
function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const str = () => {
    if (text[i] !== '"') fail();
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') i++;
      else if (text.charCodeAt(i) < 0x20) fail();
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const value = (): void => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        str();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else fail();
      }
    }
    if (ch === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else fail();
      }
    }
    if (ch === '"') return str();
    const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i));
    if (!m) fail();
    i += m![0].length;
  };
  try {
    value();
    ws();
    return i;
  } catch (at) {
    return typeof at === 'number' ? at : 0;
  }
}

/**
 * Parses a job file (YAML, or JSON; by default JSON when the text starts with '{', else YAML) into a plain
 * document, unvalidated. Malformed text is BAD_INPUT naming the line and column.
 */
export function parseJobFile(text: string, format?: JobFileFormat, source = 'job file'): unknown {
  if (typeof text !== 'string') throw badInput(source, 'must be text');
  const fmt = format ?? (text.trimStart().startsWith('{') ? 'json' : 'yaml');
  if (fmt === 'json') {
    try {
      return JSON.parse(text);
    } catch (e) {
      const msg = (e as Error).message.replace(/\s+/g, ' ');
      const pos = /position (\d+)/.exec(msg);
      let where = pos ? lineColumn(text, Number(pos[1])) : /end of JSON input/.test(msg) ? lineColumn(text, text.length) : null;
      where ??= lineColumn(text, jsonErrorOffset(text));
      throw badInput(source, `malformed JSON${where ? ` at line ${where.line}, column ${where.column}` : ''}: ${msg}`);
    }
  }
  if (fmt !== 'yaml') throw badInput('format', `unknown ${JSON.stringify(fmt)}`, 'valid: yaml, json');
  const docs = parseAllDocuments(text, { prettyErrors: false, uniqueKeys: true });
  if (!Array.isArray(docs)) throw badInput(source, 'malformed YAML: an empty stream has no job');
  for (const d of docs) {
    const err = d.errors[0];
    if (err) {
      const lc = lineColumn(text, err.pos[0]);
      const where = ` at line ${lc.line}, column ${lc.column}`;
      throw badInput(source, `malformed YAML${where}: ${err.message.split('\n')[0]}`);
    }
  }
  const nonEmpty = docs.filter((d) => d.contents !== null);
  if (nonEmpty.length === 0) throw badInput(source, 'is empty', 'a MistJob document');
  if (nonEmpty.length > 1) throw badInput(source, `holds ${nonEmpty.length} YAML documents`, 'one job per file');
  try {
    return nonEmpty[0]!.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw badInput(source, `malformed YAML: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Validation

const ajv = new Ajv({ allErrors: false, verbose: true, useDefaults: true, strict: true, strictTypes: false });
ajv.addKeyword({ keyword: 'x-kubernetes-preserve-unknown-fields', schemaType: 'boolean' });
ajv.addKeyword({
  keyword: 'x-kubernetes-int-or-string',
  schemaType: 'boolean',
  errors: false,
  validate: (on: boolean, data: unknown) => !on || typeof data === 'string' || (typeof data === 'number' && Number.isInteger(data) && data >= 0),
});

let compiled: { file: ValidateFunction; spec: ValidateFunction; model: ValidateFunction; gpus: ValidateFunction } | null = null;
function validators() {
  compiled ??= {
    file: ajv.compile(JOB_SCHEMA),
    spec: ajv.compile(JOB_SPEC_SCHEMA),
    model: ajv.compile(MODEL_OBJECT_SCHEMA),
    gpus: ajv.compile(GPU_RANGE_SCHEMA),
  };
  return compiled;
}

function joinPath(base: string, instancePath: string): string {
  let p = base;
  for (const seg of instancePath.split('/').slice(1)) {
    const s = seg.replace(/~1/g, '/').replace(/~0/g, '~');
    p += /^\d+$/.test(s) ? `[${s}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? `${p === '' ? '' : '.'}${s}` : `[${JSON.stringify(s)}]`;
  }
  return p;
}

function schemaError(base: string, e: ErrorObject): MistError {
  const path = joinPath(base, e.instancePath);
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return badInput(joinPath(path, `/${String(params.missingProperty)}`), 'is required');
    case 'additionalProperties': {
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return badInput(joinPath(path, `/${String(params.additionalProperty)}`), 'unknown field', allowed.length ? `valid fields: ${allowed.join(', ')}` : undefined);
    }
    case 'enum':
      return badInput(path, `${JSON.stringify(e.data)} is not allowed`, `valid: ${(params.allowedValues as unknown[]).map(String).join(', ')}`);
    case 'pattern': {
      const hint = (e.parentSchema as { description?: string } | undefined)?.description;
      return badInput(path, `${JSON.stringify(e.data)} must match ${String(params.pattern)}`, hint);
    }
    case 'x-kubernetes-int-or-string':
      return badInput(path, `${JSON.stringify(e.data)} must be a string or a non-negative integer`);
    default:
      return badInput(path, `${e.message ?? 'is invalid'} (got ${JSON.stringify(e.data)})`);
  }
}

function runSchema(v: ValidateFunction, data: unknown, base: string): void {
  if (!v(data)) throw schemaError(base, v.errors![0]!);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const REQUIRED_DIMS = ['arch', 'layers', 'hidden', 'heads', 'vocab', 'seqLen'] as const;

function normalizeModel(raw: unknown, path: string): ModelRef {
  if (typeof raw === 'string') {
    const name = raw.trim();
    if (name === '') throw badInput(path, 'is empty', 'a preset name or an object of dims');
    return { preset: name };
  }
  if (!isPlainObject(raw)) throw badInput(path, `must be a preset name or an object of dims (got ${JSON.stringify(raw)})`);
  runSchema(validators().model, raw, path);
  const m = raw as ModelRef;
  if (m.preset === undefined) {
    const missing = REQUIRED_DIMS.filter((k) => m[k] === undefined);
    if (missing.length) throw badInput(`${path}.${missing[0]}`, 'is required when no preset is given', `give preset, or all of ${REQUIRED_DIMS.join(', ')}`);
  }
  return m;
}

function normalizeGpus(raw: unknown, path: string): GpuRange {
  if (typeof raw === 'number') {
    if (raw === 0) throw badInput(path, 'zero GPUs: a job needs at least one device', 'a positive integer, or {min, max}');
    if (!Number.isInteger(raw) || raw < 1) throw badInput(path, `must be a positive integer (got ${raw})`, 'or {min, max}');
    return { min: raw, max: raw };
  }
  if (!isPlainObject(raw)) throw badInput(path, `must be a positive integer or {min, max} (got ${JSON.stringify(raw)})`);
  if (raw.min === 0 || raw.max === 0) throw badInput(`${path}.${raw.min === 0 ? 'min' : 'max'}`, 'zero GPUs: a job needs at least one device', 'a positive integer');
  runSchema(validators().gpus, raw, path);
  const r = raw as unknown as GpuRange;
  if (r.min > r.max) throw badInput(`${path}.min`, `${r.min} exceeds max ${r.max}`, 'min ≤ max');
  return { min: r.min, max: r.max };
}

/**
 * The batch rule (docs/jobs.md "Global batch"): a plan needs globalBatch = dp × microBatch × gradAccum with
 * gradAccum ≥ pp and dp · tp · pp = the GPU count. With nothing pinned dp = microBatch = 1 is always a candidate,
 * so any globalBatch ≥ 1 passes here (the tuner reports a batch too small for the GPUs as infeasible). Pinned
 * knobs are checked: globalBatch must be divisible by the product of the pinned dp, microBatch and gradAccum, and
 * large enough for gradAccum ≥ pp; a pinned dp, tp, pp (or their product) must divide some GPU count of the range.
 */
function checkBatchAndPins(spec: JobSpec): void {
  const pins = spec.tuner.pins;
  const num = (k: string): number | undefined => (typeof pins[k] === 'number' ? (pins[k] as number) : undefined);
  const dp = num('dp');
  const mb = num('microBatch');
  const ga = num('gradAccum');
  const pp = num('pp') ?? (Array.isArray(pins.layers) ? pins.layers.length : undefined);
  const tp = num('tp');
  const gb = spec.training.globalBatch;
  const parts: Array<[string, number]> = [];
  if (dp !== undefined) parts.push(['dp', dp]);
  if (mb !== undefined) parts.push(['microBatch', mb]);
  if (ga !== undefined) parts.push(['gradAccum', ga]);
  const prod = parts.reduce((a, [, v]) => a * v, 1);
  if (parts.length && gb % prod !== 0) {
    const expr = parts.map(([k, v]) => `${k} ${v}`).join(' × ');
    throw badInput('spec.training.globalBatch', `${gb} must be divisible by ${expr}${parts.length > 1 ? ` = ${prod}` : ''} (spec.tuner.pins)`, `valid: a multiple of ${prod}`);
  }
  if (pp !== undefined) {
    // gradAccum = globalBatch / (dp · microBatch) must be ≥ pp (1F1B); with dp or microBatch free, 1 is the best case.
    const perStep = (dp ?? 1) * (mb ?? 1);
    const g = ga ?? gb / perStep;
    if (g < pp) {
      throw badInput('spec.training.globalBatch', `${gb} is too small for ${pp} pipeline stages: gradAccum ${g} < pp ${pp}`, `valid: ≥ ${pp * perStep} (1F1B needs gradAccum ≥ pp)`);
    }
  }
  const { min, max } = spec.resources.gpus;
  const fitsSome = (d: number) => {
    for (let n = min; n <= max; n++) if (n % d === 0) return true;
    return false;
  };
  for (const [k, v] of [['dp', dp], ['tp', tp], ['pp', pp]] as const) {
    if (v !== undefined && !fitsSome(v)) throw badInput(`spec.tuner.pins.${k}`, `${v} divides no GPU count in ${min}..${max}`, 'valid: a divisor of the GPU count');
  }
  const fixed = [dp, tp, pp].filter((x): x is number => x !== undefined);
  if (fixed.length > 1) {
    const p = fixed.reduce((a, b) => a * b, 1);
    if (!fitsSome(p)) throw badInput('spec.tuner.pins', `pinned dp × tp × pp = ${p} divides no GPU count in ${min}..${max}`);
  }
}

function wrapResolverError(e: unknown, path: string): MistError {
  if (isMistError(e)) return e.message.startsWith(path) ? e : new MistError(e.code, `${path}: ${e.message}`, { cause: e });
  return badInput(path, (e as Error)?.message ?? String(e));
}

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/**
 * Validates a spec (the `spec` of a job file or custom resource) and returns it typed, with defaults applied.
 * The input is not modified. `path` prefixes every field name in errors.
 */
export function validateJobSpec(rawSpec: unknown, ctx: JobValidationContext, path = 'spec'): JobSpec {
  if (!isPlainObject(rawSpec)) throw badInput(path, `must be an object (got ${JSON.stringify(rawSpec)})`);
  const spec = clone(rawSpec);
  runSchema(validators().spec, spec, path);
  const out = spec as unknown as JobSpec;
  out.model = normalizeModel(spec.model, `${path}.model`);
  out.resources.gpus = normalizeGpus((spec.resources as Record<string, unknown>).gpus, `${path}.resources.gpus`);
  if (!ctx.gpuTypes.includes(out.resources.gpuType)) {
    throw badInput(`${path}.resources.gpuType`, `unknown GPU type ${JSON.stringify(out.resources.gpuType)}`, `valid: ${ctx.gpuTypes.join(', ')}`);
  }
  if (!ctx.runtimes.includes(out.runtime)) {
    throw badInput(`${path}.runtime`, `unknown runtime ${JSON.stringify(out.runtime)}`, `valid (admin-defined): ${ctx.runtimes.join(', ') || 'none configured'}`);
  }
  const rp = out.restartPolicy;
  if (rp.maxBackoffSeconds < rp.backoffSeconds) {
    throw badInput(`${path}.restartPolicy.maxBackoffSeconds`, `${rp.maxBackoffSeconds} is below backoffSeconds ${rp.backoffSeconds}`, 'valid: ≥ backoffSeconds');
  }
  const seen = new Map<number, number>();
  rp.exitCodeRules.forEach((r, i) => {
    for (const c of r.codes) {
      const j = seen.get(c);
      if (j !== undefined) throw badInput(`${path}.restartPolicy.exitCodeRules[${i}].codes`, `exit code ${c} is already ruled by exitCodeRules[${j}]`, 'each exit code in at most one rule');
      seen.set(c, i);
    }
  });
  if (out.training.checkpoint && out.training.checkpoint.intervalSteps > out.training.steps) {
    throw badInput(`${path}.training.checkpoint.intervalSteps`, `${out.training.checkpoint.intervalSteps} exceeds steps ${out.training.steps}: no checkpoint would be written`, `valid: 1..${out.training.steps}`);
  }
  checkBatchAndPins(out);
  if (ctx.resolveModel) {
    const m = out.model;
    const onlyPreset = m.preset !== undefined && Object.keys(m).length === 1;
    try {
      ctx.resolveModel(onlyPreset ? m.preset! : m, `${path}.model`);
    } catch (e) {
      throw wrapResolverError(e, `${path}.model`);
    }
  }
  return out;
}

/** Validates a whole job document (parsed file or REST body). Returns it typed, defaults applied; input untouched. */
export function validateJob(doc: unknown, ctx: JobValidationContext): MistJob {
  if (!isPlainObject(doc)) throw badInput('job', `must be an object (got ${doc === null ? 'null' : Array.isArray(doc) ? 'an array' : typeof doc})`, `a ${JOB_KIND} document`);
  const { spec, ...head } = doc;
  const headOnly = clone(head);
  // check apiVersion/kind/metadata first (with a placeholder spec) so their errors come before the spec's
  const v = validators().file;
  if (!v({ ...headOnly, spec: {} })) {
    const err = v.errors!.find((e) => !e.instancePath.startsWith('/spec') && !(e.keyword === 'required' && (e.params as { missingProperty?: string }).missingProperty === 'spec'));
    if (err) throw schemaError('', err);
  }
  if (spec === undefined) throw badInput('spec', 'is required');
  const typed = validateJobSpec(spec, ctx, 'spec');
  return { ...(headOnly as Omit<MistJob, 'spec'>), spec: typed };
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (isPlainObject(v)) {
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * A stable key of the spec fields a plan depends on (model, batch, sequence length, resources, tuner, workload).
 * A plan made for one key is stale for another; steps, dataset, checkpointing, restart policy, suspend, deadlines
 * and priority do not affect the plan.
 */
export function planInputsKey(spec: JobSpec): string {
  return stable({
    model: spec.model,
    globalBatch: spec.training.globalBatch,
    seqLen: spec.training.seqLen,
    resources: spec.resources,
    tuner: spec.tuner,
    workload: spec.workload,
  });
}

/** Backoff before counted restart number `n` (1-based): backoffSeconds · 2^(n−1), capped at maxBackoffSeconds. */
export function backoffSeconds(policy: RestartPolicy, n: number): number {
  if (n <= 0) return 0;
  const raw = policy.backoffSeconds * 2 ** Math.min(n - 1, 52);
  return Math.min(policy.maxBackoffSeconds, raw);
}
