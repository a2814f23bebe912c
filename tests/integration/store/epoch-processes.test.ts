/**
 * The controller epoch across processes: several controllers (child processes) taking epochs from one store at
 * the same time get distinct values, each process's values increase, and nothing is lost — on SQLite (one file,
 * file locking) and PostgreSQL (row lock). Also: a job update race between processes has exactly one winner.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../../support/paths.js';
import { BACKENDS, PG_URL, type Backend } from '../../conformance/store/backends.js';

const storeModule = pathToFileURL(join(repoRoot, 'dist', 'controller', 'src', 'plans', 'store.js')).href;

/** Runs `body` (an async function body with `store` in scope) in a fresh Node process; resolves with its stdout JSON. */
function child(openArgs: unknown[], body: string): Promise<unknown> {
  const script = `
    const { openStore } = await import(${JSON.stringify(storeModule)});
    const store = await openStore(...${JSON.stringify(openArgs)});
    try { const out = await (async () => { ${body} })(); process.stdout.write(JSON.stringify(out)); }
    finally { await store.close(); }`;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as unknown) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

for (const { name, make } of BACKENDS) {
  describe(`store across processes: ${name}`, function () {
    this.timeout(120_000);
    let backend: Backend;
    let openArgs: unknown[];

    beforeEach(async () => {
      backend = make();
      const store = await backend.open(); // creates the file/schema and migrates
      openArgs = name === 'sqlite' ? [store.location] : [PG_URL, { schema: /schema (\w+)/.exec(store.location)![1] }];
      await store.close();
    });

    afterEach(() => backend.cleanup());

    it('four processes taking 25 epochs each get 100 distinct values, increasing within each process', async () => {
      const runs = (await Promise.all(
        Array.from({ length: 4 }, () => child(openArgs, 'const xs = []; for (let i = 0; i < 25; i++) xs.push(await store.nextEpoch()); return xs;')),
      )) as number[][];
      for (const xs of runs) assert.deepEqual(xs, [...xs].sort((a, b) => a - b), 'increasing within a process');
      assert.deepEqual(runs.flat().sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1));
      const store = await backend.open();
      try {
        assert.equal(await store.nextEpoch(), 101);
      } finally {
        await store.close();
      }
    });

    it('a job update race between processes has exactly one winner', async () => {
      const store = await backend.open();
      try {
        await store.createJob({ name: 'race', spec: {} });
      } finally {
        await store.close();
      }
      const body = (who: string) => `try { await store.updateJob('race', 1, { phase: ${JSON.stringify(who)} }); return 'won'; } catch (e) { return e.code; }`;
      const results = await Promise.all(['a', 'b', 'c'].map((who) => child(openArgs, body(who))));
      assert.deepEqual([...results].sort(), ['CONFLICT', 'CONFLICT', 'won']);
      const after = await backend.open();
      try {
        assert.equal((await after.getJob('race'))?.version, 2);
      } finally {
        await after.close();
      }
    });
  });
}
