import assert from 'node:assert/strict';
import { ERROR_CODES, MistError, badInput, isMistError, type ErrorCode } from '../../../protocol/src/errors.js';
import { createMetrics } from '../../../controller/src/api/metrics.js';
import { HTTP_STATUS, decodeJobBody, errorBody, fieldOf, parseHttpAddr } from '../../../controller/src/api/server.js';
import { TERMINAL_PHASES, isTerminalPhase } from '../../../controller/src/api/service.js';

const body = (s: string | Uint8Array) => Buffer.from(s as string);

describe('api server helpers', () => {
  it('every error code has an HTTP status; the client-side ones are 4xx', () => {
    assert.deepEqual(Object.keys(HTTP_STATUS).sort(), Object.keys(ERROR_CODES).sort());
    const expect: Partial<Record<ErrorCode, number>> = { BAD_INPUT: 400, NOT_FOUND: 404, CONFLICT: 409, UNAUTHENTICATED: 401, FORBIDDEN: 403, UNAVAILABLE: 503, INTERNAL: 500 };
    for (const [code, status] of Object.entries(expect)) assert.equal(HTTP_STATUS[code as ErrorCode], status, code);
  });

  it('error bodies carry code, message, retryable and the field of a BAD_INPUT', () => {
    assert.deepEqual(errorBody(badInput('spec.resources.gpus', 'must be ≥ 1')), { error: { code: 'BAD_INPUT', message: 'spec.resources.gpus: must be ≥ 1', retryable: false, field: 'spec.resources.gpus' } });
    assert.equal(fieldOf(badInput('stages[1].layers', 'x')), 'stages[1].layers');
    assert.equal(fieldOf(badInput('--tp', 'x')), '--tp');
    assert.equal(fieldOf(new MistError('BAD_INPUT', 'the spec is odd: very')), undefined, 'a sentence is not a field');
    assert.equal(fieldOf(new MistError('NOT_FOUND', 'job: x')), undefined);
    const withField = Object.assign(new MistError('BAD_INPUT', 'odd'), { field: 'metadata.name' });
    assert.equal(fieldOf(withField), 'metadata.name');
    assert.deepEqual(errorBody(new MistError('CONFLICT', 'taken')), { error: { code: 'CONFLICT', message: 'taken', retryable: true } });
  });

  it('decodeJobBody picks the format by Content-Type, sniffs without one, and rejects bad documents', () => {
    assert.deepEqual(decodeJobBody(body('{"a":1}'), 'application/json'), { text: '{"a":1}', format: 'json' });
    assert.deepEqual(decodeJobBody(body('a: 1\n'), 'application/yaml'), { text: 'a: 1\n', format: 'yaml' });
    assert.equal(decodeJobBody(body('a: 1'), 'text/x-yaml').format, 'yaml');
    assert.equal(decodeJobBody(body('{"a":1}'), 'application/merge-patch+json').format, 'json');
    assert.equal(decodeJobBody(body(' {"a":1}'), '').format, 'json');
    assert.equal(decodeJobBody(body('a: 1'), 'text/plain').format, 'yaml');
    assert.equal(decodeJobBody(body('{"a": 1}'), 'application/yaml').format, 'yaml', 'JSON is YAML too');
    const bad: Array<[string | Uint8Array, string, RegExp]> = [
      ['{', 'application/json', /^body: is not valid JSON/],
      ['a: [', 'application/yaml', /^body: is not valid YAML \(/],
      ['a: *nope', 'application/yaml', /^body: /],
      ['---\na: 1\n---\nb: 2\n', 'application/yaml', /^body: expected one YAML document, got 2$/],
      ['', 'application/json', /^body: is empty/],
      ['null', 'application/json', /expected a MistJob object/],
      ['- a\n- b\n', 'application/yaml', /expected a MistJob object/],
      [new Uint8Array([0xc3, 0x28]), 'application/json', /^body: is not valid UTF-8$/],
      ['<x/>', 'text/html', /^Content-Type: "text\/html" is not supported/],
    ];
    for (const [text, type, re] of bad) {
      assert.throws(() => decodeJobBody(Buffer.from(text as string), type), (e: unknown) => isMistError(e) && e.code === 'BAD_INPUT' && re.test(e.message), `${type} ${String(text)}`);
    }
  });

  it('a YAML alias bomb is refused instead of expanded', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    assert.throws(() => decodeJobBody(Buffer.from(lines.join('\n')), 'application/yaml'), (e: unknown) => isMistError(e) && e.code === 'BAD_INPUT');
  });

  it('parseHttpAddr reads HOST:PORT, [v6]:PORT, :PORT and PORT; rejects the rest naming MIST_HTTP_ADDR', () => {
    assert.deepEqual(parseHttpAddr('127.0.0.1:8470'), { host: '127.0.0.1', port: 8470 });
    assert.deepEqual(parseHttpAddr('[::1]:9000'), { host: '::1', port: 9000 });
    assert.deepEqual(parseHttpAddr(':8470'), { host: '0.0.0.0', port: 8470 });
    assert.deepEqual(parseHttpAddr('8470'), { host: '0.0.0.0', port: 8470 });
    assert.deepEqual(parseHttpAddr('localhost:0'), { host: 'localhost', port: 0 });
    for (const bad of ['', 'host', 'host:99999', 'a:b:c', 'http://x:1']) {
      assert.throws(() => parseHttpAddr(bad), (e: unknown) => isMistError(e) && e.code === 'BAD_INPUT' && e.message.startsWith('MIST_HTTP_ADDR:'), bad);
    }
  });

  it('terminal phases', () => {
    assert.deepEqual([...TERMINAL_PHASES], ['Succeeded', 'Failed', 'Cancelled']);
    assert.equal(isTerminalPhase('Running'), false);
    assert.equal(isTerminalPhase('Failed'), true);
  });
});

describe('api metrics', () => {
  it('two registries in one process do not collide; unknown methods are folded into OTHER', async () => {
    const m1 = createMetrics({ version: '1.2.3', defaultMetrics: false });
    const m2 = createMetrics({ version: '1.2.3' });
    m1.observeRequest('BREW', '/api/v1/jobs', 405, 0.002);
    m1.observeRequest('GET', '/api/v1/jobs', 200, 0.02);
    const { contentType, body: text } = await m1.render();
    assert.match(contentType, /^text\/plain/);
    assert.match(text, /^mist_http_requests_total\{method="OTHER",route="\/api\/v1\/jobs",code="405"\} 1$/m);
    assert.match(text, /^mist_http_request_duration_seconds_bucket\{le="0\.025",method="GET",route="\/api\/v1\/jobs",code="200"\} 1$/m);
    assert.match(text, /^mist_http_request_duration_seconds_bucket\{le="0\.01",method="GET",route="\/api\/v1\/jobs",code="200"\} 0$/m);
    assert.doesNotMatch(text, /^process_/m, 'no default metrics when turned off');
    assert.match((await m2.render()).body, /^process_cpu_user_seconds_total /m);
    assert.doesNotMatch((await m2.render()).body, /mist_http_requests_total\{/, 'registries are separate');
  });
});
