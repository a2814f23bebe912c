/**
 * The wire codec: plain TS messages (./types.ts) <-> bytes. This is the only module that touches the generated
 * protobuf code (protocol/gen/mist.js); nothing generated — and no `Long` — escapes it.
 *
 * Wire format: every NATS payload is one `Frame` message (proto/mist/v1/frame.proto) holding exactly one envelope
 * (Command, CommandReply, Report, AgentHello or Heartbeat). Because the envelope is a single length-delimited field,
 * every strict prefix of a frame fails to decode, and a frame of another kind is recognised from the oneof case.
 *
 * Errors (all MistError, never another type):
 * - encode: BAD_INPUT for a missing/invalid field (the message names the field), FRAME_TOO_LARGE above the limit;
 * - decode: DECODE_ERROR for anything malformed (random bytes, truncation, wrong kind, missing id/epoch/body, a
 *   64-bit value outside the safe-integer range), UNSUPPORTED_VERSION for a newer major version, FRAME_TOO_LARGE
 *   above the limit.
 */
import { mist } from '../gen/mist.js';
import { MistError } from './errors.js';
import type { FailureClass } from './failure.js';
import type {
  AgentHello,
  Command,
  CommandBody,
  CommandReply,
  Device,
  DeviceKind,
  DeviceUtilization,
  Heartbeat,
  LinkBandwidths,
  LogStream,
  RankExit,
  RankPlacement,
  RankState,
  RankStatus,
  Report,
  ReportBody,
  ReplyResult,
} from './types.js';

import pb = mist.v1;

/** Major protocol version this build writes and the newest it reads. Bump only for incompatible changes. */
export const PROTOCOL_VERSION = 1;

/**
 * Largest frame this build encodes or decodes, in bytes: 1 MiB, the NATS server's default `max_payload`, so any frame
 * the codec accepts can be published to a server with default settings (a bigger one would fail at publish time with
 * a less helpful error). A Launch carries the whole Plan JSON (~70 bytes per placed rank: a 1,024-rank plan is about
 * 100 KiB) and log tails are cut by the agent to fit. Deployments that raise the server's `max_payload` can pass
 * `{ maxFrameBytes: nc.info.max_payload }` to every encode/decode call.
 */
export const MAX_FRAME_BYTES = 1024 * 1024;

export interface FrameOptions {
  /** Overrides MAX_FRAME_BYTES (e.g. with the connected server's max_payload). */
  maxFrameBytes?: number;
}

/** The envelope kinds a frame can hold. */
export type FrameKind = 'command' | 'reply' | 'report' | 'hello' | 'heartbeat';

// ================================================================================================ shared helpers

const UINT32_MAX = 0xffff_ffff;
const INT32_MIN = -0x8000_0000;
const INT32_MAX = 0x7fff_ffff;
const TWO_32 = 0x1_0000_0000;

function maxBytes(opts: FrameOptions | undefined): number {
  const m = opts?.maxFrameBytes ?? MAX_FRAME_BYTES;
  if (!Number.isSafeInteger(m) || m <= 0) {
    throw new MistError('BAD_INPUT', `maxFrameBytes: ${String(m)} is not a positive integer`);
  }
  return m;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return Array.isArray(v) ? 'an array' : typeof v;
}

// ---------------------------------------------------------------- encode-side validation (BAD_INPUT)

function bad(path: string, v: unknown, want: string): MistError {
  return new MistError('BAD_INPUT', `${path}: ${describe(v)} is not ${want}`);
}

function eObj(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(path, v, 'an object');
  return v as Record<string, unknown>;
}

function eArr(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw bad(path, v, 'an array');
  return v;
}

type WellFormed = { isWellFormed(): boolean; toWellFormed(): string }; // ES2024, in Node 20; lib is ES2023

/**
 * Strings go on the wire as UTF-8. A lone UTF-16 surrogate has no UTF-8 form (protobufjs would write bytes its own
 * decoder rejects), so it is replaced by U+FFFD, as TextEncoder and Buffer.from do.
 */
function wellFormed(v: string): string {
  const w = v as unknown as WellFormed;
  return w.isWellFormed() ? v : w.toWellFormed();
}

function eStr(v: unknown, path: string): string {
  if (typeof v !== 'string') throw bad(path, v, 'a string');
  return wellFormed(v);
}

function eNonEmpty(v: unknown, path: string): string {
  if (typeof v !== 'string' || v.length === 0) throw bad(path, v, 'a non-empty string');
  return wellFormed(v);
}

function eBool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw bad(path, v, 'a boolean');
  return v;
}

function eDouble(v: unknown, path: string): number {
  if (typeof v !== 'number') throw bad(path, v, 'a number');
  return v;
}

function eU32(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > UINT32_MAX) {
    throw bad(path, v, `an integer in [0, ${UINT32_MAX}]`);
  }
  return v;
}

function eI32(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) {
    throw bad(path, v, `an integer in [${INT32_MIN}, ${INT32_MAX}]`);
  }
  return v;
}

/** A uint64 wire field from a JS number: a non-negative safe integer (min raises the floor, e.g. epoch >= 1). */
function eU64(v: unknown, path: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw bad(path, v, `an integer in [${min}, ${Number.MAX_SAFE_INTEGER}]`);
  }
  return v;
}

function ePort(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) throw bad(path, v, 'a port in [0, 65535]');
  return v;
}

function eMap(v: unknown, path: string): Record<string, string> {
  const o = eObj(v, path);
  const out: Record<string, string> = {};
  for (const k of Object.keys(o)) {
    // defineProperty: a key named "__proto__" must stay an ordinary entry.
    Object.defineProperty(out, wellFormed(k), {
      value: eStr(o[k], `${path}[${JSON.stringify(k)}]`),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function eOptional<T>(o: Record<string, unknown>, key: string, path: string, f: (v: unknown, p: string) => T): T | undefined {
  const v = o[key];
  return v === undefined ? undefined : f(v, `${path}.${key}`);
}

function eEnum<K extends string>(table: Readonly<Record<K, number>>, v: unknown, path: string): number {
  if (typeof v !== 'string' || !Object.prototype.hasOwnProperty.call(table, v)) {
    throw bad(path, v, `one of ${Object.keys(table).join(', ')}`);
  }
  return table[v as K];
}

// ---------------------------------------------------------------- decode-side checks (DECODE_ERROR)

function malformed(kind: FrameKind, problem: string): MistError {
  return new MistError('DECODE_ERROR', `${kind} frame: ${problem}`);
}

type LongLike = { low: number; high: number; unsigned?: boolean };

/** A uint64 as decoded by protobufjs (a number or a Long) -> a safe JS number, else DECODE_ERROR. */
function dU64(v: unknown, path: string): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new MistError('DECODE_ERROR', `${path}: ${v} is not a safe unsigned integer`);
    return v;
  }
  if (typeof v === 'object' && typeof (v as LongLike).low === 'number' && typeof (v as LongLike).high === 'number') {
    const hi = (v as LongLike).high >>> 0;
    const lo = (v as LongLike).low >>> 0;
    // 2^53 = 2^21 * 2^32: anything with hi >= 2^21 is beyond Number.MAX_SAFE_INTEGER.
    if (hi >= 0x20_0000) {
      throw new MistError('DECODE_ERROR', `${path}: value >= 2^53 does not fit a JS number (max ${Number.MAX_SAFE_INTEGER})`);
    }
    return hi * TWO_32 + lo;
  }
  throw new MistError('DECODE_ERROR', `${path}: unexpected 64-bit value ${describe(v)}`);
}

function dNum(v: unknown): number {
  return typeof v === 'number' ? v : 0;
}

function dStr(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function dArr<T>(v: readonly T[] | null | undefined): readonly T[] {
  return Array.isArray(v) ? v : [];
}

function dMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof v !== 'object' || v === null) return out;
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    Object.defineProperty(out, k, { value: dStr(val), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function has(v: unknown): boolean {
  return v !== null && v !== undefined;
}

// ================================================================================================ enums

const FAILURE_TO_WIRE: Readonly<Record<FailureClass, number>> = {
  user_error: pb.FailureClass.FAILURE_CLASS_USER_ERROR,
  out_of_memory: pb.FailureClass.FAILURE_CLASS_OUT_OF_MEMORY,
  node_lost: pb.FailureClass.FAILURE_CLASS_NODE_LOST,
  infra_error: pb.FailureClass.FAILURE_CLASS_INFRA_ERROR,
  killed: pb.FailureClass.FAILURE_CLASS_KILLED,
  hung: pb.FailureClass.FAILURE_CLASS_HUNG,
  unknown: pb.FailureClass.FAILURE_CLASS_UNKNOWN,
};

/** UNSPECIFIED and numbers from a newer writer read as "unknown". */
function dFailure(v: unknown): FailureClass {
  for (const [name, n] of Object.entries(FAILURE_TO_WIRE)) if (n === v) return name as FailureClass;
  return 'unknown';
}

/** "other" is a device kind this build does not know; it is written as UNSPECIFIED. */
const DEVICE_KIND_TO_WIRE: Readonly<Record<DeviceKind, number>> = {
  gpu: pb.DeviceKind.DEVICE_KIND_GPU,
  cpu: pb.DeviceKind.DEVICE_KIND_CPU,
  other: pb.DeviceKind.DEVICE_KIND_UNSPECIFIED,
};

function dDeviceKind(v: unknown): DeviceKind {
  if (v === pb.DeviceKind.DEVICE_KIND_GPU) return 'gpu';
  if (v === pb.DeviceKind.DEVICE_KIND_CPU) return 'cpu';
  return 'other';
}

/** "unknown" is a state this build does not know; it is written as UNSPECIFIED. */
const RANK_STATE_TO_WIRE: Readonly<Record<RankState, number>> = {
  starting: pb.RankState.RANK_STATE_STARTING,
  running: pb.RankState.RANK_STATE_RUNNING,
  stopping: pb.RankState.RANK_STATE_STOPPING,
  exited: pb.RankState.RANK_STATE_EXITED,
  unknown: pb.RankState.RANK_STATE_UNSPECIFIED,
};

function dRankState(v: unknown): RankState {
  for (const [name, n] of Object.entries(RANK_STATE_TO_WIRE)) if (n === v) return name as RankState;
  return 'unknown';
}

const LOG_STREAM_TO_WIRE: Readonly<Record<LogStream, number>> = {
  stdout: pb.LogStream.LOG_STREAM_STDOUT,
  stderr: pb.LogStream.LOG_STREAM_STDERR,
};

function dLogStream(v: unknown, kind: FrameKind): LogStream {
  if (v === pb.LogStream.LOG_STREAM_STDOUT) return 'stdout';
  if (v === pb.LogStream.LOG_STREAM_STDERR) return 'stderr';
  throw malformed(kind, `log tail has no known stream (${describe(v)})`);
}

// ================================================================================================ frames

function finish(frame: pb.Frame.$Properties, kind: FrameKind, opts: FrameOptions | undefined): Uint8Array {
  const limit = maxBytes(opts);
  let bytes: Uint8Array;
  try {
    bytes = pb.Frame.encode(frame).finish();
  } catch (e) {
    throw new MistError('BAD_INPUT', `${kind}: could not be encoded: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (bytes.length > limit) {
    throw new MistError('FRAME_TOO_LARGE', `${kind} frame is ${bytes.length} bytes; the limit is ${limit}`);
  }
  return bytes;
}

/** Runs an encoder, turning any stray non-MistError into BAD_INPUT. */
function encoding<T>(kind: FrameKind, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof MistError) throw e;
    throw new MistError('BAD_INPUT', `${kind}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** Parses the frame and returns the envelope of the expected kind with its version checked. */
function openFrame<K extends FrameKind>(
  bytes: unknown,
  kind: K,
  opts: FrameOptions | undefined,
): NonNullable<pb.Frame[K]> {
  if (!(bytes instanceof Uint8Array)) {
    throw new MistError('DECODE_ERROR', `${kind} frame: expected bytes (Uint8Array), got ${describe(bytes)}`);
  }
  const limit = maxBytes(opts);
  if (bytes.length > limit) {
    throw new MistError('FRAME_TOO_LARGE', `${kind} frame is ${bytes.length} bytes; the limit is ${limit}`);
  }
  let frame: pb.Frame;
  try {
    frame = pb.Frame.decode(bytes);
  } catch (e) {
    throw new MistError('DECODE_ERROR', `${kind} frame: not a valid protobuf Frame (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  const which = frame.message;
  if (which === undefined) {
    throw malformed(kind, 'holds no envelope (empty, truncated, or a kind this build does not know)');
  }
  if (which !== kind) throw malformed(kind, `holds a ${which}, not a ${kind}`);
  const env = frame[kind] as NonNullable<pb.Frame[K]> | null | undefined;
  if (!env) throw malformed(kind, 'envelope missing');
  checkVersion((env as { version?: number | null }).version, kind);
  return env;
}

function checkVersion(v: unknown, kind: FrameKind): void {
  if (typeof v !== 'number' || v === 0) throw malformed(kind, 'missing protocol version');
  if (v > PROTOCOL_VERSION) {
    throw new MistError(
      'UNSUPPORTED_VERSION',
      `${kind} frame: protocol version ${v} is newer than this build reads (${PROTOCOL_VERSION}); upgrade this component`,
    );
  }
}

/** Runs a decoder, turning any stray non-MistError into DECODE_ERROR. */
function decoding<T>(kind: FrameKind, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof MistError) throw e;
    throw new MistError('DECODE_ERROR', `${kind} frame: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

// ================================================================================================ command

export function encodeCommand(cmd: Command, opts?: FrameOptions): Uint8Array {
  return encoding('command', () => {
    const c = eObj(cmd, 'command');
    const env: pb.Command.$Properties = {
      version: PROTOCOL_VERSION,
      id: eNonEmpty(c.id, 'command.id'),
      epoch: eU64(c.epoch, 'command.epoch', 1),
      sentAtUnixMs: eDouble(c.sentAtMs, 'command.sentAtMs'),
    };
    const b = eObj(c.body, 'command.body');
    const body = b as unknown as CommandBody;
    switch (body.kind) {
      case 'launch':
        env.launch = {
          job: eNonEmpty(b.job, 'command.body.job'),
          attempt: eU32(b.attempt, 'command.body.attempt'),
          planJson: eStr(b.planJson, 'command.body.planJson'),
          ranks: eArr(b.ranks, 'command.body.ranks').map((r, i) => ePlacement(r, `command.body.ranks[${i}]`)),
          worldSize: eU32(b.worldSize, 'command.body.worldSize'),
          runtime: eNonEmpty(b.runtime, 'command.body.runtime'),
          masterAddr: eStr(b.masterAddr, 'command.body.masterAddr'),
          masterPort: ePort(b.masterPort, 'command.body.masterPort'),
          env: eMap(b.env, 'command.body.env'),
        };
        break;
      case 'stop':
        env.stop = {
          job: eNonEmpty(b.job, 'command.body.job'),
          attempt: eU32(b.attempt, 'command.body.attempt'),
          graceSeconds: eDouble(b.graceSeconds, 'command.body.graceSeconds'),
          reason: eStr(b.reason, 'command.body.reason'),
        };
        break;
      case 'status': {
        const job = eOptional(b, 'job', 'command.body', eStr);
        env.status = job === undefined ? {} : { job };
        break;
      }
      default:
        throw bad('command.body.kind', b.kind, 'one of launch, stop, status');
    }
    return finish({ command: env }, 'command', opts);
  });
}

function ePlacement(v: unknown, path: string): pb.RankPlacement.$Properties {
  const r = eObj(v, path);
  return {
    rank: eU32(r.rank, `${path}.rank`),
    localRank: eU32(r.localRank, `${path}.localRank`),
    device: eU32(r.device, `${path}.device`),
    stage: eU32(r.stage, `${path}.stage`),
    dpRank: eU32(r.dpRank, `${path}.dpRank`),
    tpRank: eU32(r.tpRank, `${path}.tpRank`),
  };
}

export function decodeCommand(bytes: Uint8Array, opts?: FrameOptions): Command {
  return decoding('command', () => {
    const m = openFrame(bytes, 'command', opts);
    const id = dStr(m.id);
    if (id === '') throw malformed('command', 'missing id (the idempotency key)');
    const epoch = dU64(m.epoch, 'command.epoch');
    if (epoch < 1) throw malformed('command', `command ${id} has no epoch (must be >= 1)`);
    let body: CommandBody;
    if (m.launch) {
      const l = m.launch;
      const job = dStr(l.job);
      if (job === '') throw malformed('command', `launch ${id} has no job`);
      const runtime = dStr(l.runtime);
      if (runtime === '') throw malformed('command', `launch ${id} has no runtime`);
      const port = dNum(l.masterPort);
      if (port > 65535) throw malformed('command', `launch ${id} has master port ${port} > 65535`);
      body = {
        kind: 'launch',
        job,
        attempt: dNum(l.attempt),
        planJson: dStr(l.planJson),
        ranks: dArr(l.ranks).map(dPlacement),
        worldSize: dNum(l.worldSize),
        runtime,
        masterAddr: dStr(l.masterAddr),
        masterPort: port,
        env: dMap(l.env),
      };
    } else if (m.stop) {
      const s = m.stop;
      const job = dStr(s.job);
      if (job === '') throw malformed('command', `stop ${id} has no job`);
      body = { kind: 'stop', job, attempt: dNum(s.attempt), graceSeconds: dNum(s.graceSeconds), reason: dStr(s.reason) };
    } else if (m.status) {
      body = { kind: 'status' };
      if (typeof m.status.job === 'string') body.job = m.status.job;
    } else {
      throw malformed('command', `command ${id} has no body this build understands (a newer controller?)`);
    }
    return { id, epoch, sentAtMs: dNum(m.sentAtUnixMs), body };
  });
}

function dPlacement(r: pb.RankPlacement.$Properties): RankPlacement {
  return {
    rank: dNum(r.rank),
    localRank: dNum(r.localRank),
    device: dNum(r.device),
    stage: dNum(r.stage),
    dpRank: dNum(r.dpRank),
    tpRank: dNum(r.tpRank),
  };
}

// ================================================================================================ reply

export function encodeReply(reply: CommandReply, opts?: FrameOptions): Uint8Array {
  return encoding('reply', () => {
    const r = eObj(reply, 'reply');
    const ok = eBool(r.ok, 'reply.ok');
    const env: pb.CommandReply.$Properties = {
      version: PROTOCOL_VERSION,
      commandId: eNonEmpty(r.commandId, 'reply.commandId'),
      ok,
    };
    if (!ok) {
      const e = eObj(r.error, 'reply.error');
      env.error = {
        code: eNonEmpty(e.code, 'reply.error.code'),
        message: eStr(e.message, 'reply.error.message'),
        retryable: eBool(e.retryable, 'reply.error.retryable'),
      };
    } else if (r.result !== undefined) {
      const res = eObj(r.result, 'reply.result');
      const kind = (res as unknown as ReplyResult).kind;
      if (kind === 'launch') {
        env.launch = {
          ranks: eArr(res.ranks, 'reply.result.ranks').map((p, i) => {
            const o = eObj(p, `reply.result.ranks[${i}]`);
            return { rank: eU32(o.rank, `reply.result.ranks[${i}].rank`), pid: eU32(o.pid, `reply.result.ranks[${i}].pid`) };
          }),
        };
      } else if (kind === 'stop') {
        env.stop = {
          stoppedRanks: eArr(res.stoppedRanks, 'reply.result.stoppedRanks').map((n, i) => eU32(n, `reply.result.stoppedRanks[${i}]`)),
        };
      } else if (kind === 'status') {
        env.status = { ranks: eArr(res.ranks, 'reply.result.ranks').map((s, i) => eRankStatus(s, `reply.result.ranks[${i}]`)) };
      } else {
        throw bad('reply.result.kind', kind, 'one of launch, stop, status');
      }
    }
    return finish({ reply: env }, 'reply', opts);
  });
}

function eRankStatus(v: unknown, path: string): pb.RankStatus.$Properties {
  const s = eObj(v, path);
  const out: pb.RankStatus.$Properties = {
    job: eStr(s.job, `${path}.job`),
    attempt: eU32(s.attempt, `${path}.attempt`),
    rank: eU32(s.rank, `${path}.rank`),
    pid: eU32(s.pid, `${path}.pid`),
    state: eEnum(RANK_STATE_TO_WIRE, s.state, `${path}.state`),
  };
  if (s.exit !== undefined) {
    const x = eObj(s.exit, `${path}.exit`);
    const exit: pb.RankExit.$Properties = { failureClass: eEnum(FAILURE_TO_WIRE, x.failureClass, `${path}.exit.failureClass`) };
    const code = eOptional(x, 'exitCode', `${path}.exit`, eI32);
    if (code !== undefined) exit.exitCode = code;
    const signal = eOptional(x, 'signal', `${path}.exit`, eStr);
    if (signal !== undefined) exit.signal = signal;
    out.exit = exit;
  }
  return out;
}

export function decodeReply(bytes: Uint8Array, opts?: FrameOptions): CommandReply {
  return decoding('reply', () => {
    const m = openFrame(bytes, 'reply', opts);
    const commandId = dStr(m.commandId);
    if (commandId === '') throw malformed('reply', 'missing commandId');
    if (m.ok !== true) {
      if (!m.error) throw malformed('reply', `failed reply to ${commandId} carries no error`);
      const code = dStr(m.error.code);
      if (code === '') throw malformed('reply', `failed reply to ${commandId} carries an error without a code`);
      return {
        commandId,
        ok: false,
        error: { code, message: dStr(m.error.message), retryable: m.error.retryable === true },
      };
    }
    const out: CommandReply = { commandId, ok: true };
    if (m.launch) {
      out.result = { kind: 'launch', ranks: dArr(m.launch.ranks).map((p) => ({ rank: dNum(p.rank), pid: dNum(p.pid) })) };
    } else if (m.stop) {
      out.result = { kind: 'stop', stoppedRanks: dArr(m.stop.stoppedRanks).map(dNum) };
    } else if (m.status) {
      out.result = { kind: 'status', ranks: dArr(m.status.ranks).map(dRankStatus) };
    }
    // A result kind from a newer agent is left out: result is optional.
    return out;
  });
}

function dRankStatus(s: pb.RankStatus.$Properties): RankStatus {
  const out: RankStatus = {
    job: dStr(s.job),
    attempt: dNum(s.attempt),
    rank: dNum(s.rank),
    pid: dNum(s.pid),
    state: dRankState(s.state),
  };
  if (s.exit) out.exit = dRankExit(s.exit);
  return out;
}

function dRankExit(x: pb.RankExit.$Properties): RankExit {
  const out: RankExit = { failureClass: dFailure(x.failureClass) };
  if (typeof x.exitCode === 'number') out.exitCode = x.exitCode;
  if (typeof x.signal === 'string') out.signal = x.signal;
  return out;
}

// ================================================================================================ report

export function encodeReport(report: Report, opts?: FrameOptions): Uint8Array {
  return encoding('report', () => {
    const r = eObj(report, 'report');
    const env: pb.Report.$Properties = {
      version: PROTOCOL_VERSION,
      id: eNonEmpty(r.id, 'report.id'),
      job: eStr(r.job, 'report.job'),
      attempt: eU32(r.attempt, 'report.attempt'),
      node: eNonEmpty(r.node, 'report.node'),
      seq: eU64(r.seq, 'report.seq'),
      sentAtUnixMs: eDouble(r.sentAtMs, 'report.sentAtMs'),
    };
    const b = eObj(r.body, 'report.body');
    const kind = (b as unknown as ReportBody).kind;
    const p = 'report.body';
    switch (kind) {
      case 'rankStarted':
        env.rankStarted = { rank: eU32(b.rank, `${p}.rank`), pid: eU32(b.pid, `${p}.pid`) };
        break;
      case 'rankExited': {
        const x: pb.RankExited.$Properties = {
          rank: eU32(b.rank, `${p}.rank`),
          failureClass: eEnum(FAILURE_TO_WIRE, b.failureClass, `${p}.failureClass`),
        };
        const code = eOptional(b, 'exitCode', p, eI32);
        if (code !== undefined) x.exitCode = code;
        const signal = eOptional(b, 'signal', p, eStr);
        if (signal !== undefined) x.signal = signal;
        env.rankExited = x;
        break;
      }
      case 'stepProfile': {
        const s: pb.StepProfile.$Properties = {
          rank: eU32(b.rank, `${p}.rank`),
          stage: eU32(b.stage, `${p}.stage`),
          step: eU64(b.step, `${p}.step`),
          stepSeconds: eDouble(b.stepSeconds, `${p}.stepSeconds`),
          stageTimes: eArr(b.stageTimes, `${p}.stageTimes`).map((t, i) => {
            const o = eObj(t, `${p}.stageTimes[${i}]`);
            return {
              stage: eU32(o.stage, `${p}.stageTimes[${i}].stage`),
              forwardSeconds: eDouble(o.forwardSeconds, `${p}.stageTimes[${i}].forwardSeconds`),
              backwardSeconds: eDouble(o.backwardSeconds, `${p}.stageTimes[${i}].backwardSeconds`),
            };
          }),
          peakMemoryBytes: eU64(b.peakMemoryBytes, `${p}.peakMemoryBytes`),
          tokens: eU64(b.tokens, `${p}.tokens`),
        };
        const loss = eOptional(b, 'loss', p, eDouble);
        if (loss !== undefined) s.loss = loss;
        env.stepProfile = s;
        break;
      }
      case 'logTail':
        env.logTail = {
          rank: eU32(b.rank, `${p}.rank`),
          stream: eEnum(LOG_STREAM_TO_WIRE, b.stream, `${p}.stream`),
          lines: eArr(b.lines, `${p}.lines`).map((l, i) => eStr(l, `${p}.lines[${i}]`)),
          truncated: eBool(b.truncated, `${p}.truncated`),
        };
        break;
      case 'nodeEvent':
        env.nodeEvent = { kind: eNonEmpty(b.event, `${p}.event`), message: eStr(b.message, `${p}.message`) };
        break;
      default:
        throw bad(`${p}.kind`, kind, 'one of rankStarted, rankExited, stepProfile, logTail, nodeEvent');
    }
    return finish({ report: env }, 'report', opts);
  });
}

export function decodeReport(bytes: Uint8Array, opts?: FrameOptions): Report {
  return decoding('report', () => {
    const m = openFrame(bytes, 'report', opts);
    const id = dStr(m.id);
    if (id === '') throw malformed('report', 'missing id (the de-duplication key)');
    const node = dStr(m.node);
    if (node === '') throw malformed('report', `report ${id} has no node`);
    let body: ReportBody;
    if (m.rankStarted) {
      body = { kind: 'rankStarted', rank: dNum(m.rankStarted.rank), pid: dNum(m.rankStarted.pid) };
    } else if (m.rankExited) {
      const x = m.rankExited;
      const b: ReportBody = { kind: 'rankExited', rank: dNum(x.rank), failureClass: dFailure(x.failureClass) };
      if (typeof x.exitCode === 'number') b.exitCode = x.exitCode;
      if (typeof x.signal === 'string') b.signal = x.signal;
      body = b;
    } else if (m.stepProfile) {
      const s = m.stepProfile;
      const b: ReportBody = {
        kind: 'stepProfile',
        rank: dNum(s.rank),
        stage: dNum(s.stage),
        step: dU64(s.step, 'report.stepProfile.step'),
        stepSeconds: dNum(s.stepSeconds),
        stageTimes: dArr(s.stageTimes).map((t) => ({
          stage: dNum(t.stage),
          forwardSeconds: dNum(t.forwardSeconds),
          backwardSeconds: dNum(t.backwardSeconds),
        })),
        peakMemoryBytes: dU64(s.peakMemoryBytes, 'report.stepProfile.peakMemoryBytes'),
        tokens: dU64(s.tokens, 'report.stepProfile.tokens'),
      };
      if (typeof s.loss === 'number') b.loss = s.loss;
      body = b;
    } else if (m.logTail) {
      const l = m.logTail;
      body = {
        kind: 'logTail',
        rank: dNum(l.rank),
        stream: dLogStream(l.stream, 'report'),
        lines: dArr(l.lines).map(dStr),
        truncated: l.truncated === true,
      };
    } else if (m.nodeEvent) {
      const event = dStr(m.nodeEvent.kind);
      if (event === '') throw malformed('report', `node event ${id} has no kind`);
      body = { kind: 'nodeEvent', event, message: dStr(m.nodeEvent.message) };
    } else {
      throw malformed('report', `report ${id} has no body this build understands (a newer agent?)`);
    }
    return {
      id,
      job: dStr(m.job),
      attempt: dNum(m.attempt),
      node,
      seq: dU64(m.seq, 'report.seq'),
      sentAtMs: dNum(m.sentAtUnixMs),
      body,
    };
  });
}

// ================================================================================================ hello

export function encodeHello(hello: AgentHello, opts?: FrameOptions): Uint8Array {
  return encoding('hello', () => {
    const h = eObj(hello, 'hello');
    const l = eObj(h.links, 'hello.links');
    const env: pb.AgentHello.$Properties = {
      version: PROTOCOL_VERSION,
      node: eNonEmpty(h.node, 'hello.node'),
      devices: eArr(h.devices, 'hello.devices').map((d, i) => {
        const o = eObj(d, `hello.devices[${i}]`);
        return {
          index: eU32(o.index, `hello.devices[${i}].index`),
          kind: eEnum(DEVICE_KIND_TO_WIRE, o.kind, `hello.devices[${i}].kind`),
          model: eStr(o.model, `hello.devices[${i}].model`),
          memoryBytes: eU64(o.memoryBytes, `hello.devices[${i}].memoryBytes`),
        };
      }),
      links: {
        intraNodeBytesPerSecond: eDouble(l.intraNodeBytesPerSecond, 'hello.links.intraNodeBytesPerSecond'),
        interNodeBytesPerSecond: eDouble(l.interNodeBytesPerSecond, 'hello.links.interNodeBytesPerSecond'),
        pcieH2dBytesPerSecond: eDouble(l.pcieH2dBytesPerSecond, 'hello.links.pcieH2dBytesPerSecond'),
        pcieD2hBytesPerSecond: eDouble(l.pcieD2hBytesPerSecond, 'hello.links.pcieD2hBytesPerSecond'),
      },
      labels: eMap(h.labels, 'hello.labels'),
      agentVersion: eStr(h.agentVersion, 'hello.agentVersion'),
      sentAtUnixMs: eDouble(h.sentAtMs, 'hello.sentAtMs'),
    };
    return finish({ hello: env }, 'hello', opts);
  });
}

export function decodeHello(bytes: Uint8Array, opts?: FrameOptions): AgentHello {
  return decoding('hello', () => {
    const m = openFrame(bytes, 'hello', opts);
    const node = dStr(m.node);
    if (node === '') throw malformed('hello', 'missing node');
    const l = m.links ?? {};
    const links: LinkBandwidths = {
      intraNodeBytesPerSecond: dNum(l.intraNodeBytesPerSecond),
      interNodeBytesPerSecond: dNum(l.interNodeBytesPerSecond),
      pcieH2dBytesPerSecond: dNum(l.pcieH2dBytesPerSecond),
      pcieD2hBytesPerSecond: dNum(l.pcieD2hBytesPerSecond),
    };
    const devices: Device[] = dArr(m.devices).map((d, i) => ({
      index: dNum(d.index),
      kind: dDeviceKind(d.kind),
      model: dStr(d.model),
      memoryBytes: dU64(d.memoryBytes, `hello.devices[${i}].memoryBytes`),
    }));
    return {
      node,
      devices,
      links,
      labels: dMap(m.labels),
      agentVersion: dStr(m.agentVersion),
      sentAtMs: dNum(m.sentAtUnixMs),
    };
  });
}

// ================================================================================================ heartbeat

export function encodeHeartbeat(hb: Heartbeat, opts?: FrameOptions): Uint8Array {
  return encoding('heartbeat', () => {
    const h = eObj(hb, 'heartbeat');
    const env: pb.Heartbeat.$Properties = {
      version: PROTOCOL_VERSION,
      node: eNonEmpty(h.node, 'heartbeat.node'),
      seq: eU64(h.seq, 'heartbeat.seq'),
      sentAtUnixMs: eDouble(h.sentAtMs, 'heartbeat.sentAtMs'),
      runningRanks: eU32(h.runningRanks, 'heartbeat.runningRanks'),
      jobs: eArr(h.jobs, 'heartbeat.jobs').map((j, i) => eStr(j, `heartbeat.jobs[${i}]`)),
      utilization: eArr(h.utilization, 'heartbeat.utilization').map((u, i) => {
        const p = `heartbeat.utilization[${i}]`;
        const o = eObj(u, p);
        const out: pb.DeviceUtilization.$Properties = {
          device: eU32(o.device, `${p}.device`),
          utilization: eDouble(o.utilization, `${p}.utilization`),
        };
        const used = eOptional(o, 'memoryUsedBytes', p, eU64);
        if (used !== undefined) out.memoryUsedBytes = used;
        return out;
      }),
    };
    return finish({ heartbeat: env }, 'heartbeat', opts);
  });
}

export function decodeHeartbeat(bytes: Uint8Array, opts?: FrameOptions): Heartbeat {
  return decoding('heartbeat', () => {
    const m = openFrame(bytes, 'heartbeat', opts);
    const node = dStr(m.node);
    if (node === '') throw malformed('heartbeat', 'missing node');
    return {
      node,
      seq: dU64(m.seq, 'heartbeat.seq'),
      sentAtMs: dNum(m.sentAtUnixMs),
      runningRanks: dNum(m.runningRanks),
      jobs: dArr(m.jobs).map(dStr),
      utilization: dArr(m.utilization).map((u, i): DeviceUtilization => {
        const out: DeviceUtilization = { device: dNum(u.device), utilization: dNum(u.utilization) };
        if (has(u.memoryUsedBytes)) out.memoryUsedBytes = dU64(u.memoryUsedBytes, `heartbeat.utilization[${i}].memoryUsedBytes`);
        return out;
      }),
    };
  });
}

// ================================================================================================ peeking

/**
 * Which envelope a frame holds, without validating it (undefined when the bytes are not a frame this build knows).
 * For routing and diagnostics only; always decode with the matching decodeX.
 */
export function frameKind(bytes: Uint8Array, opts?: FrameOptions): FrameKind | undefined {
  if (!(bytes instanceof Uint8Array) || bytes.length > maxBytes(opts)) return undefined;
  try {
    return pb.Frame.decode(bytes).message;
  } catch {
    return undefined;
  }
}
