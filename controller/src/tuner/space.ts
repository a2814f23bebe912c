/**
 * The search spaces of the tuner (research/mist.md §2, §8.2) as pure data: which global shapes (tp, pipeline
 * stages S with a uniform device mesh, gradient accumulation G, micro-batch b, derived dp) and which per-stage
 * knobs (ZeRO level, checkpointing, offload ratios) each space explores, and the user's pins (`--pin k=v,…`).
 *
 * Pure: no I/O, no clock, no randomness.
 */
import type { ModelSpec } from '../domain/model.js';
import { badInput } from '../../../protocol/src/errors.js';
import { isPartialRecompute } from '../domain/plan.js';

export type SpaceName = 'mist' | 'megatron-paper' | 'megatron' | 'deepspeed' | 'exhaustive';
export const SPACE_NAMES: readonly SpaceName[] = ['mist', 'megatron-paper', 'megatron', 'deepspeed', 'exhaustive'];
/** The baseline spaces reported beside every mist plan. */
export const BASELINE_SPACES: readonly SpaceName[] = ['megatron-paper', 'megatron', 'deepspeed'];

/** Mist's offload grids (mist.md §2.2): weights and grads SPARSE, optimizer states and activations DENSE. */
export const SPARSE: readonly number[] = [0, 0.25, 0.375, 0.5, 0.75, 1];
export const DENSE: readonly number[] = [0, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1];
export const TP_CANDIDATES: readonly number[] = [1, 2, 4, 8];
/** Largest G considered (Mist: 2^14). */
export const MAX_GRAD_ACCUM = 2 ** 14;

export type CkptPin = 'none' | 'selective' | 'norms' | 'pointwise' | 'full' | number;

/** Fixed knobs, keyed as in the Plan (DESIGN.md §4). */
export interface Pins {
  tp?: number;
  pp?: number;
  dp?: number;
  microBatch?: number;
  gradAccum?: number;
  zero?: 0 | 1 | 2 | 3;
  ckpt?: CkptPin;
  /** Per-stage layer counts (implies pp). */
  layers?: number[];
  offloadOptimizer?: number;
  offloadWeights?: number;
  offloadGrads?: number;
  offloadActivations?: number;
  /** Every stage splits its backward (true), or none does (false); absent: chosen per stage (the mist space). */
  splitBackward?: boolean;
}

export const PIN_KEYS = [
  'tp',
  'pp',
  'dp',
  'microBatch',
  'gradAccum',
  'zero',
  'ckpt',
  'layers',
  'offloadOptimizer',
  'offloadWeights',
  'offloadGrads',
  'offloadActivations',
  'splitBackward',
] as const;
export type PinKey = (typeof PIN_KEYS)[number];

const PIN_VALID: Record<PinKey, string> = {
  tp: 'a positive integer (1, 2, 4, 8)',
  pp: 'a positive integer',
  dp: 'a positive integer',
  microBatch: 'a positive integer (1, 2, 4, 8)',
  gradAccum: 'a positive integer (a power of two dividing the global batch)',
  zero: '0, 1, 2 or 3',
  ckpt: 'none, selective, norms, pointwise, full, or a layer count N ≥ 0',
  layers: "per-stage layer counts joined by '+', e.g. layers=12+12",
  offloadOptimizer: 'a ratio in [0, 1]',
  offloadWeights: 'a ratio in [0, 1]',
  offloadGrads: 'a ratio in [0, 1]',
  offloadActivations: 'a ratio in [0, 1]',
  splitBackward: 'true or false',
};

function pinInt(key: PinKey, raw: string, min: number): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw badInput(`--pin ${key}`, `invalid value "${raw}"`, `valid: ${PIN_VALID[key]}`);
  return n;
}

function pinRatio(key: PinKey, raw: string): number {
  const n = raw === '' ? NaN : Number(raw);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw badInput(`--pin ${key}`, `invalid value "${raw}"`, `valid: ${PIN_VALID[key]}`);
  return n;
}

/**
 * Parse pins from `k=v,k=v` text (the CLI's --pin, repeatable: pass the joined text) or an object of raw values.
 * Unknown keys and bad values are BAD_INPUT naming the pin and what is valid.
 */
export function parsePins(input: string | Record<string, unknown> | undefined): Pins {
  if (input === undefined) return {};
  const entries: Array<[string, string]> = [];
  if (typeof input === 'string') {
    for (const part of input.split(',')) {
      const t = part.trim();
      if (t === '') continue;
      const eq = t.indexOf('=');
      if (eq <= 0) throw badInput('--pin', `"${t}" is not key=value`, `valid keys: ${PIN_KEYS.join(', ')}`);
      entries.push([t.slice(0, eq).trim(), t.slice(eq + 1).trim()]);
    }
  } else {
    for (const [k, v] of Object.entries(input)) entries.push([k, Array.isArray(v) ? v.join('+') : String(v)]);
  }
  const pins: Pins = {};
  for (const [k, raw] of entries) {
    if (!(PIN_KEYS as readonly string[]).includes(k)) throw badInput(`--pin ${k}`, 'unknown pin', `valid keys: ${PIN_KEYS.join(', ')}`);
    const key = k as PinKey;
    switch (key) {
      case 'tp':
      case 'pp':
      case 'dp':
      case 'microBatch':
      case 'gradAccum':
        pins[key] = pinInt(key, raw, 1);
        break;
      case 'zero':
        if (!/^[0-3]$/.test(raw)) throw badInput('--pin zero', `invalid value "${raw}"`, `valid: ${PIN_VALID.zero}`);
        pins.zero = Number(raw) as 0 | 1 | 2 | 3;
        break;
      case 'ckpt':
        if (raw === 'none' || raw === 'full' || isPartialRecompute(raw)) pins.ckpt = raw;
        else pins.ckpt = pinInt('ckpt', raw, 0);
        break;
      case 'layers': {
        const parts = raw.split('+');
        pins.layers = parts.map((p) => pinInt('layers', p.trim(), 1));
        break;
      }
      case 'offloadOptimizer':
      case 'offloadWeights':
      case 'offloadGrads':
      case 'offloadActivations':
        pins[key] = pinRatio(key, raw);
        break;
      case 'splitBackward':
        if (raw !== 'true' && raw !== 'false') throw badInput('--pin splitBackward', `invalid value "${raw}"`, `valid: ${PIN_VALID.splitBackward}`);
        pins.splitBackward = raw === 'true';
        break;
    }
  }
  if (pins.layers && pins.pp !== undefined && pins.layers.length !== pins.pp) {
    throw badInput('--pin layers', `${pins.layers.length} stages given but pp=${pins.pp}`, 'valid: as many layer counts as pipeline stages');
  }
  if (pins.offloadWeights !== undefined && pins.offloadWeights > 0 && pins.offloadGrads === 0) {
    throw badInput('--pin offloadGrads', 'must be > 0 when offloadWeights > 0', 'valid: offloading weights requires offloading grads (Mist: wo > 0 ⇒ go > 0)');
  }
  return pins;
}

/** Pins in the `k=v,…` form (for records and messages). */
export function formatPins(p: Pins): string {
  return PIN_KEYS.filter((k) => p[k] !== undefined)
    .map((k) => `${k}=${k === 'layers' ? (p.layers ?? []).join('+') : String(p[k])}`)
    .join(',');
}

/** Checks pins against the model and cluster (BAD_INPUT naming the pin). */
export function checkPins(p: Pins, model: ModelSpec, gpus: number, gpusPerNode: number, globalBatch: number): void {
  if (p.layers) {
    const sum = p.layers.reduce((a, b) => a + b, 0);
    if (sum !== model.layers) throw badInput('--pin layers', `${p.layers.join('+')} sums to ${sum}, the model has ${model.layers} layers`, `valid: counts summing to ${model.layers}`);
  }
  if (p.tp !== undefined && (p.tp > gpusPerNode || model.heads % p.tp !== 0 || model.kvHeads % p.tp !== 0)) {
    throw badInput('--pin tp', `${p.tp} is not a TP degree for this model and node`, `valid: ≤ ${gpusPerNode} GPUs per node and dividing heads ${model.heads} and kvHeads ${model.kvHeads}`);
  }
  const pp = p.pp ?? p.layers?.length;
  if (pp !== undefined && (gpus % pp !== 0 || pp > model.layers)) throw badInput('--pin pp', `${pp} stages do not divide ${gpus} GPUs (or exceed ${model.layers} layers)`, `valid: a divisor of ${gpus}, ≤ ${model.layers}`);
  if (p.gradAccum !== undefined && globalBatch % p.gradAccum !== 0) throw badInput('--pin gradAccum', `${p.gradAccum} does not divide the global batch ${globalBatch}`, 'valid: a divisor of the global batch');
  if (typeof p.ckpt === 'number' && p.ckpt > model.layers) throw badInput('--pin ckpt', `${p.ckpt} exceeds the model's ${model.layers} layers`, `valid: 0..${model.layers}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Global shapes

export interface Mesh {
  nodes: number;
  gpusPerNode: number;
}

/** mist.md §1 uniform_mesh(S): (N/S, M) when S ≤ N and N % S = 0; (1, M/(S/N)) when S % N = 0 and M % (S/N) = 0. */
export function uniformMesh(S: number, nodes: number, gpusPerNode: number): Mesh | null {
  if ((nodes * gpusPerNode) % S !== 0) return null;
  if (S <= nodes) return nodes % S === 0 ? { nodes: nodes / S, gpusPerNode } : null;
  if (S % nodes !== 0) return null;
  const per = S / nodes;
  return gpusPerNode % per === 0 ? { nodes: 1, gpusPerNode: gpusPerNode / per } : null;
}

/** One global shape: TP degree, stages (with their mesh), micro-batches per iteration, micro-batch size, dp. */
export interface Shape {
  tp: number;
  S: number;
  G: number;
  b: number;
  dp: number;
  mesh: Mesh;
}

export interface ShapeRules {
  microBatches: readonly number[];
  /** Megatron's grid: with dp = tp = 1 only b = 1. */
  pureppMicroBatchOne?: boolean;
}

/** Powers of two dividing the global batch (a pinned G is honoured as given). */
export function gradAccumCandidates(globalBatch: number, pins: Pins): number[] {
  if (pins.gradAccum !== undefined) return globalBatch % pins.gradAccum === 0 ? [pins.gradAccum] : [];
  const out: number[] = [];
  for (let G = 1; G <= Math.min(globalBatch, MAX_GRAD_ACCUM); G *= 2) if (globalBatch % G === 0) out.push(G);
  return out;
}

/** Every (tp, S, G, b, dp, mesh) of the space that satisfies the divisibility rules and the pins. */
export function enumerateShapes(model: ModelSpec, nodes: number, gpusPerNode: number, globalBatch: number, rules: ShapeRules, pins: Pins): Shape[] {
  const gpus = nodes * gpusPerNode;
  const out: Shape[] = [];
  const ppPin = pins.pp ?? pins.layers?.length;
  for (const tp of TP_CANDIDATES) {
    if (tp > gpusPerNode || model.heads % tp !== 0 || model.kvHeads % tp !== 0 || model.ffnHidden % tp !== 0) continue;
    if (pins.tp !== undefined && pins.tp !== tp) continue;
    for (let S = 1; S <= Math.min(model.layers, gpus); S++) {
      if (ppPin !== undefined && ppPin !== S) continue;
      const mesh = uniformMesh(S, nodes, gpusPerNode);
      if (!mesh) continue;
      const stageGpus = mesh.nodes * mesh.gpusPerNode;
      if (stageGpus % tp !== 0 || tp > mesh.gpusPerNode) continue;
      const dp = stageGpus / tp;
      if (pins.dp !== undefined && pins.dp !== dp) continue;
      for (const G of gradAccumCandidates(globalBatch, pins)) {
        if (G < S) continue;
        const per = globalBatch / G;
        if (per % dp !== 0) continue;
        const b = per / dp;
        if (pins.microBatch !== undefined ? pins.microBatch !== b : !rules.microBatches.includes(b)) continue;
        if (rules.pureppMicroBatchOne && dp === 1 && tp === 1 && b !== 1) continue;
        out.push({ tp, S, G, b, dp, mesh });
      }
    }
  }
  return out;
}

/** Mist's layer-count window for a stage: [round(L/S)−Δ, round(L/S)+Δ] ∩ [1, L−S+1]; exhaustive: every count. */
export function layerChoices(L: number, S: number, G: number, wide: boolean, delta = 2): number[] {
  const hi = L - S + 1;
  if (S === 1) return [L];
  if (wide) return Array.from({ length: hi }, (_, i) => i + 1);
  const r = Math.round(L / S);
  if (G === 1) return [Math.min(Math.max(r, 1), hi)];
  const out: number[] = [];
  for (let l = Math.max(r - delta, 1); l <= Math.min(r + delta, hi); l++) out.push(l);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Per-stage knobs

export interface OffloadGrid {
  wo: readonly number[];
  go: readonly number[];
  oo: readonly number[];
  ao: readonly number[];
}

/** The per-stage knobs a space explores (before pins). */
export interface StageKnobs {
  /** ZeRO levels tried without offloading / with offloading (dp > 1; dp = 1 uses the first of these). */
  zeros: readonly (0 | 1 | 2 | 3)[];
  offloadZeros: readonly (0 | 1 | 2 | 3)[];
  /**
   * Partial recomputation of the layers that are not fully recomputed (cost-model codes: 0 none, 1 selective,
   * 2 pointwise, 3 norms), and whether it combines with a count of fully recomputed layers in the same stage.
   */
  partial: readonly number[];
  partialWithLayers: boolean;
  /** 'any': c ∈ 0..l per stage; 'full': c = l. */
  ckpt: 'any' | 'full';
  offload: OffloadGrid;
  /** Whether a stage may split its backward (Stage.splitBackward; no Megatron-LM or DeepSpeed schedule does). */
  splitBackward: boolean;
}

export const MIST_KNOBS: StageKnobs = {
  zeros: [0, 1, 2, 3],
  offloadZeros: [1, 2, 3],
  partial: [0, 1, 2, 3],
  partialWithLayers: true,
  ckpt: 'any',
  offload: { wo: SPARSE, go: SPARSE, oo: DENSE, ao: DENSE },
  splitBackward: true,
};

/** The offload grid restricted by pins. */
export function pinnedGrid(g: OffloadGrid, pins: Pins): OffloadGrid {
  return {
    wo: pins.offloadWeights !== undefined ? [pins.offloadWeights] : g.wo,
    go: pins.offloadGrads !== undefined ? [pins.offloadGrads] : g.go,
    oo: pins.offloadOptimizer !== undefined ? [pins.offloadOptimizer] : g.oo,
    ao: pins.offloadActivations !== undefined ? [pins.offloadActivations] : g.ao,
  };
}

export interface OffloadTuple {
  wo: number;
  go: number;
  oo: number;
  ao: number;
}

/** Every offload tuple of a grid with wo > 0 ⇒ go > 0; the first is the smallest (the "base"). */
export function offloadTuples(g: OffloadGrid): OffloadTuple[] {
  const out: OffloadTuple[] = [];
  for (const wo of g.wo) for (const go of g.go) {
    if (wo > 0 && go === 0) continue;
    for (const oo of g.oo) for (const ao of g.ao) out.push({ wo, go, oo, ao });
  }
  return out;
}
