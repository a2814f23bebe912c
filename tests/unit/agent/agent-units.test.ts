/** Unit tests of the agent's pure parts: env allow-list, runtimes, exit classification, profile lines, inventory. */
import assert from 'node:assert/strict';
import { checkJobEnv, envRefusal, rankEnv, RESERVED_ENV } from '../../../agent/src/env.js';
import { expandArgv, parseRuntimes } from '../../../agent/src/runtimes.js';
import { classifyExit } from '../../../agent/src/classify.js';
import { parseProfileLine } from '../../../agent/src/profile.js';
import { parseNvidiaSmi, cpuDevices } from '../../../agent/src/inventory.js';
import { isMistError } from '../../../protocol/src/errors.js';

describe('agent env allow-list', () => {
  it('allows MIST_*, NCCL_* tuning, CUDA_* and thread knobs', () => {
    for (const k of ['MIST_FOO', 'NCCL_DEBUG', 'NCCL_IB_HCA', 'CUDA_LAUNCH_BLOCKING', 'OMP_NUM_THREADS', 'PYTORCH_CUDA_ALLOC_CONF', 'TORCH_DISTRIBUTED_DEBUG']) assert.equal(envRefusal(k), null, k);
  });
  it('refuses loaders, paths, reserved names, plugin knobs and anything unlisted', () => {
    for (const k of ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'PATH', 'PYTHONPATH', 'NODE_OPTIONS', 'HOME', 'CUDA_VISIBLE_DEVICES', 'NCCL_NET_PLUGIN', 'NCCL_DEBUG_FILE', 'lower', '1ABC', 'A-B', ...RESERVED_ENV]) assert.notEqual(envRefusal(k), null, k);
  });
  it('throws BAD_INPUT naming the variable, and checks values', () => {
    assert.throws(() => checkJobEnv({ OMP_NUM_THREADS: '2', LD_PRELOAD: 'x' }), (e: unknown) => isMistError(e) && e.code === 'BAD_INPUT' && /LD_PRELOAD/.test(e.message));
    assert.throws(() => checkJobEnv({ MIST_X: 'a\0b' }), /NUL/);
    assert.throws(() => checkJobEnv({ MIST_X: 'x'.repeat(5000) }), /4096/);
    checkJobEnv({ MIST_X: 'ok', NCCL_DEBUG: 'INFO' });
  });
  it('builds the rank env: agent secrets and reserved names dropped, fixed values win', () => {
    const env = rankEnv({ PATH: '/usr/bin', MIST_NATS_PASSWORD: 's', RANK: '9', NATS_X: 'y' }, { MIST_A: '1' }, { RANK: '0' });
    assert.deepEqual(env, { PATH: '/usr/bin', MIST_A: '1', RANK: '0' });
  });
});

describe('agent runtimes list', () => {
  it('expands placeholders in argv and cwd', () => {
    const t = parseRuntimes({ runtimes: { ref: { argv: ['{python}', '-u', 'train.py', '--plan={planFile}', '{rank}'], cwd: '{rankDir}' } } });
    const values = { python: '/usr/bin/python3', node: '/n', planFile: '/s/plan.json', stateDir: '/s', rankDir: '/s/r0', job: 'j', attempt: '1', rank: '0', localRank: '0', node_name: 'n1' };
    assert.deepEqual(expandArgv(t.ref!, values), { argv: ['/usr/bin/python3', '-u', 'train.py', '--plan=/s/plan.json', '0'], cwd: '/s/r0' });
  });
  it('rejects unknown placeholders and malformed files', () => {
    assert.throws(() => parseRuntimes({ runtimes: { x: { argv: ['{shell}'] } } }), /unknown placeholder \{shell\}/);
    assert.throws(() => parseRuntimes({ runtimes: { x: { argv: [] } } }), /non-empty/);
    assert.throws(() => parseRuntimes({ x: 1 }), /expected/);
  });
});

describe('agent exit classification', () => {
  const c = (exitCode: number | null, signal: string | null, stoppedByAgent = false, stderrTail = '') => classifyExit({ exitCode, signal, stoppedByAgent, stderrTail });
  it('maps exits to failure classes', () => {
    assert.equal(c(null, 'SIGKILL', true), 'killed');
    assert.equal(c(137, null, true), 'killed');
    assert.equal(c(null, 'SIGTERM', true), 'killed');
    assert.equal(c(1, null, false, 'torch.cuda.OutOfMemoryError: CUDA out of memory'), 'out_of_memory');
    assert.equal(c(null, 'SIGKILL', false), 'killed');
    assert.equal(c(1, null, false, 'RuntimeError: NCCL error in: ...'), 'infra_error');
    assert.equal(c(null, 'SIGSEGV', false), 'infra_error');
    assert.equal(c(127, null), 'infra_error');
    assert.equal(c(1, null), 'user_error');
    assert.equal(c(2, null), 'user_error');
    assert.equal(c(0, null), 'unknown');
  });
});

describe('agent profile lines', () => {
  it('parses a step line, filling rank and stage', () => {
    const p = parseProfileLine('{"mist":"step","step":3,"loss":2.1,"stepSeconds":0.2,"stages":[{"forwardSeconds":0.05,"backwardSeconds":0.1}],"peakMemoryBytes":100,"tokens":4096}', 5, 1);
    assert.deepEqual(p, { kind: 'stepProfile', rank: 5, stage: 1, step: 3, loss: 2.1, stepSeconds: 0.2, stageTimes: [{ stage: 0, forwardSeconds: 0.05, backwardSeconds: 0.1 }], peakMemoryBytes: 100, tokens: 4096 });
  });
  it('tells log lines from invalid profile lines', () => {
    assert.equal(parseProfileLine('hello', 0, 0), undefined);
    assert.equal(parseProfileLine('{"mist":"step","step":-1,"stepSeconds":1}', 0, 0), 'invalid');
    assert.equal(parseProfileLine('{"mist":"step",', 0, 0), 'invalid');
    assert.equal(parseProfileLine('{"mist":"other","step":1,"stepSeconds":1}', 0, 0), 'invalid');
    const nan = parseProfileLine('{"mist":"step","step":1,"stepSeconds":1,"loss":null}', 0, 0);
    assert.ok(nan !== 'invalid' && nan !== undefined && Number.isNaN(nan.loss));
  });
});

describe('agent inventory', () => {
  it('parses nvidia-smi CSV', () => {
    const d = parseNvidiaSmi('0, NVIDIA A100-SXM4-80GB, 81920\n1, NVIDIA A100-SXM4-80GB, 81920\ngarbage\n');
    assert.deepEqual(d, [
      { index: 0, kind: 'gpu', model: 'NVIDIA A100-SXM4-80GB', memoryBytes: 81920 * 2 ** 20 },
      { index: 1, kind: 'gpu', model: 'NVIDIA A100-SXM4-80GB', memoryBytes: 81920 * 2 ** 20 },
    ]);
  });
  it('offers CPU devices', () => {
    const d = cpuDevices(3);
    assert.deepEqual(d.map((x) => [x.index, x.kind]), [[0, 'cpu'], [1, 'cpu'], [2, 'cpu']]);
  });
});
