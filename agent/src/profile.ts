/**
 * The rank output line format. A rank writes ordinary log lines to stdout/stderr; a line that is exactly one JSON
 * object whose "mist" field is "step" is a step profile:
 *
 *   {"mist":"step","step":3,"loss":2.1,"stepSeconds":0.2,"peakMemoryBytes":123456,"tokens":4096,
 *    "stages":[{"stage":0,"forwardSeconds":0.05,"backwardSeconds":0.1}]}
 *
 * step (integer ≥ 0), stepSeconds (≥ 0) are required; loss (number, may be absent), peakMemoryBytes and tokens
 * (integers ≥ 0, default 0), stages (default []) and stage (the rank's pipeline stage; default from the placement)
 * are optional. A line that starts with {"mist": but does not parse is kept as a log line and counted.
 */
import type { StageTime, StepProfileReport } from '../../protocol/src/types.js';

export const PROFILE_PREFIX = '{"mist":';

const nonNegInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const nonNeg = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** The profile in `line`, undefined when it is a plain log line, or 'invalid' when it claims to be one but is not. */
export function parseProfileLine(line: string, rank: number, stage: number): StepProfileReport | 'invalid' | undefined {
  if (!line.startsWith(PROFILE_PREFIX)) return undefined;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return 'invalid';
  }
  if (!o || typeof o !== 'object' || o.mist !== 'step') return 'invalid';
  if (!nonNegInt(o.step) || !nonNeg(o.stepSeconds)) return 'invalid';
  const stages: StageTime[] = [];
  if (o.stages !== undefined) {
    if (!Array.isArray(o.stages)) return 'invalid';
    for (const [i, s] of (o.stages as Array<Record<string, unknown>>).entries()) {
      if (!s || !nonNeg(s.forwardSeconds) || !nonNeg(s.backwardSeconds)) return 'invalid';
      stages.push({ stage: nonNegInt(s.stage) ? s.stage : i, forwardSeconds: s.forwardSeconds, backwardSeconds: s.backwardSeconds });
    }
  }
  const report: StepProfileReport = {
    kind: 'stepProfile',
    rank,
    stage: nonNegInt(o.stage) ? o.stage : stage,
    step: o.step,
    stepSeconds: o.stepSeconds,
    stageTimes: stages,
    peakMemoryBytes: nonNegInt(o.peakMemoryBytes) ? o.peakMemoryBytes : 0,
    tokens: nonNegInt(o.tokens) ? o.tokens : 0,
  };
  if (typeof o.loss === 'number') report.loss = o.loss;
  else if (o.loss === null) report.loss = NaN;
  return report;
}
