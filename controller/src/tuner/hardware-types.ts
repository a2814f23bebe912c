/**
 * Hardware parameters the cost model reads. A plain object so that calibration can override any field per
 * cluster (DESIGN.md §3). Values for each GPU type live in tuner/hardware.ts with a cited source per number.
 * Units: FLOP/s, bytes, bytes/s, seconds.
 */

/** Collective bandwidth model of mist.md §3.3: t = X/k · (n−1)/n + beta, then the op factor. */
export interface LinkParams {
  /** Effective bandwidth in bytes/s. */
  bandwidth: number;
  /** Fixed latency in seconds. */
  latency: number;
}

export interface HardwareParams {
  name: string;
  /** Dense bf16/fp16 tensor-core peak, FLOP/s. */
  peakFlops: number;
  /** Device memory, bytes (the capacity the allocator sees). */
  memoryBytes: number;
  /** HBM/GDDR bandwidth, bytes/s (memory-bound kernels: norms, softmax, elementwise). */
  hbmBandwidth: number;
  /**
   * Achieved fraction of peak for a GEMM as a function of its size: eff(flops) = max / (1 + (halfFlops/flops)^shape).
   * Small GEMMs (small micro-batch, large tp) run far below peak.
   */
  gemm: { maxEfficiency: number; halfFlops: number; shape: number };
  /**
   * Collective links by group layout: key `${inter}x${intra}` with inter, intra ∈ {1,2,4,8} (sizes above 8 use 8;
   * other sizes round up). Missing entries fall back to the nearest smaller layout (fewer nodes first, staying
   * cross-node, then fewer GPUs per node); every table holds at least 1x2 and 2x1. The bandwidth is Mist's fitted
   * k (GiB/s × 2^30) and applies to the full, unsharded buffer: t = X/k · (n−1)/n + latency (tuner/comm.ts).
   */
  collective: Record<string, LinkParams>;
  /** Op factors on the collective model: all-reduce, all-gather, reduce-scatter. */
  collectiveFactor: { allReduce: number; allGather: number; reduceScatter: number };
  /** Host→device and device→host copies of pinned memory. */
  h2d: LinkParams;
  d2h: LinkParams;
  /**
   * Interference factors (mist.md §3.3), 28 numbers ≥ 1 in Mist's order: [0:4] all four streams (C, G, H, D);
   * [4:16] the 3-way sets {C,G,H}, {C,G,D}, {C,H,D}, {G,H,D}; [16:28] the 2-way sets {C,G}, {C,H}, {C,D}, {G,H}, {G,D}, {H,D}.
   * Inside a set the factors follow the stream order C, G, H, D (tuner/interference.ts).
   */
  interference: number[];
  /**
   * Fraction of `memoryBytes` the PyTorch caching allocator may use: what is left after the CUDA context and NCCL
   * buffers (0.95 for GPUs, tuner/hardware.ts; Mist uses 0.88). Fits ⇔ peak × allocator margin ≤ this × memory.
   */
  usableMemoryFraction: number;
  /** Fixed per-iteration overhead (optimizer kernel launch, data loader, Python), seconds. */
  iterationOverheadSeconds: number;
}
