/**
 * The contract between the HTTP API (and the `mist` client commands behind it) and the controller core.
 *
 * The API layer knows nothing of the core's internal types: everything that crosses this interface is a plain,
 * JSON-serialisable object. The core implements `ControllerService`; the API maps its `MistError`s to HTTP
 * statuses (BAD_INPUT 400, NOT_FOUND 404, CONFLICT 409, UNAVAILABLE 503, …; see docs/api.md).
 */

/** Phases after which a job never changes again. `mist submit --wait` stops on these. */
export const TERMINAL_PHASES: readonly string[] = ['Succeeded', 'Failed', 'Cancelled'];

export function isTerminalPhase(phase: string): boolean {
  return TERMINAL_PHASES.includes(phase);
}

/** One row of `GET /api/v1/jobs` and of `mist jobs`. */
export interface JobView {
  name: string;
  phase: string;
  gpus?: number;
  planId?: string | null;
  /** Short plan text for tables, e.g. "pp2 tp2 dp2 mb4 z1". */
  planSummary?: string | null;
  step?: number | null;
  tokensPerSecond?: number | null;
  restarts: number;
  /** ISO-8601 timestamp. */
  createdAt: string;
  /** Why the job is in its phase (a condition's message), when there is something to say. */
  message?: string | null;
  [k: string]: unknown;
}

/** `GET /api/v1/jobs/:name` and `mist describe`. */
export interface JobDetail extends JobView {
  spec: unknown;
  status: unknown;
  conditions: unknown[];
  events: unknown[];
  plan?: unknown;
  attempts?: unknown[];
  profiles?: unknown[];
}

export interface NodeDevice {
  index: number;
  /** 'gpu' or 'cpu'. */
  kind: string;
  /** Catalog name or what the driver reports, e.g. 'h100-80gb'. */
  model: string;
  memoryBytes: number;
}

/** `GET /api/v1/nodes` and `mist nodes`. */
export interface NodeView {
  name: string;
  devices: NodeDevice[];
  /** Seconds since the agent's last heartbeat; null when it never sent one. */
  heartbeatAgeSeconds: number | null;
  lost: boolean;
  labels?: Record<string, string>;
}

export interface LogLine {
  rank: number;
  stream: 'stdout' | 'stderr';
  line: string;
}

/** One change the core announces to its watchers (the dashboard's WebSocket hub, api/ws.ts). */
export type ChangeEvent = { kind: 'job' | 'profile' | 'log'; job: string } | { kind: 'node'; node: string };

/** What the dashboard's overview needs beyond jobs and nodes: which devices are held, and the queue. */
export interface Overview {
  /** Devices held by jobs in Scheduled, Running or Restarting. */
  allocations: Array<{ node: string; device: number; job: string }>;
  /** Jobs waiting for devices, in queue order (priority, then age), with why they wait. */
  queue: Array<{ name: string; priority: number; gpus: number | null; waitingSeconds: number; reason: string; message: string }>;
}

/** One per-rank step profile (a row of the plan store's profiles), for charts. */
export interface ProfilePoint {
  attempt: number;
  rank: number;
  stage: number | null;
  node: string;
  step: number;
  loss: number | null;
  stepSeconds: number;
  peakMemoryBytes: number | null;
  tokens: number | null;
  /** ISO-8601. */
  at: string;
}

export interface ControllerService {
  /** Validates and admits a job. Throws MistError BAD_INPUT (the message names the field) or CONFLICT (name exists). */
  submit(job: { text: string; format: 'yaml' | 'json' }): Promise<JobView>;
  listJobs(filter?: { phase?: string }): Promise<JobView[]>;
  /** Throws MistError NOT_FOUND. */
  getJob(name: string): Promise<JobDetail>;
  /** Cancels a job (idempotent on a job that is already terminal). Throws NOT_FOUND. */
  cancel(name: string): Promise<JobView>;
  /** The last `tailLines` lines (all when absent) of one rank, or of all ranks in arrival order. Throws NOT_FOUND. */
  logs(name: string, opts: { rank?: number; tailLines?: number }): Promise<{ lines: LogLine[] }>;
  /**
   * Live lines after the current end of the logs. Returns an unsubscribe function. The core calls `onEnd` (when
   * given) once no more lines can come (the job reached a terminal phase); the API then ends the stream.
   * Optional: without it `GET …/logs?follow=1` answers 501.
   */
  followLogs?(name: string, opts: { rank?: number }, onLine: (l: LogLine) => void, onEnd?: () => void): () => void;
  nodes(): Promise<NodeView[]>;
  /**
   * Plan history, newest first unless `order` says otherwise. Filter keys (all optional, all strings, validated by
   * the API): model, gpu, gpus (integer ≥ 1), space, job, since/until (ISO-8601), limit (1..10000), offset (≥ 0),
   * order (newest | fastest) — the plan store's PlanFilter.
   */
  plans(filter: Record<string, string>): Promise<unknown[]>;
  /** Throws NOT_FOUND. */
  getPlan(id: string): Promise<unknown>;
  /**
   * Change feed (optional): calls `listener` when a job's status, events, profiles or logs change, or a node
   * registers, is lost or recovers. Returns an unsubscribe function. Without it the WebSocket falls back to polling.
   */
  watch?(listener: (c: ChangeEvent) => void): () => void;
  /** Device allocations and the queue (optional; the dashboard's overview). */
  overview?(): Promise<Overview>;
  /** Per-rank step profiles of a job, oldest first (optional; the dashboard's charts). Throws NOT_FOUND. */
  profiles?(name: string): Promise<ProfilePoint[]>;
  /** Readiness for /readyz: store open, NATS connected, leader elected (or standby), … */
  ready(): Promise<{ ready: boolean; reason?: string }>;
}
