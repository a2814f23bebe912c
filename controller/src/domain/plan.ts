/**
 * The Plan (DESIGN.md §4): one versioned object shared by the DB, the API, the CLI, the CRD status summary and
 * the agents' launch command. Layer ranges are inclusive [first, last]. v1 invariant: every stage has the same
 * dp, tp and microBatch (uniform mesh); the fields stay per stage so non-uniform meshes can come later.
 */
import type { ModelSpec } from './model.js';

export const PLAN_VERSION = 1;

export type CkptMode = 'none' | 'selective' | 'norms' | 'pointwise' | 'layers' | 'full';

/**
 * Partial recomputation of a layer: 'selective' the attention core; 'norms' the two norms (Megatron-LM's
 * `--recompute-modules layernorm`); 'pointwise' the norms and the activation function. 'norms' and 'pointwise'
 * recompute the attention core too without flash attention (with it the kernel keeps no scores to drop).
 */
export const PARTIAL_RECOMPUTE = ['selective', 'norms', 'pointwise'] as const;
export type PartialRecompute = (typeof PARTIAL_RECOMPUTE)[number];

export function isPartialRecompute(v: unknown): v is PartialRecompute {
  return (PARTIAL_RECOMPUTE as readonly unknown[]).includes(v);
}

export interface Ckpt {
  mode: CkptMode;
  /** For mode 'layers': how many of the stage's last layers are fully recomputed. */
  count?: number;
  /** For mode 'layers': partial recomputation of the stage's other layers (default none). */
  others?: PartialRecompute;
}

export interface Offload {
  weights: number;
  grads: number;
  optimizer: number;
  activations: number;
}

export interface Workload {
  flash: boolean;
  dropout: number;
  /** 'bf16': bf16 grads with fp32 master Adam (16 B/param); 'fp32': Megatron-style fp32 main grads (18 B/param). */
  gradDtype: 'bf16' | 'fp32';
  /**
   * Megatron sequence parallelism (Korthikanti et al. 2022 §4.2.2; `--sequence-parallel`), default false. With
   * tp > 1 the LayerNorms, dropouts and residual adds run on s/tp of the sequence (their activations, memory traffic
   * and the pipeline P2P payload shrink by tp) and every TP all-reduce becomes an all-gather before a
   * column-parallel GEMM plus a reduce-scatter after a row-parallel one (the same volume), with one more all-gather
   * in backward to re-gather the sharded GEMM input. No effect at tp = 1 (Megatron turns it off there).
   */
  sequenceParallel?: boolean;
  /**
   * Megatron-Core `--tp-comm-overlap` (Transformer Engine userbuffers), default false; requires sequenceParallel in
   * Megatron (tuner/README.md "Sequence parallelism and TP overlap"). The transformer blocks' TP collectives run
   * concurrently with the GEMMs they feed instead of exposed.
   */
  tpCommOverlap?: boolean;
}

export interface Stage {
  layers: [number, number];
  nodes: number;
  gpusPerNode: number;
  dp: number;
  tp: number;
  microBatch: number;
  zero: 0 | 1 | 2 | 3;
  ckpt: Ckpt;
  offload: Offload;
  /**
   * Split backward (default false): the stage computes its input gradients first and sends them upstream, then the
   * weight gradients of its layers that are not fully recomputed (recomputed layers compute theirs at once), so
   * the pipeline's drain does not wait for them (docs/tuner.md). Not with activation offloading.
   */
  splitBackward?: boolean;
}

export interface ClusterSlice {
  gpu: string;
  nodes: number;
  gpusPerNode: number;
}

export interface Placement {
  rank: number;
  node: string;
  device: number;
  stage: number;
  dpRank: number;
  tpRank: number;
}

export interface StagePrediction {
  stableSeconds: number;
  deltaSeconds: number;
  peakMemoryBytes: number;
}

export interface Prediction {
  fits: boolean;
  reason: string | null;
  iterationSeconds: number;
  tokensPerSecond: number;
  mfu: number;
  stages: StagePrediction[];
  [extra: string]: unknown;
}

export interface Plan {
  version: number;
  id: string;
  space: string;
  model: ModelSpec;
  cluster: ClusterSlice;
  globalBatch: number;
  seqLen: number;
  gradAccum: number;
  workload: Workload;
  stages: Stage[];
  prePost: { dp: number; tp: number; zero: 0 | 1 | 2 | 3 };
  placement?: Placement[];
  predicted?: Prediction;
  tuner?: Record<string, unknown>;
}
