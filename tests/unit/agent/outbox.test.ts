/** The report outbox: durable append before publish, in-order flush, retry while unreachable, replay after restart. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeReport } from '../../../protocol/src/codec.js';
import { Outbox } from '../../../agent/src/outbox.js';

const ev = (m: string) => ({ kind: 'nodeEvent' as const, event: 'e', message: m });

describe('agent outbox (spool)', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'mist-outbox-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('publishes in order with per-(job, attempt) seqs and de-dup ids', async () => {
    const got: Array<{ subject: string; id: string; seq: number }> = [];
    const o = new Outbox({ dir, node: 'n1', publish: async (subject, data, id) => void got.push({ subject, id, seq: decodeReport(data).seq }) });
    o.add('j', 1, 'a', ev('1'));
    o.add('j', 1, 'b', ev('2'));
    o.add('j', 2, 'c', ev('3'));
    assert.equal(await o.drained(5000), true);
    assert.deepEqual(got.map((g) => [g.id, g.seq]), [['a', 1], ['b', 2], ['c', 1]]);
    o.close();
  });

  it('spools while publishing fails and flushes in order when it works again', async () => {
    let up = false;
    const got: string[] = [];
    const o = new Outbox({ dir, node: 'n1', retryMs: 10, publish: async (_s, _d, id) => {
      if (!up) throw new Error('down');
      got.push(id);
    } });
    for (let i = 0; i < 100; i++) o.add('j', 1, `r${i}`, ev(String(i)));
    assert.equal(await o.drained(100), false);
    assert.equal(o.backlog, 100);
    up = true;
    o.kick();
    assert.equal(await o.drained(5000), true);
    assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => `r${i}`));
    o.close();
  });

  it('replays unpublished reports with the same bytes after a restart, and continues the seqs', async () => {
    const o1 = new Outbox({ dir, node: 'n1', retryMs: 10_000, publish: async () => {
      throw new Error('down');
    } });
    o1.add('j', 1, 'x1', ev('1'));
    o1.add('j', 1, 'x2', ev('2'));
    o1.close();
    const got: Array<[string, number]> = [];
    const o2 = new Outbox({ dir, node: 'n1', publish: async (_s, d, id) => void got.push([id, decodeReport(d).seq]) });
    assert.equal(o2.backlog, 2);
    o2.kick();
    assert.equal(await o2.drained(5000), true);
    o2.add('j', 1, 'x3', ev('3'));
    assert.equal(await o2.drained(5000), true);
    assert.deepEqual(got, [['x1', 1], ['x2', 2], ['x3', 3]]);
    o2.close();
    const o3 = new Outbox({ dir, node: 'n1', publish: async () => undefined });
    assert.equal(o3.backlog, 0, 'published entries are not replayed');
    assert.equal(o3.add('j', 1, 'x4', ev('4')).seq, 4);
    o3.close();
  });

  it('compacts once everything is published and keeps the seqs', async () => {
    const o = new Outbox({ dir, node: 'n1', compactAfter: 5, publish: async () => undefined });
    for (let i = 0; i < 7; i++) o.add('j', 1, `c${i}`, ev(String(i)));
    assert.equal(await o.drained(5000), true);
    o.close();
    const o2 = new Outbox({ dir, node: 'n1', publish: async () => undefined });
    assert.equal(o2.backlog, 0);
    assert.equal(o2.add('j', 1, 'c7', ev('7')).seq, 8);
    o2.close();
  });
});
