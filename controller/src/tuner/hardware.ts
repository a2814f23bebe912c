/**
 * The hardware catalog (DESIGN.md §3): one HardwareParams object per supported device type, every default
 * with its source. Calibration overrides any field per cluster through `hardwareFor(name, overrides)`.
 *
 * Units: FLOP/s, bytes, bytes/s, seconds. Mist's fitted tables are in GiB and GiB/s: its analyzer divides
 * MB (2^20 bytes) by 1024 before calling the bandwidth model (Dazz993/Mist batched_module_analyzer.py,
 * `gbytes=mbytes / 1024`), so a fitted k of 210.306 is 210.306 · 2^30 bytes/s here.
 *
 * Sources cited below:
 * - [mist-l4]   Dazz993/Mist benchmark/mist/configs/experiment/template-l4.yaml (fitted on GCP 8×L4, PCIe).
 * - [mist-a100] Dazz993/Mist benchmark/mist/configs/experiment/template-a100-sxm4-40gb.yaml (fitted on 8×A100-SXM4).
 * - [mist-readme] Dazz993/Mist README.md (smoke test, GPU clocks).
 * - [val§8]     research/validation.md §8 (datasheet constants: dense bf16 peak, HBM, NVLink, PCIe, IB).
 * - [smi]       the total that `nvidia-smi` prints for the device (the capacity the allocator sees).
 */
import { badInput } from '../../../protocol/src/errors.js';
import type { HardwareParams, LinkParams } from './hardware-types.js';

export type { HardwareParams, LinkParams } from './hardware-types.js';

/** Bytes in a GiB; Mist's "GB" is this. */
export const GIB = 2 ** 30;
const MIB = 2 ** 20;

/** A link from Mist-style numbers: bandwidth in GiB/s, latency in seconds. */
function link(gibPerSecond: number, latency: number): LinkParams {
  return { bandwidth: gibPerSecond * GIB, latency };
}

/** The group layouts the collective table may hold: `${inter}x${intra}` with both in {1,2,4,8}, not 1x1. */
export const LAYOUT_SIZES = [1, 2, 4, 8] as const;

export function collectiveKey(inter: number, intra: number): string {
  return `${inter}x${intra}`;
}

// ---------------------------------------------------------------------------------------------------------
// Collective tables
// ---------------------------------------------------------------------------------------------------------

/**
 * [mist-l4] gpu_gpu_comm_params, pairs (k GiB/s, β s) at flat index inter_idx·4 + intra_idx. The inter = 8 row
 * was never fitted (the template keeps Mist's placeholder 4.5, 0); it is left out here so lookups fall back to
 * the fitted inter = 4 row, which is closer to reality than the placeholder.
 */
const L4_COLLECTIVE: Record<string, LinkParams> = {
  '1x2': link(2.964, 0.0001), // [mist-l4]
  '1x4': link(4.1635, 0.0004), // [mist-l4]
  '1x8': link(4.6832, 0.0003), // [mist-l4]
  '2x1': link(0.4895, 0.0045), // [mist-l4]
  '2x2': link(0.9791, 0.0076), // [mist-l4]
  '2x4': link(1.7183, 0.0), // [mist-l4]
  '2x8': link(3.3215, 0.0013), // [mist-l4]
  '4x1': link(0.4609, 0.0102), // [mist-l4]
  '4x2': link(0.9195, 0.0008), // [mist-l4]
  '4x4': link(1.6759, 0.0045), // [mist-l4]
  '4x8': link(2.9659, 0.003), // [mist-l4]
};

/**
 * [mist-a100] gpu_gpu_comm_params. Intra-node entries are NVLink3; inter-node entries reflect the network of
 * the cluster Mist fitted on (≈1.3 GiB/s per GPU, ≈10.7 GiB/s per 8-GPU node, i.e. about 100 Gb/s per node),
 * far below a DGX A100 with 8×HDR: calibrate the inter rows on InfiniBand clusters. The inter = 8 row was not
 * fitted and falls back to inter = 4.
 */
const A100_COLLECTIVE: Record<string, LinkParams> = {
  '1x2': link(139.0363, 0.0001), // [mist-a100]
  '1x4': link(192.6217, 0.0004), // [mist-a100]
  '1x8': link(210.306, 0.0004), // [mist-a100]
  '2x1': link(1.2972, 0.0015), // [mist-a100]
  '2x2': link(2.6049, 0.0015), // [mist-a100]
  '2x4': link(5.4178, 0.0014), // [mist-a100]
  '2x8': link(10.7032, 0.001), // [mist-a100]
  '4x1': link(1.2526, 0.002), // [mist-a100]
  '4x2': link(2.4864, 0.0021), // [mist-a100]
  '4x4': link(5.2995, 0.0022), // [mist-a100]
  '4x8': link(10.6044, 0.0019), // [mist-a100]
};

/**
 * H100/H200 SXM (HGX, NVLink4 900 GB/s per GPU, one 400 Gb/s NDR NIC per GPU [val§8]). No Mist fit exists.
 * - Intra-node bandwidth: the [mist-a100] NVLink3 fit × 1.5 (NVLink4 900 GB/s vs NVLink3 600 GB/s [val§8]):
 *   the same achieved fraction of the link per group size (e.g. 8 GPUs: 210.3 of 279 GiB/s one-way = 75%).
 * - Inter-node bandwidth: assumption: each GPU drives its own 400 Gb/s NIC = 46.6 GiB/s; NCCL rings reach ≈80%
 *   of it (37 GiB/s for one GPU per node), and groups with g GPUs per node use g rails. Full nodes (8 rails) are
 *   capped below NVLink at ≈0.7 × 8 × 46.6 = 260 GiB/s. Slightly lower for more nodes (longer rings).
 * - Latencies: assumption, NCCL's small-message latency (≈15–25 µs inside an NVLink node, ≈50–100 µs across
 *   IB nodes). Not Mist's A100 β (0.1–0.4 ms intra): those are intercepts of a least-squares fit over
 *   64–512 MB messages, and with TP's many mid-size all-reduces per layer they would dominate an H100 step
 *   (32B at TP 8: 4 all-reduces × 48 layers × 4 micro-batches × 2.1 × 0.4 ms ≈ 0.65 s of a 0.89 s iteration).
 */
const HOPPER_COLLECTIVE: Record<string, LinkParams> = {
  '1x2': link(208.5545, 0.000015), // [mist-a100] 139.0363 × 1.5
  '1x4': link(288.9326, 0.00002), // [mist-a100] 192.6217 × 1.5
  '1x8': link(315.459, 0.000025), // [mist-a100] 210.306 × 1.5
  '2x1': link(37, 0.00005), // assumption above: 1 rail × 46.6 GiB/s × 0.8
  '2x2': link(74, 0.00005), // assumption above: 2 rails
  '2x4': link(148, 0.00005), // assumption above: 4 rails
  '2x8': link(260, 0.00005), // assumption above: 8 rails, ≈0.7 of 373 GiB/s per node
  '4x1': link(36, 0.00007), // assumption above
  '4x2': link(72, 0.00007), // assumption above
  '4x4': link(144, 0.00007), // assumption above
  '4x8': link(250, 0.00007), // assumption above
  '8x1': link(35, 0.0001), // assumption above
  '8x2': link(70, 0.0001), // assumption above
  '8x4': link(140, 0.0001), // assumption above
  '8x8': link(240, 0.0001), // assumption above
};

/**
 * CPU ranks talking gloo. Assumption: loopback TCP between ranks on one host sustains ≈1 GiB/s of ring
 * bandwidth with ≈0.1–0.4 ms per collective (several TCP round trips); between hosts, a 10 GbE link
 * (1.16 GiB/s) at ≈80%. Tiny CPU runs only need the right order of magnitude; calibration refines it.
 */
const CPU_COLLECTIVE: Record<string, LinkParams> = {
  '1x2': link(1.0, 0.0001), // assumption above (loopback)
  '1x4': link(1.0, 0.0002), // assumption above (loopback)
  '1x8': link(0.8, 0.0004), // assumption above (loopback, 8 ranks share the host's cores)
  '2x1': link(0.9, 0.0005), // assumption above (10 GbE)
  '2x2': link(0.9, 0.0005), // assumption above
  '2x4': link(0.9, 0.0005), // assumption above
  '2x8': link(0.9, 0.0005), // assumption above
  '4x1': link(0.85, 0.001), // assumption above
  '4x2': link(0.85, 0.001), // assumption above
  '4x4': link(0.85, 0.001), // assumption above
  '4x8': link(0.85, 0.001), // assumption above
  '8x1': link(0.8, 0.002), // assumption above
  '8x2': link(0.8, 0.002), // assumption above
  '8x4': link(0.8, 0.002), // assumption above
  '8x8': link(0.8, 0.002), // assumption above
};

/** Mist's op factors on the collective model (Dazz993/Mist mist/tools/optimize.py::predict_gpu_gpu_comm_latency). */
const MIST_OP_FACTORS = { allReduce: 2.1, allGather: 1.0, reduceScatter: 1.1 };

// ---------------------------------------------------------------------------------------------------------
// Interference factors (28, Mist's order; see hardware-types.ts)
// ---------------------------------------------------------------------------------------------------------

/** [mist-l4] interference_model_params, verbatim. Not superset-monotone (see interference.ts). */
const L4_INTERFERENCE = [
  18.9356, 1.2639, 50.0, 1.6046, // {C,G,H,D}
  2.0865, 1.0009, 2.393, // {C,G,H}
  2.4146, 1.0869, 2.6637, // {C,G,D}
  1.9381, 3.2653, 1.0, // {C,H,D}
  1.234, 50.0, 1.6883, // {G,H,D}
  1.1676, 1.0, // {C,G}
  1.0152, 1.0005, // {C,H}
  1.0179, 1.0022, // {C,D}
  1.0, 2.1383, // {G,H}
  1.078, 2.438, // {G,D}
  2.4327, 1.0974, // {H,D}
];

/** [mist-a100] interference_model_params, verbatim. Not superset-monotone (see interference.ts). */
const A100_INTERFERENCE = [
  1.307, 2.6325, 2.4097, 2.5898, // {C,G,H,D}
  1.2264, 2.8078, 1.466, // {C,G,H}
  1.3202, 2.2295, 1.932, // {C,G,D}
  1.0309, 1.9929, 1.0438, // {C,H,D}
  5.4986, 1.2915, 1.7303, // {G,H,D}
  1.2856, 1.0393, // {C,G}
  1.0081, 1.0099, // {C,H}
  1.0125, 1.0251, // {C,D}
  1.5508, 1.0972, // {G,H}
  1.1336, 1.2723, // {G,D}
  1.5186, 1.2665, // {H,D}
];

/**
 * H100/H200: no Mist fit exists. The 2-way factors are [mist-a100]'s (same SXM board class: NVLink for GPU↔GPU,
 * PCIe switches for copies); the 3- and 4-way factors are built additively from them,
 * f_i(S) = 1 + Σ_{j∈S, j≠i} (f_i({i,j}) − 1) (interference.ts `additiveInterference`). Assumption, chosen
 * because it is superset-monotone (adding a stream never speeds another up), which makes the overlap time
 * monotone in each input, and because Mist's own 3/4-way fits vary wildly between GPUs (50× on L4).
 */
const HOPPER_INTERFERENCE = [
  1.3062, 1.7237, 1.6257, 1.5639, // {C,G,H,D}
  1.2937, 1.5901, 1.1071, // {C,G,H}
  1.2981, 1.1729, 1.2974, // {C,G,D}
  1.0206, 1.5285, 1.2916, // {C,H,D}
  1.6844, 1.6158, 1.5388, // {G,H,D}
  1.2856, 1.0393, // {C,G}   [mist-a100]
  1.0081, 1.0099, // {C,H}   [mist-a100]
  1.0125, 1.0251, // {C,D}   [mist-a100]
  1.5508, 1.0972, // {G,H}   [mist-a100]
  1.1336, 1.2723, // {G,D}   [mist-a100]
  1.5186, 1.2665, // {H,D}   [mist-a100]
];

/**
 * CPU: assumption. gloo and the compute kernels share the same cores (1.5× each way); host copies are memcpy
 * on the same memory bus (1.1× against compute or gloo, 1.2× between the two copy directions). 3/4-way sets are
 * additive as for Hopper.
 */
const CPU_INTERFERENCE = [
  1.7, 1.7, 1.4, 1.4, // {C,G,H,D}
  1.6, 1.6, 1.2, // {C,G,H}
  1.6, 1.6, 1.2, // {C,G,D}
  1.2, 1.3, 1.3, // {C,H,D}
  1.2, 1.3, 1.3, // {G,H,D}
  1.5, 1.5, // {C,G}
  1.1, 1.1, // {C,H}
  1.1, 1.1, // {C,D}
  1.1, 1.1, // {G,H}
  1.1, 1.1, // {G,D}
  1.2, 1.2, // {H,D}
];

// ---------------------------------------------------------------------------------------------------------
// The catalog
// ---------------------------------------------------------------------------------------------------------

/**
 * GEMM efficiency curve: eff(F) = max / (1 + halfFlops/F) (shape 1) is exactly "F at max·peak plus a fixed
 * per-kernel cost t0" with halfFlops = peak · max · t0. Assumption for every GPU: t0 = 5 µs (launch plus
 * wave-quantisation tail of a mid-size cuBLAS GEMM), so small GEMMs (small micro-batch, large tp) fall off
 * at the size where they run for about 5 µs.
 */
const KERNEL_FIXED_SECONDS = 5e-6;

function gemmCurve(peakFlops: number, maxEfficiency: number, fixedSeconds = KERNEL_FIXED_SECONDS): HardwareParams['gemm'] {
  return { maxEfficiency, halfFlops: peakFlops * maxEfficiency * fixedSeconds, shape: 1 };
}

const A100_PEAK = 312e12; // [val§8] A100 SXM4 dense BF16/FP16 tensor, 312 TFLOP/s (624 with sparsity)
const HOPPER_PEAK = 989.4e12; // [val§8] H100/H200 SXM dense BF16, 989.4 TFLOP/s (1,979 with sparsity)
const L4_PEAK = 121e12; // [val§8] L4 dense FP16/BF16 tensor, 121 TFLOP/s (datasheet 242 with sparsity ÷ 2)
const CPU_PEAK = 1e11; // assumption: one CPU rank ≈ 2 AVX2 cores × 3 GHz × 16 fp32 FLOP/cycle ≈ 100 GFLOP/s

/**
 * Usable fraction of a GPU's memory ([smi] total) for the tensors the cost model counts. The stage peak
 * (cost.ts) models the caching allocator's ALLOCATED bytes — validated against Mist's measured allocated peaks
 * (research/mist.md §9.1: GPT-7B flash 20,341/19,592/18,936/20,385 MB predicted vs 20,534/19,767/18,582/20,216
 * measured) — and `required = peak × margin` adds the allocator's fragmentation and churn (Mist's empirical
 * factors, cost.ts). What this fraction must leave out is only memory outside the PyTorch allocator:
 *  - the CUDA context with its loaded kernel modules (PyTorch, cuBLAS, cuDNN/flash, NCCL): assumption ≈ 0.5–0.8
 *    GiB (varies with the CUDA version and lazy module loading); torch.cuda.memory_reserved counts only what the
 *    caching allocator manages, so the context shows in nvidia-smi but not in the allocator's numbers;
 *  - NCCL communicator buffers: NCCL_BUFFSIZE 4 MiB per channel and peer (NCCL environment-variable docs), a few
 *    hundred MiB over the TP, DP and PP communicators; Transformer Engine userbuffers under --tp-comm-overlap.
 * 5% is 1.12 GiB on the 22.5 GiB L4 (covers 0.8 + 0.3 GiB) and 4 GiB on an 80 GB H100 (generous).
 * Why not Mist's 0.88 (mist.md §3.7): it contradicts Mist's own measurements — the GPT-7B flash plan ran with a
 * measured allocated peak of 20,534 MB, above 0.88 × 23,028 MiB = 20,264 MiB, and the README smoke run reserved
 * 21,096 MiB (allocated + fragmentation) on a 23,034 MiB L4, i.e. ≥ 91.6% of the card went to the allocator.
 * With 0.95 and Mist's margins every measured Mist L4 plan, the smoke Megatron-best run and the Megatron-Core H100
 * rows (with their published sequence parallelism) fit; tests keep clearly impossible plans infeasible.
 */
const GPU_USABLE_MEMORY_FRACTION = 0.95;

function build(): Record<GpuType, HardwareParams> {
  return {
    'a100-40gb': {
      name: 'a100-40gb',
      peakFlops: A100_PEAK,
      memoryBytes: 40960 * MIB, // [smi] 40960 MiB; [mist-a100] memory_capacity 40.00 GiB
      hbmBandwidth: 1555e9, // [val§8] 1,555 GB/s HBM2
      // assumption: large bf16 cuBLAS GEMMs on A100 sustain ≈85% of 312 TFLOP/s
      gemm: gemmCurve(A100_PEAK, 0.85),
      collective: A100_COLLECTIVE,
      collectiveFactor: MIST_OP_FACTORS,
      h2d: link(5.3645, 0.0003), // [mist-a100] cpu_gpu_comm_params (8 GPUs copying at once)
      d2h: link(5.8471, 0.0002), // [mist-a100] gpu_cpu_comm_params
      interference: A100_INTERFERENCE,
      usableMemoryFraction: GPU_USABLE_MEMORY_FRACTION, // CUDA context + NCCL buffers outside the allocator (see above)
      // assumption: optimizer launch, loss/grad-norm reductions and Python per step on a DGX-class host; no fit
      iterationOverheadSeconds: 0.05,
    },
    'a100-80gb': {
      name: 'a100-80gb',
      peakFlops: A100_PEAK,
      memoryBytes: 81920 * MIB, // [smi] 81920 MiB
      hbmBandwidth: 2039e9, // [val§8] 2,039 GB/s HBM2e
      gemm: gemmCurve(A100_PEAK, 0.85), // as a100-40gb (same GA100 die and clocks)
      collective: A100_COLLECTIVE, // [mist-a100]: same NVLink3 board; network assumed like Mist's cluster
      collectiveFactor: MIST_OP_FACTORS,
      h2d: link(5.3645, 0.0003), // [mist-a100] (same PCIe Gen4 host link)
      d2h: link(5.8471, 0.0002), // [mist-a100]
      interference: A100_INTERFERENCE, // [mist-a100]
      usableMemoryFraction: GPU_USABLE_MEMORY_FRACTION, // see above
      iterationOverheadSeconds: 0.05, // assumption as a100-40gb
    },
    'h100-80gb': {
      name: 'h100-80gb',
      peakFlops: HOPPER_PEAK,
      memoryBytes: 81559 * MIB, // [smi] 81559 MiB (80 GB HBM3)
      hbmBandwidth: 3350e9, // [val§8] 3,350 GB/s HBM3
      // assumption: large bf16 GEMMs on H100 SXM sustain ≈75% of 989 TFLOP/s (power-limited clocks);
      // consistent with Megatron-Core's 41–49% end-to-end MFU on H100 (research/validation.md §1.5)
      gemm: gemmCurve(HOPPER_PEAK, 0.75),
      collective: HOPPER_COLLECTIVE,
      collectiveFactor: MIST_OP_FACTORS,
      // assumption: PCIe Gen5 doubles Gen4's per-lane rate [val§8]; Mist's A100 fit (all 8 GPUs copying at
      // once through shared switches) × 2
      h2d: link(10.729, 0.0003),
      d2h: link(11.6942, 0.0002),
      interference: HOPPER_INTERFERENCE,
      usableMemoryFraction: GPU_USABLE_MEMORY_FRACTION, // see above
      // assumption: Megatron-Core's fixed per-step cost (sharded optimizer launch, loss and grad-norm
      // all-reduces) is tens of ms; the 0.45 s iterations of validation.md §1.5 leave no room for more
      iterationOverheadSeconds: 0.02,
    },
    'h200-141gb': {
      name: 'h200-141gb',
      peakFlops: HOPPER_PEAK, // [val§8] same GH100 die and clocks as H100 SXM: 989 TFLOP/s dense BF16
      memoryBytes: 143771 * MIB, // [smi] 143771 MiB (141 GB HBM3e)
      hbmBandwidth: 4.8e12, // [val§8] 4.8 TB/s HBM3e
      gemm: gemmCurve(HOPPER_PEAK, 0.75), // as h100-80gb (same die, same 700 W limit)
      collective: HOPPER_COLLECTIVE, // [val§8] same NVLink4 900 GB/s; 400G IB per GPU (MLCommons HGX H200)
      collectiveFactor: MIST_OP_FACTORS,
      h2d: link(10.729, 0.0003), // as h100-80gb (PCIe Gen5 x16 [val§8])
      d2h: link(11.6942, 0.0002), // as h100-80gb
      interference: HOPPER_INTERFERENCE,
      usableMemoryFraction: GPU_USABLE_MEMORY_FRACTION, // see above
      iterationOverheadSeconds: 0.02, // assumption as h100-80gb
    },
    'l4-24gb': {
      name: 'l4-24gb',
      peakFlops: L4_PEAK,
      memoryBytes: 22.488 * GIB, // [mist-l4] memory_capacity 22.488 GiB ([smi] prints 23034 MiB)
      hbmBandwidth: 300e9, // [val§8] 300 GB/s GDDR6
      // [mist-readme] fixes L4 clocks with `nvidia-smi -ac 6251,1050`: 1050 of 2040 MHz boost leaves ≤51.5% of
      // the datasheet peak; assumption: cuBLAS reaches ≈85% of that, so ≈0.45 of 121 TFLOP/s. Reported MFU stays
      // relative to the datasheet peak.
      gemm: gemmCurve(L4_PEAK, 0.45),
      collective: L4_COLLECTIVE,
      collectiveFactor: MIST_OP_FACTORS,
      h2d: link(5.7546, 0.0004), // [mist-l4] cpu_gpu_comm_params
      d2h: link(6.1252, 0.0004), // [mist-l4] gpu_cpu_comm_params
      interference: L4_INTERFERENCE,
      usableMemoryFraction: GPU_USABLE_MEMORY_FRACTION, // see above
      // [mist-readme] smoke test, executed − predicted on 2×L4 GPT-1.3B: 11.329 − 10.659 = 0.670 s and
      // 9.9345 − 9.2689 = 0.666 s ("constant overheads, like optimizer step time, are omitted")
      iterationOverheadSeconds: 0.67,
    },
    cpu: {
      name: 'cpu',
      peakFlops: CPU_PEAK,
      memoryBytes: 8 * GIB, // assumption: 8 GiB of host RAM per CPU rank (agents run `--cpu-devices N`)
      hbmBandwidth: 10e9, // assumption: a rank's share of a DDR4/DDR5 memory bus
      // assumption: fp32 matmuls reach ≈50% of peak; ≈20 µs of fixed ATen/Python cost per op
      gemm: gemmCurve(CPU_PEAK, 0.5, 2e-5),
      collective: CPU_COLLECTIVE,
      collectiveFactor: MIST_OP_FACTORS, // Mist's ring-algorithm ratios; gloo's ring all-reduce has the same 2:1:1 shape
      h2d: link(5, 0.00001), // assumption: "offload" on a CPU device is a memcpy within host RAM
      d2h: link(5, 0.00001), // assumption: as h2d
      interference: CPU_INTERFERENCE,
      // assumption: leave 20% of the rank's RAM to the interpreter, gloo buffers and the OS
      usableMemoryFraction: 0.8,
      iterationOverheadSeconds: 0.05, // assumption: Python step overhead of the reference runtime
    },
  };
}

export type GpuType = 'a100-40gb' | 'a100-80gb' | 'h100-80gb' | 'h200-141gb' | 'l4-24gb' | 'cpu';

/** Supported device types, in catalog order. */
export const GPU_TYPES: readonly GpuType[] = Object.freeze(['a100-40gb', 'a100-80gb', 'h100-80gb', 'h200-141gb', 'l4-24gb', 'cpu'] as GpuType[]);

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

/** The defaults, deep-frozen. Use `hardwareFor` to get a mutable copy with overrides. */
export const CATALOG: Readonly<Record<GpuType, Readonly<HardwareParams>>> = deepFreeze(build());

/** A partial HardwareParams: any field at any depth; arrays (interference) are replaced whole. */
export type HardwareOverrides = {
  [K in keyof HardwareParams]?: HardwareParams[K] extends number[]
    ? number[]
    : HardwareParams[K] extends Record<string, LinkParams>
      ? Record<string, Partial<LinkParams>>
      : HardwareParams[K] extends object
        ? Partial<HardwareParams[K]>
        : HardwareParams[K];
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function clone<T>(v: T): T {
  if (Array.isArray(v)) return v.map(clone) as T;
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = clone(x);
    return out as T;
  }
  return v;
}

const LAYOUT_KEY = /^[1248]x[1248]$/;

/**
 * Merges `patch` into `base` (a fresh clone), refusing fields the base does not have: objects merge, arrays and
 * numbers replace. `root` names the whole object in error messages; `<root>.collective` may gain new layouts.
 */
function merge(base: Record<string, unknown>, patch: Record<string, unknown>, path: string, root: string): void {
  for (const [key, value] of Object.entries(patch)) {
    const field = `${path}.${key}`;
    if (value === undefined) continue;
    const isLayout = path === `${root}.collective`;
    if (!(key in base)) {
      if (isLayout && LAYOUT_KEY.test(key) && key !== '1x1') {
        base[key] = { bandwidth: NaN, latency: 0 };
      } else {
        const valid = isLayout ? 'valid: layouts "<inter>x<intra>" with inter, intra in 1, 2, 4, 8 (not 1x1)' : `valid: ${Object.keys(base).join(', ')}`;
        throw badInput(field, 'unknown field', valid);
      }
    }
    const current = base[key];
    if (isPlainObject(current)) {
      if (!isPlainObject(value)) throw badInput(field, `expected an object, got ${JSON.stringify(value)}`);
      merge(current, value, field, root);
    } else if (Array.isArray(current)) {
      if (!Array.isArray(value)) throw badInput(field, `expected an array, got ${JSON.stringify(value)}`);
      base[key] = [...value];
    } else {
      if (typeof value !== typeof current) throw badInput(field, `expected a ${typeof current}, got ${JSON.stringify(value)}`);
      base[key] = value;
    }
  }
}

function positive(field: string, v: number): void {
  if (!(Number.isFinite(v) && v > 0)) throw badInput(field, `must be a finite number > 0, got ${v}`);
}

function nonNegative(field: string, v: number): void {
  if (!(Number.isFinite(v) && v >= 0)) throw badInput(field, `must be a finite number ≥ 0, got ${v}`);
}

/**
 * Checks a HardwareParams object (after calibration overrides): positive finite rates and sizes, a usable
 * collective table (at least the 1x2 and 2x1 layouts, so every layout resolves), 28 interference factors ≥ 1.
 * Throws BAD_INPUT naming the field.
 */
export function validateHardware(hw: HardwareParams): void {
  if (typeof hw.name !== 'string' || hw.name === '') throw badInput('hardware.name', 'must be a non-empty string');
  positive('hardware.peakFlops', hw.peakFlops);
  positive('hardware.memoryBytes', hw.memoryBytes);
  positive('hardware.hbmBandwidth', hw.hbmBandwidth);
  const g = hw.gemm;
  if (!(g.maxEfficiency > 0 && g.maxEfficiency <= 1)) throw badInput('hardware.gemm.maxEfficiency', `must be in (0, 1], got ${g.maxEfficiency}`);
  nonNegative('hardware.gemm.halfFlops', g.halfFlops);
  positive('hardware.gemm.shape', g.shape);
  for (const [key, l] of Object.entries(hw.collective)) {
    if (!LAYOUT_KEY.test(key) || key === '1x1') throw badInput(`hardware.collective.${key}`, 'unknown layout', 'valid: "<inter>x<intra>" with inter, intra in 1, 2, 4, 8 (not 1x1)');
    positive(`hardware.collective.${key}.bandwidth`, l.bandwidth);
    nonNegative(`hardware.collective.${key}.latency`, l.latency);
  }
  for (const key of ['1x2', '2x1']) {
    if (!(key in hw.collective)) throw badInput(`hardware.collective.${key}`, 'missing', 'every table needs at least 1x2 (intra-node) and 2x1 (inter-node)');
  }
  for (const op of ['allReduce', 'allGather', 'reduceScatter'] as const) positive(`hardware.collectiveFactor.${op}`, hw.collectiveFactor[op]);
  positive('hardware.h2d.bandwidth', hw.h2d.bandwidth);
  nonNegative('hardware.h2d.latency', hw.h2d.latency);
  positive('hardware.d2h.bandwidth', hw.d2h.bandwidth);
  nonNegative('hardware.d2h.latency', hw.d2h.latency);
  if (!Array.isArray(hw.interference) || hw.interference.length !== 28) {
    throw badInput('hardware.interference', `must hold 28 factors, got ${Array.isArray(hw.interference) ? hw.interference.length : typeof hw.interference}`);
  }
  hw.interference.forEach((f, i) => {
    if (!(Number.isFinite(f) && f >= 1)) throw badInput(`hardware.interference[${i}]`, `must be a finite factor ≥ 1, got ${f}`);
  });
  if (!(hw.usableMemoryFraction > 0 && hw.usableMemoryFraction <= 1)) {
    throw badInput('hardware.usableMemoryFraction', `must be in (0, 1], got ${hw.usableMemoryFraction}`);
  }
  nonNegative('hardware.iterationOverheadSeconds', hw.iterationOverheadSeconds);
}

/**
 * The parameters of a device type, deep-merged with `overrides` (how calibration overrides per cluster:
 * `{ collective: { '2x8': { bandwidth: 3e11 } }, interference: [...28] }`). Returns a fresh object the
 * caller may keep; the result is validated. Unknown type → BAD_INPUT on field "gpu".
 */
export function hardwareFor(name: string, overrides?: HardwareOverrides): HardwareParams {
  if (!Object.prototype.hasOwnProperty.call(CATALOG, name)) {
    throw badInput('gpu', `unknown GPU type "${name}"`, `valid: ${GPU_TYPES.join(', ')}`);
  }
  return withOverrides(CATALOG[name as GpuType], overrides, 'hardware');
}

/**
 * A fresh copy of `base` with `overrides` deep-merged in (objects merge, arrays and numbers replace; unknown fields
 * refused) and the result validated. hardwareFor applies it to a catalog entry; calibration to any base.
 * `root` names the object in error messages (e.g. `calibration.params.gemm.maxEfficiency: …`).
 */
export function withOverrides(base: HardwareParams, overrides: HardwareOverrides | undefined, root = 'hardware'): HardwareParams {
  const hw = clone(base) as HardwareParams;
  if (overrides !== undefined) {
    if (!isPlainObject(overrides)) throw badInput(root, 'overrides must be an object');
    merge(hw as unknown as Record<string, unknown>, overrides as Record<string, unknown>, root, root);
  }
  validateHardware(hw);
  return hw;
}
