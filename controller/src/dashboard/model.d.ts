// Types of model.js (the dashboard's pure helpers), for the unit tests in tests/unit/dashboard.
export declare const PHASES: string[];
export declare const TERMINAL: Set<string>;
export declare function fmtNum(x: number | null | undefined, digits?: number): string;
export declare function fmtSeconds(s: number | null | undefined): string;
export declare function fmtAge(s: number | null | undefined): string;
export declare function fmtBytes(b: number | null | undefined): string;
export declare function fmtRate(r: number | null | undefined): string;
export declare function fmtPct(x: number | null | undefined, digits?: number): string;
export declare function ckptText(c: unknown): string;
export declare function offloadText(o: Record<string, number> | null | undefined): string;
export declare function planSummary(plan: any): string;
export interface DeviceRow {
  node: string;
  types: string[];
  total: number;
  allocated: number;
  idle: number;
  jobs: string[];
  lost: boolean;
  heartbeatAgeSeconds: number | null;
}
export declare function deviceOverview(
  nodes: any[],
  allocations: Array<{ node: string; device: number; job: string }>,
): { total: { total: number; allocated: number; idle: number }; byNode: DeviceRow[]; byType: Array<{ type: string; kind: string; model: string; total: number; allocated: number; idle: number }> };
export declare function phaseCounts(jobs: Array<{ phase: string }>): Array<[string, number]>;
export interface GridStage {
  index: number;
  first: number;
  last: number;
  count: number;
  dp: number;
  tp: number;
  zero: number;
  microBatch: number;
  ckpt: string;
  offload: string;
  splitBackward: boolean;
  gpus: number;
  predictedSeconds: number | null;
  predictedMemoryBytes: number | null;
}
export declare function planGrid(plan: any): { layers: number; stages: GridStage[] };
export declare function stepSeries(
  profiles: any[],
  plan: any,
): { attempt: number; steps: number[]; measured: number[]; predicted: Array<number | null>; loss: Array<number | null>; memory: number[]; tokens: number[] };
export declare function rankProfiles(profiles: any[]): Array<{ rank: number; node: string; stage: number | null; steps: number; meanSeconds: number | null; lastSeconds: number | null; lastStep: number; peakMemoryBytes: number | null; straggler: boolean }>;
export declare function etaSeconds(step: number, totalSteps: number, series: number[]): number | null;
export declare function filterSortPlans<T extends Record<string, any>>(plans: T[], query: string, sortKey?: string, descending?: boolean): T[];
export declare function comparePlans(a: any, b: any): Array<{ field: string; a: string; b: string; differs: boolean }>;
export declare function paretoFrontier<T extends Record<string, any>>(points: T[], x?: string, y?: string): T[];
export declare function applyJobsDelta<T extends { name: string }>(map: Map<string, T>, data: { upsert?: T[]; remove?: string[] }): Map<string, T>;
export declare function seqFollows(last: number, seq: number): boolean;
export declare function parseRoute(hash: string): { page: string; name?: string; id?: string; query: URLSearchParams };
