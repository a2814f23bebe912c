/**
 * The real parts the later suites stand on are present and usable on this machine: Debian's nats-server with
 * JetStream, python3-torch, and PostgreSQL at MIST_TEST_PG_URL. The set-up step installs them; this suite
 * proves they work rather than trusting that they exist.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { startNatsServer } from '../support/nats-server.js';

const PYTHON = process.env.MIST_PYTHON ?? '/usr/bin/python3';
const PG_URL = process.env.MIST_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function roundTrip(port: number, send: string, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let got = '';
    socket.on('data', (d) => {
      got += d.toString();
      if (until.test(got)) {
        socket.end();
        resolve(got);
      }
    });
    socket.once('connect', () => socket.write(send));
    socket.once('error', reject);
  });
}

describe('system packages (integration)', () => {
  it('nats-server starts on a free loopback port with JetStream and answers the NATS protocol', async () => {
    const nats = await startNatsServer();
    try {
      const reply = await roundTrip(nats.port, 'CONNECT {"verbose":false}\r\nPING\r\n', /PONG\r\n/);
      assert.match(reply, /^INFO \{.*"jetstream":true/);
      assert.match(reply, /PONG/);
    } finally {
      await nats.stop();
    }
  });

  it('python3-torch imports and runs a tensor op on CPU with gloo available', () => {
    const r = spawnSync(PYTHON, ['-c', 'import torch, torch.distributed as d; print(torch.__version__, int((torch.ones(3) * 2).sum().item()), d.is_gloo_available())'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const [version, sum, gloo] = r.stdout.trim().split(' ');
    assert.match(version ?? '', /^\d+\.\d+/);
    assert.equal(sum, '6');
    assert.equal(gloo, 'True');
  });

  it('PostgreSQL answers at MIST_TEST_PG_URL', async () => {
    const u = new URL(PG_URL);
    // An SSLRequest packet: a PostgreSQL server answers with one byte, 'S' or 'N'.
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: u.hostname, port: Number(u.port || 5432) });
      socket.once('connect', () => socket.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])));
      socket.once('data', (d) => {
        socket.destroy();
        resolve(d.toString('latin1', 0, 1));
      });
      socket.once('error', reject);
    });
    assert.ok(reply === 'S' || reply === 'N', `unexpected reply ${JSON.stringify(reply)}`);
  });
});
