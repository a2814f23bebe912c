/** Unit tests of the controller bus: seq tracking, registry sweep with an injected clock, epoch store, config. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeHeartbeat, encodeHello } from '../../../protocol/src/codec.js';
import { agentHeartbeatKey, agentHelloKey, agentCommandSubject, nodeReportsSubject } from '../../../protocol/src/subjects.js';
import { SeqTracker } from '../../../controller/src/bus/reports.js';
import { AgentRegistry, type RegistryEvent } from '../../../controller/src/bus/registry.js';
import { FileEpochStore } from '../../../controller/src/bus/epoch.js';
import { agentPermissions, natsServerConfig } from '../../../controller/src/bus/security.js';
import { ranksByNode } from '../../../controller/src/bus/launcher.js';

describe('bus SeqTracker', () => {
  it('drops repeats, accepts out-of-order, counts gaps', () => {
    const t = new SeqTracker();
    assert.equal(t.isDuplicate(1), false);
    assert.equal(t.mark(1), false);
    assert.equal(t.isDuplicate(1), true);
    assert.equal(t.mark(3), true, 'gap before 3');
    assert.equal(t.isDuplicate(3), true);
    assert.equal(t.isDuplicate(2), false, 'the late one is not a duplicate');
    t.mark(2);
    assert.equal(t.isDuplicate(2), true);
    assert.equal(t.highest, 3);
    t.markId('abc');
    assert.equal(t.isDuplicate(99, 'abc'), true);
  });
  it('starts from the first seq it sees (a fresh controller)', () => {
    const t = new SeqTracker();
    t.mark(57);
    assert.equal(t.isDuplicate(56), true);
    assert.equal(t.mark(58), false);
  });
});

describe('bus AgentRegistry (injected clock)', () => {
  const hello = (node: string) => encodeHello({ node, devices: [], links: { intraNodeBytesPerSecond: 0, interNodeBytesPerSecond: 0, pcieH2dBytesPerSecond: 0, pcieD2hBytesPerSecond: 0 }, labels: {}, agentVersion: 't', sentAtMs: 0 });
  const hb = (node: string, seq: number) => encodeHeartbeat({ node, seq, sentAtMs: 0, runningRanks: 0, jobs: [], utilization: [] });

  it('marks a node lost after the timeout and alive again on a heartbeat', () => {
    let now = 1000;
    const r = new AgentRegistry(undefined, { lostAfterMs: 5000, sweepEveryMs: 0, now: () => now });
    const events: RegistryEvent['type'][] = [];
    r.on((e) => events.push(e.type));
    r.ingest(agentHelloKey('n.1'), hello('n.1'));
    r.ingest(agentHeartbeatKey('n.1'), hb('n.1', 1));
    now += 5000;
    assert.deepEqual(r.sweep(), []);
    now += 1;
    assert.deepEqual(r.sweep(), ['n.1']);
    assert.deepEqual(r.sweep(), [], 'lost once');
    assert.equal(r.get('n.1')!.state, 'lost');
    r.ingest(agentHeartbeatKey('n.1'), hb('n.1', 2));
    assert.equal(r.get('n.1')!.state, 'alive');
    assert.deepEqual(events, ['registered', 'lost', 'recovered']);
  });

  it('counts and ignores malformed values and keys', () => {
    const r = new AgentRegistry(undefined, { lostAfterMs: 1000, sweepEveryMs: 0, now: () => 0 });
    r.ingest(agentHeartbeatKey('x'), new Uint8Array([1, 2, 3]));
    r.ingest('nonsense', hb('x', 1));
    r.ingest(agentHeartbeatKey('y'), hb('z', 1));
    assert.equal(r.stats.malformed, 3);
    assert.deepEqual(r.nodes(), []);
  });
});

describe('bus FileEpochStore', () => {
  it('increments durably across instances', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mist-epoch-'));
    try {
      const f = join(dir, 'sub', 'epoch.json');
      assert.equal(await new FileEpochStore(f).current(), 0);
      assert.equal(await new FileEpochStore(f).acquire(), 1);
      assert.equal(await new FileEpochStore(f).acquire(), 2);
      writeFileSync(f, '{"epoch": -1}');
      await assert.rejects(new FileEpochStore(f).acquire(), /not a non-negative integer/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bus security config', () => {
  it('confines an agent to its own subjects', () => {
    const p = agentPermissions('gpu.node-1');
    assert.ok(p.subscribe.includes(agentCommandSubject('gpu.node-1')));
    assert.ok(!p.subscribe.includes(agentCommandSubject('other')));
    assert.ok(p.publish.includes(nodeReportsSubject('gpu.node-1')));
    assert.ok(!p.publish.some((s) => s.includes('.agent.')), 'agents publish no commands');
    assert.equal(p.allowResponses, true);
  });
  it('writes a server config with every user', () => {
    const conf = natsServerConfig({ port: 4222, storeDir: '/var/lib/nats', controller: { user: 'c', password: 'p' }, agents: [{ node: 'n1', user: 'a1', password: 'q' }], tls: { certFile: '/c.pem', keyFile: '/k.pem', caFile: '/ca.pem', verify: true } });
    assert.match(conf, /user: "c"/);
    assert.match(conf, /user: "a1".*allow_responses: true/);
    assert.match(conf, /tls \{ cert_file: "\/c.pem", key_file: "\/k.pem", ca_file: "\/ca.pem", verify: true \}/);
    assert.match(conf, /jetstream \{ store_dir: "\/var\/lib\/nats" \}/);
  });
});

describe('bus ranksByNode', () => {
  it('numbers local ranks by device within each node', () => {
    const m = ranksByNode([
      { rank: 0, node: 'b', device: 1, stage: 0, dpRank: 0, tpRank: 0 },
      { rank: 1, node: 'a', device: 0, stage: 0, dpRank: 1, tpRank: 0 },
      { rank: 2, node: 'b', device: 0, stage: 1, dpRank: 0, tpRank: 1 },
    ]);
    assert.deepEqual(m.get('b')!.map((r) => [r.rank, r.localRank, r.device]), [[2, 0, 0], [0, 1, 1]]);
    assert.deepEqual(m.get('a')!.map((r) => [r.rank, r.localRank]), [[1, 0]]);
  });
});
