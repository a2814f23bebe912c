import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  decodeCommand,
  decodeHello,
  decodeReply,
  decodeReport,
  encodeCommand,
  encodeHeartbeat,
  encodeHello,
  encodeReply,
  encodeReport,
  frameKind,
  type AgentHello,
  type Command,
  type Report,
} from '../../../protocol/src/index.js';
import {
  ENVELOPES,
  commandArb,
  mistErrorOf,
  reflectFrame,
  reflectionRoot,
  reportArb,
} from './arbitraries.js';

const launch: Command = {
  id: 'cmd-1',
  epoch: 7,
  sentAtMs: 1_700_000_000_123.5,
  body: {
    kind: 'launch',
    job: 'team-a/llama',
    attempt: 2,
    planJson: '{"version":1}',
    ranks: [{ rank: 0, localRank: 0, device: 0, stage: 0, dpRank: 0, tpRank: 0 }],
    worldSize: 8,
    runtime: 'reference',
    masterAddr: '10.0.0.1',
    masterPort: 29500,
    env: { NCCL_DEBUG: 'WARN' },
  },
};

const hello: AgentHello = {
  node: 'gpu-node-1.example.com',
  devices: [{ index: 0, kind: 'gpu', model: 'NVIDIA H100 80GB HBM3', memoryBytes: 85_899_345_920 }],
  links: { intraNodeBytesPerSecond: 450e9, interNodeBytesPerSecond: 50e9, pcieH2dBytesPerSecond: 25e9, pcieD2hBytesPerSecond: 24e9 },
  labels: { zone: 'a' },
  agentVersion: '0.1.0',
  sentAtMs: 1,
};

describe('protocol codec: round trips', () => {
  for (const env of ENVELOPES) {
    it(`every ${env.kind} survives encode -> decode unchanged`, () => {
      fc.assert(
        fc.property(env.arb, (msg) => {
          assert.deepStrictEqual(env.decode(env.encode(msg)), msg);
        }),
        { numRuns: 300 },
      );
    });
  }

  it('a known launch command round-trips and is a compact frame', () => {
    const bytes = encodeCommand(launch);
    assert.ok(bytes.length < 200, `launch frame is ${bytes.length} bytes`);
    assert.deepStrictEqual(decodeCommand(bytes), launch);
  });

  it('keeps a map key named __proto__ as an ordinary entry', () => {
    const labels = JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>;
    const out = decodeHello(encodeHello({ ...hello, labels }));
    assert.deepStrictEqual(Object.keys(out.labels).sort(), ['__proto__', 'a']);
    assert.equal(Object.getPrototypeOf(out.labels), Object.prototype);
    assert.equal(out.labels['__proto__'], 'x');
  });

  it('replaces lone UTF-16 surrogates (no UTF-8 form) with U+FFFD instead of writing an unreadable frame', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 20 }), (s) => {
        const r: Report = { id: `r${s}`, job: s, attempt: 0, node: 'n', seq: 1, sentAtMs: 0, body: { kind: 'nodeEvent', event: 'e', message: s } };
        const out = decodeReport(encodeReport(r));
        const wf = (x: string): string => (x as unknown as { toWellFormed(): string }).toWellFormed();
        assert.equal(out.job, wf(s));
        assert.equal(out.id, wf(`r${s}`));
        assert.equal(out.body.kind === 'nodeEvent' && out.body.message, wf(s));
      }),
    );
  });

  it('frameKind names the envelope of any valid frame', () => {
    for (const env of ENVELOPES) {
      fc.assert(fc.property(env.arb, (msg) => frameKind(env.encode(msg)) === env.kind), { numRuns: 20 });
    }
    assert.equal(frameKind(new Uint8Array([0xff, 0xff])), undefined);
  });
});

describe('protocol codec: commands carry id and epoch', () => {
  it('refuses to encode a command with a missing or empty id (BAD_INPUT)', () => {
    fc.assert(
      fc.property(commandArb, fc.constantFrom<unknown>('', undefined, null, 5), (cmd, id) => {
        const e = mistErrorOf(() => encodeCommand({ ...cmd, id } as unknown as Command));
        assert.equal(e.code, 'BAD_INPUT');
        assert.match(e.message, /command\.id/);
      }),
      { numRuns: 50 },
    );
  });

  it('refuses to encode a command whose epoch is not an integer >= 1 (BAD_INPUT)', () => {
    const badEpochs: unknown[] = [0, -1, 1.5, NaN, Infinity, Number.MAX_SAFE_INTEGER + 1, '3', undefined, null];
    fc.assert(
      fc.property(commandArb, fc.constantFrom(...badEpochs), (cmd, epoch) => {
        const e = mistErrorOf(() => encodeCommand({ ...cmd, epoch } as unknown as Command));
        assert.equal(e.code, 'BAD_INPUT');
        assert.match(e.message, /command\.epoch/);
      }),
      { numRuns: 50 },
    );
  });

  it('rejects a frame whose command lacks an id or an epoch (DECODE_ERROR)', () => {
    const root = reflectionRoot();
    const base = { version: PROTOCOL_VERSION, id: 'c1', epoch: 3, status: {} };
    assert.deepStrictEqual(decodeCommand(reflectFrame(root, { command: base })), { id: 'c1', epoch: 3, sentAtMs: 0, body: { kind: 'status' } });
    for (const [field, frame] of [
      ['id', { command: { ...base, id: '' } }],
      ['epoch', { command: { ...base, epoch: 0 } }],
      ['body', { command: { version: 1, id: 'c1', epoch: 3 } }],
    ] as const) {
      const e = mistErrorOf(() => decodeCommand(reflectFrame(root, frame)));
      assert.equal(e.code, 'DECODE_ERROR', field);
      assert.match(e.message, new RegExp(field === 'body' ? 'no body' : field), field);
    }
  });

  it('rejects launch/stop without a job, and launch without a runtime', () => {
    const cases: [string, () => unknown][] = [
      ['launch.job', () => encodeCommand({ ...launch, body: { ...launch.body, job: '' } } as Command)],
      ['launch.runtime', () => encodeCommand({ ...launch, body: { ...launch.body, runtime: '' } } as Command)],
      ['stop.job', () => encodeCommand({ ...launch, body: { kind: 'stop', job: '', attempt: 0, graceSeconds: 1, reason: '' } })],
      ['port', () => encodeCommand({ ...launch, body: { ...launch.body, masterPort: 70000 } } as Command)],
      ['rank', () => encodeCommand({ ...launch, body: { ...launch.body, ranks: [{ rank: -1 }] } } as unknown as Command)],
      ['kind', () => encodeCommand({ ...launch, body: { kind: 'reboot' } } as unknown as Command)],
    ];
    for (const [name, f] of cases) assert.equal(mistErrorOf(f).code, 'BAD_INPUT', name);
  });
});

describe('protocol codec: other envelope rules', () => {
  it('a failed reply must carry an error (BAD_INPUT on encode, DECODE_ERROR on decode)', () => {
    assert.equal(mistErrorOf(() => encodeReply({ commandId: 'c', ok: false } as never)).code, 'BAD_INPUT');
    const frame = reflectFrame(reflectionRoot(), { reply: { version: 1, commandId: 'c', ok: false } });
    assert.equal(mistErrorOf(() => decodeReply(frame)).code, 'DECODE_ERROR');
    // ...and that error needs a code (found by the mutation property in the robustness test).
    assert.equal(mistErrorOf(() => encodeReply({ commandId: 'c', ok: false, error: { code: '', message: 'm', retryable: false } })).code, 'BAD_INPUT');
    const noCode = reflectFrame(reflectionRoot(), { reply: { version: 1, commandId: 'c', ok: false, error: { message: 'm' } } });
    assert.equal(mistErrorOf(() => decodeReply(noCode)).code, 'DECODE_ERROR');
  });

  it('reports, hellos and heartbeats need their identifying fields', () => {
    fc.assert(
      fc.property(reportArb, (r) => {
        assert.equal(mistErrorOf(() => encodeReport({ ...r, id: '' })).code, 'BAD_INPUT');
        assert.equal(mistErrorOf(() => encodeReport({ ...r, node: '' })).code, 'BAD_INPUT');
      }),
      { numRuns: 30 },
    );
    assert.equal(mistErrorOf(() => encodeHello({ ...hello, node: '' })).code, 'BAD_INPUT');
    assert.equal(
      mistErrorOf(() => encodeHeartbeat({ node: 'n', seq: -1, sentAtMs: 0, runningRanks: 0, jobs: [], utilization: [] })).code,
      'BAD_INPUT',
    );
    const root = reflectionRoot();
    assert.equal(mistErrorOf(() => decodeReport(reflectFrame(root, { report: { version: 1, node: 'n', nodeEvent: { kind: 'k' } } }))).code, 'DECODE_ERROR');
    assert.equal(mistErrorOf(() => decodeHello(reflectFrame(root, { hello: { version: 1 } }))).code, 'DECODE_ERROR');
  });

  it('maps 64-bit integers to JS numbers, refusing values beyond Number.MAX_SAFE_INTEGER', () => {
    const root = reflectionRoot();
    const max = decodeCommand(reflectFrame(root, { command: { version: 1, id: 'c', epoch: String(Number.MAX_SAFE_INTEGER), status: {} } }));
    assert.equal(max.epoch, Number.MAX_SAFE_INTEGER);
    assert.equal(typeof max.epoch, 'number');
    for (const big of ['9007199254740992', '18446744073709551615']) {
      const e = mistErrorOf(() => decodeCommand(reflectFrame(root, { command: { version: 1, id: 'c', epoch: big, status: {} } })));
      assert.equal(e.code, 'DECODE_ERROR');
      assert.match(e.message, /2\^53/);
    }
    const bigTokens = reflectFrame(root, {
      report: { version: 1, id: 'r', node: 'n', stepProfile: { tokens: '9007199254740993' } },
    });
    assert.equal(mistErrorOf(() => decodeReport(bigTokens)).code, 'DECODE_ERROR');
  });

  it('exports the protocol constants', () => {
    assert.equal(PROTOCOL_VERSION, 1);
    assert.equal(MAX_FRAME_BYTES, 1024 * 1024);
  });
});
