import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  AGENTS_BUCKET,
  AGENT_COMMAND_WILDCARD,
  AGENT_HEARTBEAT_KEYS,
  AGENT_HELLO_KEYS,
  AGENT_REGISTER_SUBJECT,
  REPORTS_STREAM,
  REPORT_SUBJECT_ALL,
  agentCommandSubject,
  agentHeartbeatKey,
  agentHelloKey,
  jobReportsSubject,
  nodeReportsSubject,
  parseAgentCommandSubject,
  parseAgentKey,
  parseReportSubject,
  parseToken,
  reportSubject,
  safeToken,
} from '../../../protocol/src/index.js';
import { mistErrorOf } from './arbitraries.js';

const TOKEN = /^[A-Za-z0-9_-]+$/;
/** Any JS string: arbitrary UTF-16 (lone surrogates included), full Unicode, and NATS-hostile ASCII. */
const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: fc.constantFrom('.', '*', '>', ' ', '/', '_', '-', 'a', 'Z', '0', '\t', '%', '\u00e9', '\u{1F600}'), maxLength: 30 }),
);

describe('protocol subjects: names fixed by DESIGN.md §2', () => {
  it('builds the command, report, stream and bucket names', () => {
    assert.equal(agentCommandSubject('n1'), 'mist.v1.agent.n1.cmd');
    assert.equal(reportSubject('job-1', 'n1'), 'mist.v1.report.job-1.n1');
    assert.equal(REPORT_SUBJECT_ALL, 'mist.v1.report.>');
    assert.equal(REPORTS_STREAM, 'MIST_REPORTS');
    assert.equal(AGENTS_BUCKET, 'mist_agents');
    assert.equal(AGENT_COMMAND_WILDCARD, 'mist.v1.agent.*.cmd');
    assert.equal(AGENT_REGISTER_SUBJECT, 'mist.v1.controller.register');
    assert.equal(jobReportsSubject('j'), 'mist.v1.report.j.*');
    assert.equal(nodeReportsSubject('n'), 'mist.v1.report.*.n');
    assert.equal(agentHelloKey('n.1'), 'hello.n_2E1');
    assert.equal(agentHeartbeatKey('n.1'), 'hb.n_2E1');
    assert.equal(AGENT_HELLO_KEYS, 'hello.*');
    assert.equal(AGENT_HEARTBEAT_KEYS, 'hb.*');
  });

  it('escapes names that would break a subject', () => {
    assert.equal(agentCommandSubject('node-1.example.com'), 'mist.v1.agent.node-1_2Eexample_2Ecom.cmd');
    assert.equal(reportSubject('team-a/llama', 'n1'), 'mist.v1.report.team-a_2Fllama.n1');
    assert.equal(reportSubject('', 'n1'), 'mist.v1.report._.n1');
    assert.equal(agentCommandSubject('*'), 'mist.v1.agent._2A.cmd');
    assert.equal(agentCommandSubject('>'), 'mist.v1.agent._3E.cmd');
    assert.equal(agentCommandSubject('a b'), 'mist.v1.agent.a_20b.cmd');
    assert.equal(agentCommandSubject('a_b'), 'mist.v1.agent.a_5Fb.cmd');
    assert.equal(agentCommandSubject('é'), 'mist.v1.agent._C3_A9.cmd');
  });

  it('every built subject has exactly its intended tokens and parses back', () => {
    fc.assert(
      fc.property(anyString, anyString, (job, node) => {
        const cmd = agentCommandSubject(node);
        const rep = reportSubject(job, node);
        for (const s of [cmd, rep, jobReportsSubject(job), nodeReportsSubject(node)]) {
          assert.equal(s.split('.').length, 5, s);
          for (const t of s.split('.')) assert.ok(t === '*' || TOKEN.test(t), `bad token ${JSON.stringify(t)} in ${s}`);
        }
        assert.equal(parseAgentCommandSubject(cmd), node);
        assert.deepStrictEqual(parseReportSubject(rep), { job, node });
        assert.deepStrictEqual(parseAgentKey(agentHelloKey(node)), { kind: 'hello', node });
        assert.deepStrictEqual(parseAgentKey(agentHeartbeatKey(node)), { kind: 'heartbeat', node });
      }),
      { numRuns: 500 },
    );
  });

  it('parsers return undefined for foreign subjects and keys', () => {
    for (const s of ['mist.v1.agent.n1', 'mist.v2.agent.n1.cmd', 'mist.v1.agent.n.1.cmd', 'mist.v1.agent.a_2e.cmd', 'x.v1.agent.n.cmd']) {
      assert.equal(parseAgentCommandSubject(s), undefined, s);
    }
    for (const s of ['mist.v1.report.j', 'mist.v1.report.j.n.x', 'mist.v1.report.j.', 'mist.v1.cmd.j.n', 'mist.v1.report.j.a b']) {
      assert.equal(parseReportSubject(s), undefined, s);
    }
    for (const k of ['hello', 'x.n', 'hb.', 'hello.a.b']) assert.equal(parseAgentKey(k), undefined, k);
  });
});

describe('protocol subjects: safeToken / parseToken', () => {
  it('produces only [A-Za-z0-9_-], never empty, for any string', () => {
    fc.assert(fc.property(anyString, (s) => TOKEN.test(safeToken(s))), { numRuns: 1000 });
  });

  it('round-trips any string (lone surrogates, astral characters, empty)', () => {
    fc.assert(fc.property(anyString, (s) => parseToken(safeToken(s)) === s), { numRuns: 1000 });
    for (const s of ['', '_', '__', '.', '*', '>', ' ', '/', 'ns/name', '\u{1F600}', '\uD800', '\uDC00\uD800', '_2E']) {
      assert.equal(parseToken(safeToken(s)), s, JSON.stringify(s));
    }
  });

  it('is injective: different strings never share a token', () => {
    fc.assert(
      fc.property(anyString, anyString, (a, b) => {
        fc.pre(a !== b);
        assert.notEqual(safeToken(a), safeToken(b));
      }),
      { numRuns: 1000 },
    );
    // Near-collisions an ad-hoc escaping would merge.
    const tricky = ['', '_', '_5F', '.', '_2E', 'a.b', 'a_2Eb', 'a_b', 'a-b', 'A', 'a', '\uD83D\uDE00', '\u{1F600}'];
    assert.equal(new Set(tricky.map(safeToken)).size, new Set(tricky).size);
  });

  it('parseToken accepts exactly the canonical tokens', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('_', 'A', 'F', '2', 'E', 'C', '3', '9', 'a', '-', '.'), maxLength: 12 }), (t) => {
        let parsed: string;
        try {
          parsed = parseToken(t);
        } catch (e) {
          assert.equal(mistErrorOf(() => { throw e; }).code, 'BAD_INPUT');
          return;
        }
        assert.equal(safeToken(parsed), t);
      }),
      { numRuns: 2000 },
    );
    for (const t of ['', '__', '_41', '_2e', 'a.b', 'a b', '_ZZ', '_C3', '_C0_80', '_E0_80_80', '_ED_A0_80_ED_B0_80', '_F4_90_80_80', '_']) {
      if (t === '_') continue; // canonical form of ''
      assert.equal(mistErrorOf(() => parseToken(t)).code, 'BAD_INPUT', t);
    }
    assert.equal(parseToken('_'), '');
  });
});
