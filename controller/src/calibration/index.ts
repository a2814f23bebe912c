/** Calibration from step profiles (DESIGN.md §3; docs/calibration.md). Pure. */
export {
  CALIBRATION_VERSION,
  calibratedHardware,
  fitCalibration,
  scoreCalibration,
  splitSteps,
  type Calibration,
  type CalibrationSample,
  type CalibrationScore,
  type FitOptions,
  type MeasuredSteps,
  type ParamStatus,
  type SampleScore,
} from './fit.js';
export { PARAM_NAMES, overridesFor, scaledHardware, type CalibrationParamName, type Scales } from './scales.js';
export { sampleFromProfiles, type StepProfileLike } from './profiles.js';
export { levenbergMarquardt, solveLinear, type LmOptions, type LmResult } from './solver.js';
