import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES, MistError, badInput, type ErrorCode } from '../../../protocol/src/errors.js';
import { repoRoot } from '../../support/paths.js';

describe('errors', () => {
  it('docs/errors.md lists every code, and only codes that exist', () => {
    const doc = readFileSync(join(repoRoot, 'docs', 'errors.md'), 'utf8');
    const documented = [...doc.matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((m) => m[1]).sort();
    assert.deepEqual(documented, Object.keys(ERROR_CODES).sort());
  });

  it('docs/errors.md states each code\'s retryable flag and exit status as the code does', () => {
    const doc = readFileSync(join(repoRoot, 'docs', 'errors.md'), 'utf8');
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\``));
      assert.ok(row, code);
      const cells = row.split('|').map((c) => c.trim());
      assert.equal(cells[2], info.retryable ? 'yes' : 'no', `${code} retryable`);
      assert.equal(cells[3], String(info.exit), `${code} exit`);
    }
  });

  it('carries code, retryable flag, exit status and cause', () => {
    const cause = new Error('socket closed');
    const e = new MistError('UNAVAILABLE', 'nats did not answer', { cause });
    assert.equal(e.code, 'UNAVAILABLE');
    assert.equal(e.retryable, true);
    assert.equal(e.exitCode, 1);
    assert.equal(e.cause, cause);
    assert.ok(e instanceof Error);
    const codes: ErrorCode[] = ['BAD_INPUT', 'INFEASIBLE'];
    assert.deepEqual(codes.map((c) => new MistError(c, 'x').exitCode), [2, 3]);
  });

  it('badInput names the field and what would be valid', () => {
    const e = badInput('--zero', 'must be 0..3, got 5', 'valid: 0, 1, 2, 3');
    assert.equal(e.code, 'BAD_INPUT');
    assert.equal(e.message, '--zero: must be 0..3, got 5; valid: 0, 1, 2, 3');
    assert.deepEqual(e.toJSON(), { code: 'BAD_INPUT', message: e.message, retryable: false });
  });
});
