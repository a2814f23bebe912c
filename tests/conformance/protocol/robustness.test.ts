/**
 * Hostile input: whatever bytes arrive, every decoder either returns a valid message or throws a MistError with a
 * protocol code — never a TypeError/RangeError, never a hang, never a crash.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MAX_FRAME_BYTES,
  MistError,
  encodeReport,
  type Report,
} from '../../../protocol/src/index.js';
import { ENVELOPES, mistErrorOf } from '../../unit/protocol/arbitraries.js';

const DECODE_CODES = new Set(['DECODE_ERROR', 'UNSUPPORTED_VERSION']);

/** Decodes; on success the result must itself be a valid message (it re-encodes), on failure a decode MistError. */
function decodeSafely(decode: (b: Uint8Array) => unknown, encode: (m: unknown) => Uint8Array, bytes: Uint8Array): void {
  let msg: unknown;
  try {
    msg = decode(bytes);
  } catch (e) {
    assert.ok(e instanceof MistError, `threw ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`);
    assert.ok(DECODE_CODES.has(e.code), `unexpected code ${e.code}: ${e.message}`);
    return;
  }
  encode(msg); // a message the decoder accepted must be one the encoder accepts
}

describe('protocol robustness: random and mutated bytes', () => {
  for (const env of ENVELOPES) {
    it(`${env.kind}: random bytes give a typed MistError or a valid message`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => decodeSafely(env.decode, env.encode, bytes)),
        { numRuns: 2000 },
      );
    });

    it(`${env.kind}: valid frames with flipped, inserted or deleted bytes give a typed MistError or a valid message`, () => {
      const mutation = fc.record({
        at: fc.nat(),
        op: fc.constantFrom('flip', 'set', 'insert', 'delete'),
        value: fc.integer({ min: 0, max: 255 }),
      });
      fc.assert(
        fc.property(env.arb, fc.array(mutation, { minLength: 1, maxLength: 4 }), (msg, muts) => {
          const bytes = [...env.encode(msg)];
          for (const m of muts) {
            const i = bytes.length === 0 ? 0 : m.at % bytes.length;
            if (m.op === 'flip') bytes[i] = (bytes[i] ?? 0) ^ (1 << (m.value % 8));
            else if (m.op === 'set') bytes[i] = m.value;
            else if (m.op === 'insert') bytes.splice(i, 0, m.value);
            else bytes.splice(i, 1);
          }
          decodeSafely(env.decode, env.encode, Uint8Array.from(bytes));
        }),
        { numRuns: 1000 },
      );
    });
  }

  it('deeply nested unknown groups are a DECODE_ERROR, not a stack overflow', () => {
    const depth = 200_000;
    const bytes = new Uint8Array(depth).fill((9 << 3) | 3); // start-group of an unknown field 9, never closed
    for (const env of ENVELOPES) assert.equal(mistErrorOf(() => env.decode(bytes)).code, 'DECODE_ERROR', env.kind);
  });

  it('non-byte inputs are a DECODE_ERROR', () => {
    for (const env of ENVELOPES) {
      for (const v of [undefined, null, 'frame', 42, [1, 2, 3], {}, new ArrayBuffer(4)]) {
        assert.equal(mistErrorOf(() => env.decode(v as unknown as Uint8Array)).code, 'DECODE_ERROR', `${env.kind} ${String(v)}`);
      }
    }
  });

  it('a Buffer (what NATS hands over on Node) decodes like a Uint8Array', () => {
    for (const env of ENVELOPES) {
      fc.assert(
        fc.property(env.arb, (msg) => {
          assert.deepStrictEqual(env.decode(Buffer.from(env.encode(msg))), msg);
        }),
        { numRuns: 20 },
      );
    }
  });
});

describe('protocol robustness: truncation', () => {
  for (const env of ENVELOPES) {
    it(`${env.kind}: every strict prefix of a valid frame is a DECODE_ERROR`, () => {
      fc.assert(
        fc.property(env.arb, (msg) => {
          const bytes = env.encode(msg);
          for (let n = 0; n < bytes.length; n++) {
            const e = mistErrorOf(() => env.decode(bytes.subarray(0, n)));
            assert.equal(e.code, 'DECODE_ERROR', `prefix ${n}/${bytes.length}: ${e.message}`);
          }
        }),
        { numRuns: 40 },
      );
    });
  }
});

describe('protocol robustness: wrong kinds', () => {
  it('a frame of one kind is a DECODE_ERROR for every other decoder, naming both kinds', () => {
    for (const writer of ENVELOPES) {
      const bytes = writer.encode(fc.sample(writer.arb, { numRuns: 1, seed: 42 })[0]);
      for (const reader of ENVELOPES) {
        if (reader === writer) continue;
        const e = mistErrorOf(() => reader.decode(bytes));
        assert.equal(e.code, 'DECODE_ERROR');
        assert.match(e.message, new RegExp(`holds a ${writer.kind}, not a ${reader.kind}`));
      }
    }
  });
});

describe('protocol robustness: frame size limit', () => {
  const big = (bytes: number): Report => ({
    id: 'r1',
    job: 'j',
    attempt: 0,
    node: 'n',
    seq: 1,
    sentAtMs: 0,
    body: { kind: 'logTail', rank: 0, stream: 'stderr', lines: ['x'.repeat(bytes)], truncated: false },
  });

  it('encoding a frame over MAX_FRAME_BYTES is FRAME_TOO_LARGE', () => {
    const e = mistErrorOf(() => encodeReport(big(MAX_FRAME_BYTES)));
    assert.equal(e.code, 'FRAME_TOO_LARGE');
    assert.match(e.message, new RegExp(`limit is ${MAX_FRAME_BYTES}`));
  });

  it('the limit is inclusive: a frame of exactly the limit passes, one byte more fails, in both directions', () => {
    const frame = encodeReport(big(1000));
    const report = ENVELOPES.find((x) => x.kind === 'report')!;
    assert.deepStrictEqual(report.decode(frame, { maxFrameBytes: frame.length }), big(1000));
    assert.equal(report.encode(big(1000), { maxFrameBytes: frame.length }).length, frame.length);
    assert.equal(mistErrorOf(() => report.decode(frame, { maxFrameBytes: frame.length - 1 })).code, 'FRAME_TOO_LARGE');
    assert.equal(mistErrorOf(() => report.encode(big(1000), { maxFrameBytes: frame.length - 1 })).code, 'FRAME_TOO_LARGE');
  });

  it('decoding more than MAX_FRAME_BYTES is FRAME_TOO_LARGE before any parsing', () => {
    const bytes = new Uint8Array(MAX_FRAME_BYTES + 1).fill(0xff);
    for (const env of ENVELOPES) assert.equal(mistErrorOf(() => env.decode(bytes)).code, 'FRAME_TOO_LARGE', env.kind);
  });

  it('a nonsensical maxFrameBytes is BAD_INPUT', () => {
    for (const m of [0, -1, 1.5, NaN]) {
      assert.equal(mistErrorOf(() => encodeReport(big(1), { maxFrameBytes: m })).code, 'BAD_INPUT', String(m));
    }
  });
});
