import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './arbitraries.js';

describe('protocol generated code', () => {
  let out: string;
  before(() => {
    out = mkdtempSync(join(tmpdir(), 'mist-proto-test-'));
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  it('protocol/gen/mist.js and mist.d.ts are exactly what scripts/gen-proto.mjs generates from the .proto files', () => {
    execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'gen-proto.mjs'), '--out', out], { cwd: REPO_ROOT, stdio: 'pipe' });
    for (const f of ['mist.js', 'mist.d.ts']) {
      const fresh = readFileSync(join(out, f), 'utf8');
      const committed = readFileSync(join(REPO_ROOT, 'protocol', 'gen', f), 'utf8');
      assert.ok(fresh.length > 1000, `${f} was generated`);
      assert.ok(
        fresh === committed,
        `protocol/gen/${f} is stale: run \`npm run proto:gen\` and commit the result`,
      );
    }
  });

  it('generation is deterministic (a second run into another directory is byte-identical)', () => {
    const again = mkdtempSync(join(tmpdir(), 'mist-proto-test-'));
    try {
      execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'gen-proto.mjs'), '--out', again], { cwd: REPO_ROOT, stdio: 'pipe' });
      for (const f of ['mist.js', 'mist.d.ts']) {
        assert.ok(readFileSync(join(again, f), 'utf8') === readFileSync(join(out, f), 'utf8'), f);
      }
    } finally {
      rmSync(again, { recursive: true, force: true });
    }
  });
});
