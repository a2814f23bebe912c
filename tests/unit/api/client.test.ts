import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMistError } from '../../../protocol/src/errors.js';
import { formatAge, formatBytes, renderTable, resolveClientConfig } from '../../../controller/src/cli/client.js';
import { formatJobs } from '../../../controller/src/cli/commands/jobs.js';
import { formatJobDetail } from '../../../controller/src/cli/commands/describe.js';

const A = 'aaaaaaaaaaaaaaaaaaaaaaaa';
const R = 'rrrrrrrrrrrrrrrrrrrrrrrr';

describe('client configuration', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mist-client-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('server: --server, else MIST_SERVER, else http://127.0.0.1:8470', () => {
    const env = { MIST_STATE_DIR: dir };
    assert.equal(resolveClientConfig({}, env).server, 'http://127.0.0.1:8470');
    assert.equal(resolveClientConfig({}, { ...env, MIST_SERVER: 'http://ctl:9000/' }).server, 'http://ctl:9000');
    assert.equal(resolveClientConfig({ server: 'https://mist.example.com' }, { ...env, MIST_SERVER: 'http://ctl:9000' }).server, 'https://mist.example.com');
    for (const [flags, e, re] of [
      [{ server: 'ftp://x' }, env, /^--server: "ftp:\/\/x" must be an http/],
      [{}, { ...env, MIST_SERVER: 'nope' }, /^MIST_SERVER: "nope" is not a URL/],
    ] as const) {
      assert.throws(() => resolveClientConfig(flags, e), (err: unknown) => isMistError(err) && err.code === 'BAD_INPUT' && re.test(err.message));
    }
  });

  it('token: --token, else MIST_TOKEN, else MIST_API_TOKENS, else MIST_STATE_DIR/api-tokens (admin first)', () => {
    writeFileSync(join(dir, 'api-tokens'), `${R} read viewer\n${A} admin ops\n`);
    const other = join(dir, 'other-tokens');
    writeFileSync(other, `${R} read only\n`);
    const env = { MIST_STATE_DIR: dir };
    assert.deepEqual(resolveClientConfig({}, env), { server: 'http://127.0.0.1:8470', token: A, tokenSource: join(dir, 'api-tokens') });
    assert.equal(resolveClientConfig({}, { ...env, MIST_API_TOKENS: other }).token, R, 'first token when the file has no admin');
    assert.equal(resolveClientConfig({}, { ...env, MIST_TOKEN: 'from-env' }).tokenSource, 'MIST_TOKEN');
    assert.deepEqual(resolveClientConfig({ token: 'flag' }, { ...env, MIST_TOKEN: 'from-env' }).token, 'flag');
    assert.equal(resolveClientConfig({}, { MIST_STATE_DIR: join(dir, 'none') }).token, undefined);
    writeFileSync(join(dir, 'api-tokens'), 'garbage\n');
    assert.equal(resolveClientConfig({}, env).token, undefined, 'an unreadable token file is skipped; the 401 says where it looked');
  });
});

describe('client rendering', () => {
  const now = Date.parse('2025-06-01T12:00:00Z');

  it('ages like kubectl', () => {
    assert.equal(formatAge('2025-06-01T11:59:15Z', now), '45s');
    assert.equal(formatAge('2025-06-01T11:30:00Z', now), '30m');
    assert.equal(formatAge('2025-06-01T07:00:00Z', now), '5h');
    assert.equal(formatAge('2025-05-25T12:00:00Z', now), '7d');
    assert.equal(formatAge('2025-06-01T12:00:10Z', now), '0s', 'clock skew never gives a negative age');
    assert.equal(formatAge('not a date', now), '-');
    assert.equal(formatAge(null, now), '-');
  });

  it('tables pad columns and trim line ends', () => {
    assert.equal(renderTable([['A', 'BB'], ['ccc', 'd']]), 'A    BB\nccc  d');
    assert.equal(formatBytes(80 * 1024 ** 3), '80 GiB');
    assert.equal(formatBytes(512 * 1024 ** 2), '512 MiB');
  });

  it('mist jobs rows', () => {
    const out = formatJobs([{ name: 'a', phase: 'Running', gpus: 4, planId: 'p-1', step: 3, tokensPerSecond: 999.5, restarts: 2, createdAt: '2025-06-01T11:00:00Z' }], now);
    assert.deepEqual(out.split('\n')[1].split(/\s{2,}/), ['a', 'Running', '4', 'p-1', '3', '1,000', '2', '60m']);
  });

  it('mist describe copes with conditions and events of any shape', () => {
    const text = formatJobDetail({ name: 'a', phase: 'Pending', restarts: 0, createdAt: '2025-06-01T11:59:00Z', spec: {}, status: {}, conditions: ['odd', { type: 'Queued', status: 'True' }], events: [] }, now);
    assert.match(text, /Conditions:\n\s+TYPE.*\n\s+"?odd"?\n\s+Queued\s+True\s+-\s+-\s+-/);
    assert.match(text, /Events:\n\s+<none>/);
    assert.doesNotMatch(text, /Attempts:/);
  });
});
