import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SUBCOMMANDS } from '../../../controller/src/cli/program.js';
import { runMist } from '../../support/cli.js';
import { repoRoot } from '../../support/paths.js';

const DESIGN_SUBCOMMANDS = ['up', 'plan', 'predict', 'run-local', 'controller', 'agent', 'submit', 'jobs', 'describe', 'plans', 'nodes', 'logs', 'cancel'];

describe('mist CLI basics', () => {
  it('--help lists every subcommand of DESIGN.md §2 and the exit codes', () => {
    const r = runMist(['--help']);
    assert.equal(r.code, 0);
    for (const name of DESIGN_SUBCOMMANDS) assert.match(r.stdout, new RegExp(`^\\s+${name}\\b`, 'm'), `--help misses ${name}`);
    assert.match(r.stdout, /2 bad input, 3 infeasible/);
    assert.deepEqual(SUBCOMMANDS.map((s) => s.name).sort(), [...DESIGN_SUBCOMMANDS].sort());
  });

  it('--version prints the package version', () => {
    const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
    const r = runMist(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), version);
  });

  it('a subcommand missing a required setting names it and exits 2, without a stack trace', () => {
    const r = runMist(['controller'], { env: { MIST_NATS_URL: '' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--nats/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  it('with --json an error is exactly one JSON document on stdout', () => {
    const r = runMist(['jobs', '--server', 'not a url', '--json']);
    assert.equal(r.code, 2);
    const doc = JSON.parse(r.stdout) as { error: { code: string } };
    assert.equal(doc.error.code, 'BAD_INPUT');
  });

  it('mist up refuses to start local agents whose python cannot import torch, naming it and the fix (exit 1, nothing started)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mist-up-notorch-'));
    try {
      // an interpreter that behaves like a python without torch
      const fake = join(dir, 'python3');
      writeFileSync(fake, '#!/bin/sh\necho "ModuleNotFoundError: No module named \'torch\'" >&2\nexit 1\n');
      chmodSync(fake, 0o755);
      const r = runMist(['up', '--demo', '--once'], { env: { MIST_PYTHON: fake, MIST_STATE_DIR: join(dir, 'state') } });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /needs PyTorch.*python3 cannot import torch \(ModuleNotFoundError: No module named 'torch'\).*apt-get install python3-torch.*MIST_PYTHON/);
      assert.doesNotMatch(r.stderr, /nats-server on/, 'checked before anything starts');
      const missing = runMist(['up', '--demo', '--once'], { env: { MIST_PYTHON: join(dir, 'nope'), MIST_STATE_DIR: join(dir, 'state') } });
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /nope cannot import torch \(.*ENOENT\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unknown subcommand or option is bad input (exit 2)', () => {
    assert.equal(runMist(['frobnicate']).code, 2);
    assert.equal(runMist(['--no-such-flag']).code, 2);
    assert.equal(runMist(['predict', '--no-such-flag']).code, 2, 'subcommands inherit the exit override');
    assert.equal(runMist(['plans', 'show']).code, 2, 'a missing argument');
  });
});
