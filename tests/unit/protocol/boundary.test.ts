import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { FAILURE_CLASSES, isFailureClass } from '../../../protocol/src/index.js';
import { REPO_ROOT } from './arbitraries.js';

function tsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (/\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const IMPORT = /\b(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? '');
}

describe('protocol boundaries', () => {
  it('protocol/src imports nothing from the rest of the repository', () => {
    const protocolDir = join(REPO_ROOT, 'protocol');
    const files = tsFiles(join(protocolDir, 'src'));
    assert.ok(files.length >= 6, 'protocol sources found');
    for (const f of files) {
      for (const spec of imports(f)) {
        if (!spec.startsWith('.')) continue; // node: builtins and packages
        const target = resolve(dirname(f), spec);
        assert.ok(!relative(protocolDir, target).startsWith('..'), `${relative(REPO_ROOT, f)} imports ${spec} (outside protocol/)`);
      }
    }
  });

  it('only protocol/src/codec.ts imports the generated code', () => {
    const roots = ['protocol/src', 'controller/src', 'agent/src', 'bench'].map((d) => join(REPO_ROOT, d));
    for (const f of roots.flatMap(tsFiles)) {
      if (f === join(REPO_ROOT, 'protocol', 'src', 'codec.ts')) continue;
      for (const spec of imports(f)) {
        assert.ok(!/protocol\/gen\/|\.\.\/gen\/|^\.\/gen\//.test(spec) && !/mist\.v1|gen\/mist/.test(spec), `${relative(REPO_ROOT, f)} imports ${spec}`);
      }
    }
  });

  it('failure classes are exactly DESIGN.md §2', () => {
    assert.deepStrictEqual([...FAILURE_CLASSES], ['user_error', 'out_of_memory', 'node_lost', 'infra_error', 'killed', 'hung', 'unknown']);
    assert.ok(FAILURE_CLASSES.every(isFailureClass));
    for (const v of ['', 'oom', 'USER_ERROR', null, 3]) assert.equal(isFailureClass(v), false);
  });
});
