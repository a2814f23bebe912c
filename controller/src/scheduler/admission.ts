/**
 * The job-validation context built from the tuner (GPU catalog and model presets): domain/job.ts takes these as
 * input because domain/ may not import the tuner. PURE.
 */
import type { JobValidationContext, ModelRef } from '../domain/job.js';
import { GPU_TYPES } from '../tuner/hardware.js';
import { resolveModel } from '../tuner/model.js';

/** A validation context for the given admin-defined runtime names, with the catalog's GPU types and presets. */
export function jobValidationContext(runtimes: readonly string[]): JobValidationContext {
  return {
    runtimes,
    gpuTypes: GPU_TYPES,
    resolveModel: (model: string | ModelRef, field: string) => resolveModel(model, field),
  };
}
