/**
 * fast-check arbitraries for every plain protocol message, plus helpers shared by the protocol unit and
 * conformance tests (repository root, a reflection schema built from the .proto sources).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import {
  DEVICE_KINDS,
  decodeCommand,
  decodeHeartbeat,
  decodeHello,
  decodeReply,
  decodeReport,
  encodeCommand,
  encodeHeartbeat,
  encodeHello,
  encodeReply,
  encodeReport,
  type FrameKind,
  type FrameOptions,
  FAILURE_CLASSES,
  LOG_STREAMS,
  MistError,
  RANK_STATES,
  type AgentHello,
  type Command,
  type CommandBody,
  type CommandReply,
  type Device,
  type DeviceUtilization,
  type Heartbeat,
  type RankExit,
  type RankPlacement,
  type RankStatus,
  type Report,
  type ReportBody,
  type ReplyResult,
  type StageTime,
} from '../../../protocol/src/index.js';

// ---------------------------------------------------------------- paths

/** The repository root (the directory whose package.json names "mist"), found from this compiled file. */
export const REPO_ROOT: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'mist') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root (package.json of "mist") not found');
    dir = up;
  }
})();

export const PROTO_DIR = join(REPO_ROOT, 'protocol', 'proto', 'mist', 'v1');

/** The .proto sources by file name, e.g. { 'command.proto': '...' }. */
export function protoSources(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(PROTO_DIR).filter((n) => n.endsWith('.proto')).sort()) {
    out[f] = readFileSync(join(PROTO_DIR, f), 'utf8');
  }
  return out;
}

/**
 * A protobufjs reflection Root parsed from the .proto sources (optionally edited), independent of the committed
 * generated code: tests use it to write frames a different (older, newer or broken) writer would send.
 */
export function reflectionRoot(sources: Record<string, string> = protoSources(), keepCase = false): protobuf.Root {
  const root = new protobuf.Root();
  for (const text of Object.values(sources)) protobuf.parse(text, root, { keepCase });
  root.resolveAll();
  return root;
}

/** Inserts `line` as the first member of `message <name> {` (or `enum <name> {`) in the proto source. */
export function addMember(source: string, decl: string, line: string): string {
  const at = source.indexOf(`${decl} {`);
  if (at < 0) throw new Error(`${decl} not found`);
  const brace = at + decl.length + 2;
  return `${source.slice(0, brace)}\n  ${line}\n${source.slice(brace)}`;
}

/** Encodes a Frame with a reflection Root (plain JSON-ish object; 64-bit values may be decimal strings). */
export function reflectFrame(root: protobuf.Root, frame: Record<string, unknown>): Uint8Array {
  const Frame = root.lookupType('mist.v1.Frame');
  return Frame.encode(Frame.fromObject(frame)).finish();
}

/**
 * One line per field and enum value, `<container> <number> <name> <label/type>[ oneof <name>]`, sorted by container
 * and number; pass a root parsed with keepCase so names are the .proto names.
 */
export function wireLines(root: protobuf.Root): string[] {
  const out: string[] = [];
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Type) {
        for (const f of obj.fieldsArray) {
          const label = f instanceof protobuf.MapField ? `map<${f.keyType},${f.type}>` : `${f.repeated ? 'repeated ' : f.options?.['proto3_optional'] ? 'optional ' : ''}${f.type}`;
          const oneof = f.partOf && !f.partOf.name.startsWith('_') ? ` oneof ${f.partOf.name}` : '';
          out.push(`${obj.fullName.slice(1)} ${f.id} ${f.name} ${label}${oneof}`);
        }
      } else if (obj instanceof protobuf.Enum) {
        for (const [name, id] of Object.entries(obj.values)) out.push(`${obj.fullName.slice(1)} ${id} ${name} enum`);
      }
      if (obj instanceof protobuf.Namespace || obj instanceof protobuf.Type) visit(obj);
    }
  };
  visit(root);
  const key = (l: string): [string, number] => [l.split(' ')[0]!, Number(l.split(' ')[1])];
  return out.sort((a, b) => {
    const [ca, na] = key(a);
    const [cb, nb] = key(b);
    return ca < cb ? -1 : ca > cb ? 1 : na - nb;
  });
}

// ---------------------------------------------------------------- scalars

/** Well-formed Unicode (what survives UTF-8), including astral characters and the empty string. */
export const str = (maxLength = 24): fc.Arbitrary<string> =>
  fc.oneof(fc.string({ unit: 'grapheme', maxLength }), fc.string({ unit: 'grapheme-ascii', maxLength }));
export const nonEmpty = (maxLength = 24): fc.Arbitrary<string> =>
  fc.oneof(fc.string({ unit: 'grapheme', minLength: 1, maxLength }), fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength }));
export const u32 = (): fc.Arbitrary<number> => fc.integer({ min: 0, max: 0xffff_ffff });
export const i32 = (): fc.Arbitrary<number> => fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff });
/** Unsigned safe integers, biased towards both ends (0 and 2^53 - 1). */
export const u64 = (): fc.Arbitrary<number> =>
  fc.oneof(fc.nat(1000), fc.maxSafeNat(), fc.integer({ min: Number.MAX_SAFE_INTEGER - 1000, max: Number.MAX_SAFE_INTEGER }));
/** Any double: NaN, ±Infinity, -0 and subnormals included. */
export const dbl = (): fc.Arbitrary<number> => fc.double();
export const strMap = (): fc.Arbitrary<Record<string, string>> =>
  fc.dictionary(str(12), str(), { maxKeys: 6, noNullPrototype: true });

const rec = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }, requiredKeys?: (keyof T)[]): fc.Arbitrary<T> =>
  (requiredKeys === undefined
    ? fc.record(model, { noNullPrototype: true })
    : fc.record(model, { noNullPrototype: true, requiredKeys })) as unknown as fc.Arbitrary<T>;

// ---------------------------------------------------------------- messages

export const deviceArb: fc.Arbitrary<Device> = rec<Device>({
  index: u32(),
  kind: fc.constantFrom(...DEVICE_KINDS),
  model: str(),
  memoryBytes: u64(),
});

export const helloArb: fc.Arbitrary<AgentHello> = rec<AgentHello>({
  node: nonEmpty(),
  devices: fc.array(deviceArb, { maxLength: 9 }),
  links: rec({
    intraNodeBytesPerSecond: dbl(),
    interNodeBytesPerSecond: dbl(),
    pcieH2dBytesPerSecond: dbl(),
    pcieD2hBytesPerSecond: dbl(),
  }),
  labels: strMap(),
  agentVersion: str(),
  sentAtMs: dbl(),
});

const utilArb: fc.Arbitrary<DeviceUtilization> = rec<DeviceUtilization>(
  { device: u32(), utilization: dbl(), memoryUsedBytes: u64() },
  ['device', 'utilization'],
);

export const heartbeatArb: fc.Arbitrary<Heartbeat> = rec<Heartbeat>({
  node: nonEmpty(),
  seq: u64(),
  sentAtMs: dbl(),
  runningRanks: u32(),
  jobs: fc.array(str(), { maxLength: 5 }),
  utilization: fc.array(utilArb, { maxLength: 8 }),
});

const placementArb: fc.Arbitrary<RankPlacement> = rec<RankPlacement>({
  rank: u32(),
  localRank: u32(),
  device: u32(),
  stage: u32(),
  dpRank: u32(),
  tpRank: u32(),
});

export const commandBodyArb: fc.Arbitrary<CommandBody> = fc.oneof(
  rec<Extract<CommandBody, { kind: 'launch' }>>({
    kind: fc.constant('launch'),
    job: nonEmpty(),
    attempt: u32(),
    planJson: fc.json({ maxDepth: 2 }),
    ranks: fc.array(placementArb, { maxLength: 8 }),
    worldSize: u32(),
    runtime: nonEmpty(),
    masterAddr: str(),
    masterPort: fc.integer({ min: 0, max: 65535 }),
    env: strMap(),
  }),
  rec<Extract<CommandBody, { kind: 'stop' }>>({
    kind: fc.constant('stop'),
    job: nonEmpty(),
    attempt: u32(),
    graceSeconds: dbl(),
    reason: str(),
  }),
  rec<Extract<CommandBody, { kind: 'status' }>>({ kind: fc.constant('status'), job: str() }, ['kind']),
);

export const commandArb: fc.Arbitrary<Command> = rec<Command>({
  id: nonEmpty(),
  epoch: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
  sentAtMs: dbl(),
  body: commandBodyArb,
});

const rankExitArb: fc.Arbitrary<RankExit> = rec<RankExit>(
  { exitCode: i32(), signal: str(), failureClass: fc.constantFrom(...FAILURE_CLASSES) },
  ['failureClass'],
);

const rankStatusArb: fc.Arbitrary<RankStatus> = rec<RankStatus>(
  { job: str(), attempt: u32(), rank: u32(), pid: u32(), state: fc.constantFrom(...RANK_STATES), exit: rankExitArb },
  ['job', 'attempt', 'rank', 'pid', 'state'],
);

const resultArb: fc.Arbitrary<ReplyResult> = fc.oneof(
  rec<Extract<ReplyResult, { kind: 'launch' }>>({
    kind: fc.constant('launch'),
    ranks: fc.array(rec({ rank: u32(), pid: u32() }), { maxLength: 8 }),
  }),
  rec<Extract<ReplyResult, { kind: 'stop' }>>({ kind: fc.constant('stop'), stoppedRanks: fc.array(u32(), { maxLength: 8 }) }),
  rec<Extract<ReplyResult, { kind: 'status' }>>({ kind: fc.constant('status'), ranks: fc.array(rankStatusArb, { maxLength: 6 }) }),
);

export const replyArb: fc.Arbitrary<CommandReply> = fc.oneof(
  rec<Extract<CommandReply, { ok: true }>>(
    { commandId: nonEmpty(), ok: fc.constant(true as const), result: resultArb },
    ['commandId', 'ok'],
  ),
  rec<Extract<CommandReply, { ok: false }>>({
    commandId: nonEmpty(),
    ok: fc.constant(false as const),
    error: rec({ code: nonEmpty(), message: str(), retryable: fc.boolean() }),
  }),
);

const stageTimeArb: fc.Arbitrary<StageTime> = rec<StageTime>({ stage: u32(), forwardSeconds: dbl(), backwardSeconds: dbl() });

export const reportBodyArb: fc.Arbitrary<ReportBody> = fc.oneof(
  rec<Extract<ReportBody, { kind: 'rankStarted' }>>({ kind: fc.constant('rankStarted'), rank: u32(), pid: u32() }),
  rec<Extract<ReportBody, { kind: 'rankExited' }>>(
    {
      kind: fc.constant('rankExited'),
      rank: u32(),
      exitCode: i32(),
      signal: str(),
      failureClass: fc.constantFrom(...FAILURE_CLASSES),
    },
    ['kind', 'rank', 'failureClass'],
  ),
  rec<Extract<ReportBody, { kind: 'stepProfile' }>>(
    {
      kind: fc.constant('stepProfile'),
      rank: u32(),
      stage: u32(),
      step: u64(),
      loss: dbl(),
      stepSeconds: dbl(),
      stageTimes: fc.array(stageTimeArb, { maxLength: 8 }),
      peakMemoryBytes: u64(),
      tokens: u64(),
    },
    ['kind', 'rank', 'stage', 'step', 'stepSeconds', 'stageTimes', 'peakMemoryBytes', 'tokens'],
  ),
  rec<Extract<ReportBody, { kind: 'logTail' }>>({
    kind: fc.constant('logTail'),
    rank: u32(),
    stream: fc.constantFrom(...LOG_STREAMS),
    lines: fc.array(str(80), { maxLength: 10 }),
    truncated: fc.boolean(),
  }),
  rec<Extract<ReportBody, { kind: 'nodeEvent' }>>({ kind: fc.constant('nodeEvent'), event: nonEmpty(), message: str() }),
);

export const reportArb: fc.Arbitrary<Report> = rec<Report>({
  id: nonEmpty(),
  job: str(),
  attempt: u32(),
  node: nonEmpty(),
  seq: u64(),
  sentAtMs: dbl(),
  body: reportBodyArb,
});

// ---------------------------------------------------------------- every envelope, for generic properties

export interface EnvelopeCodec {
  kind: FrameKind;
  arb: fc.Arbitrary<unknown>;
  encode: (msg: unknown, opts?: FrameOptions) => Uint8Array;
  decode: (bytes: Uint8Array, opts?: FrameOptions) => unknown;
}

function codec<T>(
  kind: FrameKind,
  arb: fc.Arbitrary<T>,
  encode: (m: T, o?: FrameOptions) => Uint8Array,
  decode: (b: Uint8Array, o?: FrameOptions) => T,
): EnvelopeCodec {
  return { kind, arb, encode: encode as (m: unknown, o?: FrameOptions) => Uint8Array, decode };
}

export const ENVELOPES: readonly EnvelopeCodec[] = [
  codec('command', commandArb, encodeCommand, decodeCommand),
  codec('reply', replyArb, encodeReply, decodeReply),
  codec('report', reportArb, encodeReport, decodeReport),
  codec('hello', helloArb, encodeHello, decodeHello),
  codec('heartbeat', heartbeatArb, encodeHeartbeat, decodeHeartbeat),
];

/** Runs `f` and returns the MistError it throws; fails when it returns or throws anything else. */
export function mistErrorOf(f: () => unknown): MistError {
  let result: unknown;
  try {
    result = f();
  } catch (e) {
    if (e instanceof MistError) return e;
    throw new Error(`expected a MistError, got ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`);
  }
  throw new Error(`expected a MistError, but it returned ${JSON.stringify(result)?.slice(0, 200)}`);
}
