/**
 * The calibration parameters and how they act on HardwareParams. Every parameter is a scale on a hardware RATE
 * (or the fixed per-iteration overhead), never a fudge on one plan's total, so what is learnt on one model
 * transfers to another model on the same hardware (docs/calibration.md).
 *
 * - compute      GEMM throughput: gemm.maxEfficiency × compute (time of the FLOP-proportional part ÷ compute).
 *                When the efficiency would exceed 1 (validateHardware's cap), the excess moves into peakFlops
 *                (the predicted time is the same; the reported MFU, relative to peakFlops, drops accordingly).
 * - layerFixed   the fixed per-kernel time of every GEMM in a layer, t0 = halfFlops / (peak · maxEfficiency)
 *                (hardware.ts: halfFlops = peak · max · t0), × layerFixed. With the catalog's shape 1 a GEMM of F
 *                FLOPs takes F/(peak·max) + t0, so this is the per-layer time that does not grow with the model.
 * - collective   speed of every collective and P2P link: each table entry's bandwidth × collective and latency
 *                ÷ collective (collective time ÷ collective).
 * - offload      speed of the PCIe host links: h2d and d2h bandwidth × offload, latency ÷ offload.
 * - overheadSeconds  iterationOverheadSeconds itself (seconds, ≥ 0).
 */
import { withOverrides, type HardwareOverrides } from '../tuner/hardware.js';
import type { HardwareParams, LinkParams } from '../tuner/hardware-types.js';

export const PARAM_NAMES = ['compute', 'layerFixed', 'collective', 'offload', 'overheadSeconds'] as const;
export type CalibrationParamName = (typeof PARAM_NAMES)[number];

/** Values of the five parameters; the defaults are 1, 1, 1, 1 and the base's overhead. */
export type Scales = Record<CalibrationParamName, number>;

export function defaultScales(base: HardwareParams): Scales {
  return { compute: 1, layerFixed: 1, collective: 1, offload: 1, overheadSeconds: base.iterationOverheadSeconds };
}

function scaleLink(l: LinkParams, s: number): LinkParams {
  return { bandwidth: l.bandwidth * s, latency: l.latency / s };
}

/**
 * The overrides (absolute values, what `hardwareFor(name, overrides)` accepts) that turn `base` into the scaled
 * hardware. Only the groups named in `which` are emitted; the rest stay at the base values.
 */
export function overridesFor(base: HardwareParams, s: Scales, which: readonly CalibrationParamName[]): HardwareOverrides {
  const out: HardwareOverrides = {};
  if (which.includes('compute') || which.includes('layerFixed')) {
    const t0 = base.gemm.halfFlops / (base.peakFlops * base.gemm.maxEfficiency);
    let eff = base.gemm.maxEfficiency * s.compute;
    let peak = base.peakFlops;
    if (eff > 1) {
      peak = base.peakFlops * eff;
      eff = 1;
    }
    out.gemm = { maxEfficiency: eff, halfFlops: peak * eff * t0 * s.layerFixed };
    if (peak !== base.peakFlops) out.peakFlops = peak;
  }
  if (which.includes('collective')) {
    const table: Record<string, LinkParams> = {};
    for (const key of Object.keys(base.collective).sort()) table[key] = scaleLink(base.collective[key]!, s.collective);
    out.collective = table;
  }
  if (which.includes('offload')) {
    out.h2d = scaleLink(base.h2d, s.offload);
    out.d2h = scaleLink(base.d2h, s.offload);
  }
  if (which.includes('overheadSeconds')) out.iterationOverheadSeconds = s.overheadSeconds;
  return out;
}

/** A fresh copy of `base` with `overrides` deep-merged in and the result validated (tuner's withOverrides). */
export function applyOverrides(base: HardwareParams, overrides: HardwareOverrides | undefined): HardwareParams {
  return withOverrides(base, overrides, 'calibration.params');
}

/** `base` with every parameter applied (all groups). */
export function scaledHardware(base: HardwareParams, s: Scales): HardwareParams {
  return applyOverrides(base, overridesFor(base, s, PARAM_NAMES));
}
