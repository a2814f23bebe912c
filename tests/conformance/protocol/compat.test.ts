/**
 * Compatibility: readers built from the committed generated code decode frames from newer and older writers
 * (simulated with protobufjs reflection over edited copies of the .proto sources), versions are enforced, and the
 * wire schema only evolves by the rules in protocol/README.md (checked against wire-manifest.txt and golden bytes).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import {
  FAILURE_CLASSES,
  PROTOCOL_VERSION,
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
  type Command,
  type CommandReply,
  type Heartbeat,
  type AgentHello,
  type Report,
} from '../../../protocol/src/index.js';
import { ENVELOPES, REPO_ROOT, addMember, mistErrorOf, protoSources, reflectFrame, reflectionRoot, wireLines } from '../../unit/protocol/arbitraries.js';

/** Sources with a newer writer's additions: new fields, enum values and oneof cases at tags v1 does not use. */
function newerSources(): Record<string, string> {
  const s = protoSources();
  let cmd = s['command.proto']!;
  cmd = addMember(cmd, 'message Command', 'string priority_class = 99;');
  cmd = addMember(cmd, 'message Command', 'repeated string tags = 98;');
  cmd = cmd.replace('    Status status = 12;\n  }\n}', '    Status status = 12;\n    Drain drain = 13;\n  }\n}');
  cmd = cmd.replace('    StatusResult status = 12;\n  }\n}', '    StatusResult status = 12;\n    DrainResult drain = 13;\n  }\n}');
  cmd += '\nmessage Drain { string reason = 1; }\nmessage DrainResult { uint32 drained = 1; }\n';
  cmd = addMember(cmd, 'message Launch', 'map<string, string> annotations = 50;');
  cmd = addMember(cmd, 'message RankPlacement', 'uint32 cp_rank = 7;');
  cmd = addMember(cmd, 'enum RankState', 'RANK_STATE_PAUSED = 5;');
  cmd = addMember(cmd, 'message CommandReply', 'double agent_epoch_seen = 20;');
  s['command.proto'] = cmd;
  s['common.proto'] = addMember(s['common.proto']!, 'enum FailureClass', 'FAILURE_CLASS_PREEMPTED = 8;');
  let agent = addMember(s['agent.proto']!, 'enum DeviceKind', 'DEVICE_KIND_TPU = 3;');
  agent = addMember(agent, 'message Device', 'string uuid = 9;');
  agent = addMember(agent, 'message Heartbeat', 'double load_average = 20;');
  s['agent.proto'] = agent;
  let report = addMember(s['report.proto']!, 'message StepProfile', 'double grad_norm = 20;');
  report = addMember(report, 'message Report', 'string trace_id = 30;');
  s['report.proto'] = report;
  s['frame.proto'] = s['frame.proto']!.replace('    Heartbeat heartbeat = 5;\n', '    Heartbeat heartbeat = 5;\n    AgentHello goodbye = 6;\n');
  return s;
}

describe('protocol compatibility: a v1 reader and a newer writer', () => {
  const newer = reflectionRoot(newerSources());

  it('the extended schema really differs (the new fields exist on the newer side only)', () => {
    assert.ok(newer.lookupType('mist.v1.Command').fields['priorityClass']);
    assert.equal(reflectionRoot().lookupType('mist.v1.Command').fields['priorityClass'], undefined);
  });

  it('ignores new fields in a command and keeps every known field intact', () => {
    const bytes = reflectFrame(newer, {
      command: {
        version: 1,
        id: 'c-9',
        epoch: 12,
        sentAtUnixMs: 5.5,
        priorityClass: 'high',
        tags: ['a', 'b'],
        launch: {
          job: 'j1',
          attempt: 3,
          planJson: '{}',
          ranks: [{ rank: 1, localRank: 1, device: 1, stage: 0, dpRank: 1, tpRank: 0, cpRank: 4 }],
          worldSize: 2,
          runtime: 'reference',
          masterAddr: 'h',
          masterPort: 29500,
          env: { A: '1' },
          annotations: { x: 'y' },
        },
      },
    });
    const expected: Command = {
      id: 'c-9',
      epoch: 12,
      sentAtMs: 5.5,
      body: {
        kind: 'launch',
        job: 'j1',
        attempt: 3,
        planJson: '{}',
        ranks: [{ rank: 1, localRank: 1, device: 1, stage: 0, dpRank: 1, tpRank: 0 }],
        worldSize: 2,
        runtime: 'reference',
        masterAddr: 'h',
        masterPort: 29500,
        env: { A: '1' },
      },
    };
    assert.deepStrictEqual(decodeCommand(bytes), expected);
  });

  it('ignores new fields in reports, hellos, heartbeats and replies', () => {
    const report = reflectFrame(newer, {
      report: {
        version: 1, id: 'r', job: 'j', attempt: 1, node: 'n', seq: 4, sentAtUnixMs: 1, traceId: 't',
        stepProfile: { rank: 0, stage: 1, step: 10, loss: 2.5, stepSeconds: 0.5, stageTimes: [], peakMemoryBytes: 1024, tokens: 4096, gradNorm: 1.25 },
      },
    });
    const r: Report = {
      id: 'r', job: 'j', attempt: 1, node: 'n', seq: 4, sentAtMs: 1,
      body: { kind: 'stepProfile', rank: 0, stage: 1, step: 10, loss: 2.5, stepSeconds: 0.5, stageTimes: [], peakMemoryBytes: 1024, tokens: 4096 },
    };
    assert.deepStrictEqual(decodeReport(report), r);

    const hello = reflectFrame(newer, {
      hello: { version: 1, node: 'n', devices: [{ index: 0, kind: 'DEVICE_KIND_GPU', model: 'm', memoryBytes: 8, uuid: 'GPU-1' }] },
    });
    assert.deepStrictEqual(decodeHello(hello).devices, [{ index: 0, kind: 'gpu', model: 'm', memoryBytes: 8 }]);

    const hb = reflectFrame(newer, { heartbeat: { version: 1, node: 'n', seq: 2, loadAverage: 3.5 } });
    const expectedHb: Heartbeat = { node: 'n', seq: 2, sentAtMs: 0, runningRanks: 0, jobs: [], utilization: [] };
    assert.deepStrictEqual(decodeHeartbeat(hb), expectedHb);

    const reply = reflectFrame(newer, { reply: { version: 1, commandId: 'c', ok: true, agentEpochSeen: 9, stop: { stoppedRanks: [1] } } });
    const expectedReply: CommandReply = { commandId: 'c', ok: true, result: { kind: 'stop', stoppedRanks: [1] } };
    assert.deepStrictEqual(decodeReply(reply), expectedReply);
  });

  it('maps enum values it does not know to unknown / other', () => {
    const exited = reflectFrame(newer, {
      report: { version: 1, id: 'r', node: 'n', rankExited: { rank: 2, exitCode: 137, signal: 'SIGKILL', failureClass: 'FAILURE_CLASS_PREEMPTED' } },
    });
    assert.deepStrictEqual(decodeReport(exited).body, { kind: 'rankExited', rank: 2, exitCode: 137, signal: 'SIGKILL', failureClass: 'unknown' });

    const status = reflectFrame(newer, {
      reply: { version: 1, commandId: 'c', ok: true, status: { ranks: [{ job: 'j', attempt: 1, rank: 0, pid: 10, state: 'RANK_STATE_PAUSED' }] } },
    });
    assert.deepStrictEqual(decodeReply(status), {
      commandId: 'c', ok: true, result: { kind: 'status', ranks: [{ job: 'j', attempt: 1, rank: 0, pid: 10, state: 'unknown' }] },
    });

    const tpu = reflectFrame(newer, { hello: { version: 1, node: 'n', devices: [{ index: 0, kind: 'DEVICE_KIND_TPU', memoryBytes: 1 }] } });
    assert.equal(decodeHello(tpu).devices[0]?.kind, 'other');
  });

  it('a command body it does not know is a DECODE_ERROR naming the command id', () => {
    const e = mistErrorOf(() => decodeCommand(reflectFrame(newer, { command: { version: 1, id: 'c-77', epoch: 1, drain: { reason: 'x' } } })));
    assert.equal(e.code, 'DECODE_ERROR');
    assert.match(e.message, /c-77/);
  });

  it('a reply result it does not know leaves result out (result is optional)', () => {
    const bytes = reflectFrame(newer, { reply: { version: 1, commandId: 'c', ok: true, drain: { drained: 3 } } });
    assert.deepStrictEqual(decodeReply(bytes), { commandId: 'c', ok: true });
  });

  it('a frame holding an envelope kind it does not know is a DECODE_ERROR', () => {
    const bytes = reflectFrame(newer, { goodbye: { version: 1, node: 'n' } });
    for (const env of ENVELOPES) {
      const e = mistErrorOf(() => env.decode(bytes));
      assert.equal(e.code, 'DECODE_ERROR');
      assert.match(e.message, /no envelope/);
    }
  });
});

describe('protocol compatibility: versions', () => {
  const root = reflectionRoot();
  const minimal: Record<string, Record<string, unknown>> = {
    command: { id: 'c', epoch: 1, status: {} },
    reply: { commandId: 'c', ok: true },
    report: { id: 'r', node: 'n', rankStarted: { rank: 0, pid: 1 } },
    hello: { node: 'n' },
    heartbeat: { node: 'n' },
  };

  it(`writes version ${PROTOCOL_VERSION} in every envelope`, () => {
    const Frame = root.lookupType('mist.v1.Frame');
    const samples: [string, Uint8Array][] = [
      ['command', encodeCommand({ id: 'c', epoch: 1, sentAtMs: 0, body: { kind: 'status' } })],
      ['reply', encodeReply({ commandId: 'c', ok: true })],
      ['report', encodeReport({ id: 'r', job: '', attempt: 0, node: 'n', seq: 0, sentAtMs: 0, body: { kind: 'nodeEvent', event: 'e', message: '' } })],
      ['hello', encodeHello({ node: 'n', devices: [], links: { intraNodeBytesPerSecond: 0, interNodeBytesPerSecond: 0, pcieH2dBytesPerSecond: 0, pcieD2hBytesPerSecond: 0 }, labels: {}, agentVersion: '', sentAtMs: 0 })],
      ['heartbeat', encodeHeartbeat({ node: 'n', seq: 0, sentAtMs: 0, runningRanks: 0, jobs: [], utilization: [] })],
    ];
    for (const [kind, bytes] of samples) {
      const obj = Frame.toObject(Frame.decode(bytes)) as Record<string, { version?: number }>;
      assert.equal(obj[kind]?.version, PROTOCOL_VERSION, kind);
    }
  });

  for (const env of ENVELOPES) {
    it(`${env.kind}: a newer major version is UNSUPPORTED_VERSION; a missing one is DECODE_ERROR; v1 decodes`, () => {
      const body = minimal[env.kind]!;
      env.decode(reflectFrame(root, { [env.kind]: { ...body, version: 1 } }));
      for (const v of [2, 7, 0xffff_ffff]) {
        const e = mistErrorOf(() => env.decode(reflectFrame(root, { [env.kind]: { ...body, version: v } })));
        assert.equal(e.code, 'UNSUPPORTED_VERSION', `version ${v}`);
        assert.match(e.message, new RegExp(`version ${v}`));
      }
      assert.equal(mistErrorOf(() => env.decode(reflectFrame(root, { [env.kind]: { ...body } }))).code, 'DECODE_ERROR');
    });
  }

  it('an older writer that sends only the required fields decodes with defaults', () => {
    const hello: AgentHello = decodeHello(reflectFrame(root, { hello: { version: 1, node: 'n' } }));
    assert.deepStrictEqual(hello, {
      node: 'n', devices: [], labels: {}, agentVersion: '', sentAtMs: 0,
      links: { intraNodeBytesPerSecond: 0, interNodeBytesPerSecond: 0, pcieH2dBytesPerSecond: 0, pcieD2hBytesPerSecond: 0 },
    });
    const r = decodeReport(reflectFrame(root, { report: { version: 1, id: 'r', node: 'n', stepProfile: {} } }));
    assert.deepStrictEqual(r.body, { kind: 'stepProfile', rank: 0, stage: 0, step: 0, stepSeconds: 0, stageTimes: [], peakMemoryBytes: 0, tokens: 0 });
  });
});

// ---------------------------------------------------------------- schema evolution rules

function reservedNumbers(root: protobuf.Root, container: string): Set<number> {
  const obj = root.lookup(container) as (protobuf.Type | protobuf.Enum | null);
  const out = new Set<number>();
  for (const r of obj?.reserved ?? []) {
    if (Array.isArray(r)) for (let i = r[0]!; i <= r[1]!; i++) out.add(i);
  }
  return out;
}

describe('protocol compatibility: schema evolution rules', () => {
  const root = reflectionRoot(protoSources(), true);
  const current = wireLines(root);
  const manifestPath = join(REPO_ROOT, 'tests', 'conformance', 'protocol', 'wire-manifest.txt');
  const manifest = readFileSync(manifestPath, 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));

  it('no tag is renumbered, retyped or reused, and removed tags are reserved', () => {
    const byKey = new Map(current.map((l) => [l.split(' ').slice(0, 2).join(' '), l]));
    const problems: string[] = [];
    for (const line of manifest) {
      if (current.includes(line)) continue;
      const [container, num] = line.split(' ');
      const now = byKey.get(`${container} ${num}`);
      if (now) problems.push(`tag changed: was "${line}", now "${now}" (never reuse or retype a tag)`);
      else if (!reservedNumbers(root, container!).has(Number(num))) problems.push(`removed without \`reserved ${num};\`: "${line}"`);
    }
    assert.deepStrictEqual(problems, []);
  });

  it('every wire entry is recorded in wire-manifest.txt (review wire changes there)', () => {
    const missing = current.filter((l) => !manifest.includes(l));
    assert.deepStrictEqual(missing, [], `append these lines to tests/conformance/protocol/wire-manifest.txt:\n${missing.join('\n')}`);
  });

  it('every enum has an UNSPECIFIED zero value, and FailureClass matches DESIGN.md §2', () => {
    for (const line of current.filter((l) => l.endsWith(' enum') && l.split(' ')[1] === '0')) {
      assert.match(line.split(' ')[2]!, /_UNSPECIFIED$/, line);
    }
    const fc = root.lookupEnum('mist.v1.FailureClass');
    const names = Object.keys(fc.values)
      .filter((n) => n !== 'FAILURE_CLASS_UNSPECIFIED')
      .map((n) => n.replace(/^FAILURE_CLASS_/, '').toLowerCase());
    assert.deepStrictEqual(names, [...FAILURE_CLASSES]);
  });
});

// ---------------------------------------------------------------- golden bytes

describe('protocol compatibility: golden frames', () => {
  const golden: [string, () => Uint8Array, string][] = [
    [
      'launch command',
      () =>
        encodeCommand({
          id: 'cmd-1', epoch: 7, sentAtMs: 1000,
          body: {
            kind: 'launch', job: 'ns/j', attempt: 1, planJson: '{}', worldSize: 2, runtime: 'reference',
            ranks: [{ rank: 1, localRank: 1, device: 1, stage: 0, dpRank: 1, tpRank: 0 }],
            masterAddr: 'h', masterPort: 29500, env: { A: 'b' },
          },
        }),
      '0a4808011205636d642d311807210000000000408f4052320a046e732f6a10011a027b7d22080801100118012801280232097265666572656e63653a016840bce6014a060a0141120162',
    ],
    [
      'rank exited report',
      () =>
        encodeReport({
          id: 'r-1', job: 'ns/j', attempt: 1, node: 'n1', seq: 3, sentAtMs: 2000,
          body: { kind: 'rankExited', rank: 1, exitCode: 137, signal: 'SIGKILL', failureClass: 'out_of_memory' },
        }),
      '1a3008011203722d311a046e732f6a20012a026e313003390000000000409f405a1008011089011a075349474b494c4c2002',
    ],
    ['failed reply', () => encodeReply({ commandId: 'cmd-1', ok: false, error: { code: 'STALE_EPOCH', message: 'epoch 7 < 9', retryable: false } }), '122508011205636d642d31221a0a0b5354414c455f45504f4348120b65706f63682037203c2039'],
  ];

  for (const [name, make, hex] of golden) {
    it(`${name} encodes to the recorded bytes (wire format unchanged)`, () => {
      assert.equal(Buffer.from(make()).toString('hex'), hex);
    });
  }
});
