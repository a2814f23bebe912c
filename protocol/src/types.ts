/**
 * Plain TypeScript shapes of every controller–agent message. These are what the rest of Mist handles; only
 * protocol/src/codec.ts touches the generated protobuf code (protocol/gen/).
 *
 * Conventions:
 * - 64-bit wire integers (epoch, seq, step, tokens, byte counts) are JS numbers; the codec refuses values outside
 *   the safe-integer range in both directions, so no `Long` ever leaves protocol/.
 * - Times are Unix milliseconds (`...Ms`, doubles) or durations in seconds (`...Seconds`).
 * - The protocol version is not part of these shapes: the codec writes PROTOCOL_VERSION and checks it on decode.
 * - Oneofs are discriminated unions on `kind`.
 * - Optional wire fields are optional properties (absent, never `undefined`-valued, after decode).
 */
import type { FailureClass } from './failure.js';

// ---------------------------------------------------------------- agent -> controller: inventory and liveness

export const DEVICE_KINDS = ['gpu', 'cpu', 'other'] as const;
/** `other` is a device kind this build does not know (from a newer agent); schedulers ignore such devices. */
export type DeviceKind = (typeof DEVICE_KINDS)[number];

export interface Device {
  /** Index on the node (CUDA ordinal; 0..n-1 for CPU devices). */
  index: number;
  kind: DeviceKind;
  /** e.g. "NVIDIA A100-SXM4-80GB" or "cpu". */
  model: string;
  memoryBytes: number;
}

/** Link bandwidths in bytes per second; 0 means not measured. */
export interface LinkBandwidths {
  intraNodeBytesPerSecond: number;
  interNodeBytesPerSecond: number;
  pcieH2dBytesPerSecond: number;
  pcieD2hBytesPerSecond: number;
}

/** Sent by an agent when it starts and whenever its inventory changes. */
export interface AgentHello {
  node: string;
  devices: Device[];
  links: LinkBandwidths;
  labels: Record<string, string>;
  /** The agent build, e.g. "0.1.0". */
  agentVersion: string;
  sentAtMs: number;
}

export interface DeviceUtilization {
  device: number;
  /** Busy fraction in [0, 1]. */
  utilization: number;
  memoryUsedBytes?: number;
}

export interface Heartbeat {
  node: string;
  /** Increases by one per heartbeat from one agent process. */
  seq: number;
  sentAtMs: number;
  runningRanks: number;
  /** Jobs with at least one running rank on this node. */
  jobs: string[];
  /** Empty when the agent cannot read utilisation. */
  utilization: DeviceUtilization[];
}

// ---------------------------------------------------------------- controller -> agent: commands

export interface RankPlacement {
  rank: number;
  localRank: number;
  device: number;
  stage: number;
  dpRank: number;
  tpRank: number;
}

export interface LaunchCommand {
  kind: 'launch';
  job: string;
  attempt: number;
  /** The Plan (DESIGN.md §4) as JSON text. */
  planJson: string;
  /** The ranks placed on the receiving node. */
  ranks: RankPlacement[];
  worldSize: number;
  /** A runtime name from the admin-defined list ("reference", "megatron", ...). */
  runtime: string;
  masterAddr: string;
  masterPort: number;
  env: Record<string, string>;
}

export interface StopCommand {
  kind: 'stop';
  job: string;
  attempt: number;
  /** SIGTERM, then SIGKILL after this many seconds. */
  graceSeconds: number;
  reason: string;
}

export interface StatusCommand {
  kind: 'status';
  /** Only ranks of this job; all ranks when absent. */
  job?: string;
}

export type CommandBody = LaunchCommand | StopCommand | StatusCommand;
export type CommandKind = CommandBody['kind'];

export interface Command {
  /** Idempotency key; non-empty. */
  id: string;
  /** The controller's fencing epoch; an integer >= 1. */
  epoch: number;
  sentAtMs: number;
  body: CommandBody;
}

// ---------------------------------------------------------------- agent -> controller: replies

export interface ReplyError {
  /** A MistError code, e.g. "STALE_EPOCH" (a string: the peer may know codes this build does not). */
  code: string;
  message: string;
  retryable: boolean;
}

export interface RankPid {
  rank: number;
  pid: number;
}

export const RANK_STATES = ['starting', 'running', 'stopping', 'exited', 'unknown'] as const;
/** `unknown` is what a reader reports for a state number it does not know (a newer agent). */
export type RankState = (typeof RANK_STATES)[number];

export interface RankExit {
  exitCode?: number;
  /** Signal name, e.g. "SIGKILL". */
  signal?: string;
  failureClass: FailureClass;
}

export interface RankStatus {
  job: string;
  attempt: number;
  rank: number;
  pid: number;
  state: RankState;
  /** Set once the rank has exited. */
  exit?: RankExit;
}

export interface LaunchResult {
  kind: 'launch';
  ranks: RankPid[];
}

export interface StopResult {
  kind: 'stop';
  /** Ranks that were running and have been signalled. */
  stoppedRanks: number[];
}

export interface StatusResult {
  kind: 'status';
  ranks: RankStatus[];
}

export type ReplyResult = LaunchResult | StopResult | StatusResult;

export type CommandReply =
  | { commandId: string; ok: true; result?: ReplyResult }
  | { commandId: string; ok: false; error: ReplyError };

// ---------------------------------------------------------------- agent -> controller: reports (JetStream)

export interface RankStartedReport {
  kind: 'rankStarted';
  rank: number;
  pid: number;
}

export interface RankExitedReport {
  kind: 'rankExited';
  rank: number;
  exitCode?: number;
  signal?: string;
  failureClass: FailureClass;
}

export interface StageTime {
  stage: number;
  forwardSeconds: number;
  backwardSeconds: number;
}

export interface StepProfileReport {
  kind: 'stepProfile';
  rank: number;
  stage: number;
  step: number;
  /** Absent on ranks that do not compute the loss. May be NaN (a diverged run). */
  loss?: number;
  stepSeconds: number;
  /** Per-stage forward/backward time as measured by this rank. */
  stageTimes: StageTime[];
  peakMemoryBytes: number;
  tokens: number;
}

export const LOG_STREAMS = ['stdout', 'stderr'] as const;
export type LogStream = (typeof LOG_STREAMS)[number];

export interface LogTailReport {
  kind: 'logTail';
  rank: number;
  stream: LogStream;
  lines: string[];
  /** True when lines were dropped before these. */
  truncated: boolean;
}

export interface NodeEventReport {
  kind: 'nodeEvent';
  /** e.g. "agent_restarted", "gpu_xid", "disk_full". */
  event: string;
  message: string;
}

export type ReportBody =
  | RankStartedReport
  | RankExitedReport
  | StepProfileReport
  | LogTailReport
  | NodeEventReport;
export type ReportKind = ReportBody['kind'];

export interface Report {
  /** De-duplication key (JetStream Nats-Msg-Id); non-empty. */
  id: string;
  /** Empty for node events that belong to no job. */
  job: string;
  attempt: number;
  node: string;
  /** Increases by one per report from one agent for one job attempt. */
  seq: number;
  sentAtMs: number;
  body: ReportBody;
}
