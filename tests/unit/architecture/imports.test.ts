import assert from 'node:assert/strict';
import { checkRepo, checkSource } from '../../support/architecture.js';
import { repoRoot } from '../../support/paths.js';

describe('architecture: one-way import rules (docs/architecture.md)', () => {
  it('the repository has no forbidden import, impure call in a pure module, or stray subject literal', () => {
    const violations = checkRepo(repoRoot);
    assert.deepEqual(violations.map((v) => `${v.file}:${v.line} [${v.rule}] ${v.detail}`), []);
  });

  const cases: Array<{ name: string; file: string; text: string; rule: string | null }> = [
    { name: 'tuner importing node:fs', file: 'controller/src/tuner/x.ts', text: "import { readFileSync } from 'node:fs';", rule: 'pure-modules' },
    { name: 'tuner importing the bus', file: 'controller/src/tuner/x.ts', text: "import { a } from '../bus/registry.js';", rule: 'pure-modules' },
    { name: 'tuner reading the clock', file: 'controller/src/tuner/x.ts', text: 'export const t = Date.now();', rule: 'pure-modules' },
    { name: 'scheduler using randomness', file: 'controller/src/scheduler/x.ts', text: 'export const r = Math.random();', rule: 'pure-modules' },
    { name: 'agent importing the controller', file: 'agent/src/x.ts', text: "import { a } from '../../controller/src/domain/plan.js';", rule: 'agent-never-imports-controller' },
    { name: 'protocol importing the controller', file: 'protocol/src/x.ts', text: "export { a } from '../../controller/src/domain/plan.js';", rule: 'protocol-imports-nothing' },
    { name: 'dynamic import from domain into the api', file: 'controller/src/domain/x.ts', text: "const m = await import('../api/server.js');", rule: 'domain-is-plain' },
    { name: 'subject literal outside subjects.ts', file: 'controller/src/bus/x.ts', text: "const s = 'mist.v1.agent.n1.cmd';", rule: 'subjects-in-one-file' },
    { name: 'tuner importing domain and errors', file: 'controller/src/tuner/x.ts', text: "import type { Plan } from '../domain/plan.js';\nimport { badInput } from '../../../protocol/src/errors.js';", rule: null },
    { name: 'a clock word inside a comment', file: 'controller/src/tuner/x.ts', text: '// never call Date.now() here\nexport const x = 1;', rule: null },
    { name: 'agent importing protocol', file: 'agent/src/x.ts', text: "import { encodeCommand } from '../../protocol/src/codec.js';", rule: null },
  ];
  for (const c of cases) {
    it(`${c.rule ? 'rejects' : 'allows'} ${c.name}`, () => {
      const rules = checkSource(c.file, c.text).map((v) => v.rule);
      if (c.rule) assert.ok(rules.includes(c.rule), `expected a ${c.rule} violation, got ${JSON.stringify(rules)}`);
      else assert.deepEqual(rules, []);
    });
  }
});
