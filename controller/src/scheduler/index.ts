/** The scheduler (PURE): queue order, one scheduling pass, gang placement. docs/jobs.md. */
export { compareEntries, orderQueue, schedulePass, type QueueEntry, type ScheduleOutcome } from './queue.js';
export { canonicalSlice, describeRequest, eligibleNodes, fitGpus, freeMap, nodeSize, placePlan, rankOf, worldSize, type FreeMap, type PlaceResult } from './placement.js';
export { jobValidationContext } from './admission.js';
