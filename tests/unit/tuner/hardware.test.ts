import assert from 'node:assert/strict';
import { MistError } from '../../../protocol/src/errors.js';
import { CATALOG, GIB, GPU_TYPES, hardwareFor, validateHardware } from '../../../controller/src/tuner/hardware.js';
import { isSupersetMonotone, noWorseThanSerial, additiveInterference } from '../../../controller/src/tuner/interference.js';

const GB = 1e9;
const TB = 1e12;

function badInputAbout(field: string): (e: unknown) => boolean {
  return (e: unknown) => e instanceof MistError && e.code === 'BAD_INPUT' && e.message.startsWith(`${field}:`);
}

describe('tuner/hardware catalog', () => {
  it('lists exactly the DESIGN.md §3 device types, each under its own name', () => {
    assert.deepEqual([...GPU_TYPES], ['a100-40gb', 'a100-80gb', 'h100-80gb', 'h200-141gb', 'l4-24gb', 'cpu']);
    assert.deepEqual(Object.keys(CATALOG).sort(), [...GPU_TYPES].sort());
    for (const t of GPU_TYPES) assert.equal(CATALOG[t].name, t);
  });

  it('every type has every field, and every field passes validation', () => {
    const fields = ['name', 'peakFlops', 'memoryBytes', 'hbmBandwidth', 'gemm', 'collective', 'collectiveFactor', 'h2d', 'd2h', 'interference', 'usableMemoryFraction', 'iterationOverheadSeconds'];
    for (const t of GPU_TYPES) {
      const hw = CATALOG[t];
      assert.deepEqual(Object.keys(hw).sort(), [...fields].sort(), t);
      assert.doesNotThrow(() => validateHardware(hw as never), t);
      for (const key of ['1x2', '1x4', '1x8', '2x1', '2x8', '4x8']) assert.ok(hw.collective[key], `${t} ${key}`);
    }
  });

  it('has 28 interference factors, all ≥ 1 and never slower than running serially', () => {
    for (const t of GPU_TYPES) {
      const f = CATALOG[t].interference;
      assert.equal(f.length, 28, t);
      assert.ok(f.every((x) => Number.isFinite(x) && x >= 1), t);
      assert.ok(noWorseThanSerial(f), `${t}: some set has Σ 1/f < 1`);
    }
  });

  it('keeps the Mist-fitted factors verbatim and builds the others additively (superset-monotone)', () => {
    assert.deepEqual(CATALOG['l4-24gb'].interference.slice(0, 4), [18.9356, 1.2639, 50.0, 1.6046]);
    assert.deepEqual(CATALOG['a100-40gb'].interference.slice(16), [1.2856, 1.0393, 1.0081, 1.0099, 1.0125, 1.0251, 1.5508, 1.0972, 1.1336, 1.2723, 1.5186, 1.2665]);
    for (const t of ['h100-80gb', 'h200-141gb', 'cpu'] as const) {
      const f = CATALOG[t].interference;
      const rebuilt = additiveInterference(f.slice(16));
      rebuilt.forEach((x, i) => assert.ok(Math.abs(x - f[i]) < 1e-9, `${t}[${i}] ${f[i]} vs ${x}`));
      assert.ok(isSupersetMonotone(f), t);
    }
    assert.deepEqual(CATALOG['h100-80gb'].interference.slice(16), CATALOG['a100-40gb'].interference.slice(16));
    assert.equal(isSupersetMonotone(CATALOG['l4-24gb'].interference), false, "Mist's L4 fit is not superset-monotone");
  });

  const table: Array<{ name: string; check: () => void }> = [
    { name: 'h200 memory is 141 GB (nvidia-smi 143771 MiB)', check: () => assert.ok(Math.abs(CATALOG['h200-141gb'].memoryBytes / GIB - 141) / 141 < 0.01) },
    { name: 'h100 memory is 80 GB class (81559 MiB)', check: () => assert.equal(CATALOG['h100-80gb'].memoryBytes, 81559 * 2 ** 20) },
    { name: 'a100-40gb memory is Mist\'s 40 GiB', check: () => assert.equal(CATALOG['a100-40gb'].memoryBytes, 40 * GIB) },
    { name: 'a100-80gb memory is 80 GiB', check: () => assert.equal(CATALOG['a100-80gb'].memoryBytes, 80 * GIB) },
    { name: 'l4 memory is Mist\'s 22.488 GiB', check: () => assert.equal(CATALOG['l4-24gb'].memoryBytes, 22.488 * GIB) },
    { name: 'dense bf16 peaks: A100 312, H100/H200 989.4, L4 121 TFLOP/s', check: () => {
      assert.equal(CATALOG['a100-40gb'].peakFlops, 312 * TB);
      assert.equal(CATALOG['a100-80gb'].peakFlops, 312 * TB);
      assert.equal(CATALOG['h100-80gb'].peakFlops, 989.4 * TB);
      assert.equal(CATALOG['h200-141gb'].peakFlops, 989.4 * TB);
      assert.equal(CATALOG['l4-24gb'].peakFlops, 121 * TB);
    } },
    { name: 'HBM bandwidths from the datasheets', check: () => {
      assert.deepEqual(GPU_TYPES.slice(0, 5).map((t) => CATALOG[t].hbmBandwidth / GB), [1555, 2039, 3350, 4800, 300]);
    } },
    { name: "Mist's op factors AR 2.1, AG 1.0, RS 1.1 everywhere", check: () => {
      for (const t of GPU_TYPES) assert.deepEqual({ ...CATALOG[t].collectiveFactor }, { allReduce: 2.1, allGather: 1.0, reduceScatter: 1.1 });
    } },
    { name: '0.95 usable memory on every GPU (only the CUDA context and NCCL buffers live outside the allocator), 0.8 on cpu', check: () => {
      for (const t of GPU_TYPES.slice(0, 5)) assert.equal(CATALOG[t].usableMemoryFraction, 0.95);
      assert.equal(CATALOG.cpu.usableMemoryFraction, 0.8);
      // the reserve left outside the allocator covers a 0.8 GiB CUDA context plus 0.3 GiB of NCCL buffers everywhere
      for (const t of GPU_TYPES.slice(0, 5)) assert.ok(CATALOG[t].memoryBytes * (1 - CATALOG[t].usableMemoryFraction) >= 1.1 * GIB, t);
    } },
    { name: "Mist's L4 and A100 PCIe fits", check: () => {
      assert.equal(CATALOG['l4-24gb'].h2d.bandwidth, 5.7546 * GIB);
      assert.equal(CATALOG['l4-24gb'].d2h.latency, 0.0004);
      assert.equal(CATALOG['a100-40gb'].h2d.bandwidth, 5.3645 * GIB);
      assert.equal(CATALOG['a100-40gb'].d2h.bandwidth, 5.8471 * GIB);
    } },
    { name: 'Gen5 hosts copy faster than Gen4 hosts', check: () => {
      assert.ok(CATALOG['h100-80gb'].h2d.bandwidth > CATALOG['a100-80gb'].h2d.bandwidth);
      assert.ok(CATALOG['h200-141gb'].d2h.bandwidth > CATALOG['a100-80gb'].d2h.bandwidth);
    } },
    { name: "Mist's A100 NVLink fit: 8 GPUs at 210.306 GiB/s", check: () => assert.equal(CATALOG['a100-40gb'].collective['1x8'].bandwidth, 210.306 * GIB) },
    { name: "Mist's L4 fit: 2 nodes × 1 GPU at 0.4895 GiB/s, 4.5 ms", check: () => {
      assert.equal(CATALOG['l4-24gb'].collective['2x1'].bandwidth, 0.4895 * GIB);
      assert.equal(CATALOG['l4-24gb'].collective['2x1'].latency, 0.0045);
    } },
    { name: 'NVLink beats the network, and NVLink4 beats NVLink3, within each table', check: () => {
      for (const t of ['a100-40gb', 'h100-80gb', 'l4-24gb'] as const) {
        const c = CATALOG[t].collective;
        assert.ok(c['1x8'].bandwidth > c['2x1'].bandwidth, t);
      }
      assert.ok(CATALOG['h100-80gb'].collective['1x8'].bandwidth > CATALOG['a100-40gb'].collective['1x8'].bandwidth);
      assert.ok(CATALOG['a100-40gb'].collective['1x8'].bandwidth > CATALOG['l4-24gb'].collective['1x8'].bandwidth);
    } },
    { name: 'GEMM curves rise to their maximum, which never exceeds the peak', check: () => {
      for (const t of GPU_TYPES) {
        const g = CATALOG[t].gemm;
        assert.ok(g.maxEfficiency > 0 && g.maxEfficiency <= 1, t);
        assert.ok(g.halfFlops > 0 && g.shape > 0, t);
      }
    } },
  ];
  for (const c of table) it(c.name, c.check);

  it('the catalog is frozen', () => {
    assert.ok(Object.isFrozen(CATALOG['h100-80gb']));
    assert.ok(Object.isFrozen(CATALOG['h100-80gb'].collective['1x8']));
    assert.ok(Object.isFrozen(CATALOG['h100-80gb'].interference));
  });
});

describe('tuner/hardware hardwareFor', () => {
  it('returns a mutable deep copy equal to the catalog entry', () => {
    for (const t of GPU_TYPES) {
      const hw = hardwareFor(t);
      assert.deepEqual(hw, CATALOG[t]);
      hw.collective['1x2'].bandwidth = 1;
      hw.interference[0] = 99;
      assert.notEqual(CATALOG[t].collective['1x2'].bandwidth, 1);
      assert.notEqual(CATALOG[t].interference[0], 99);
    }
  });

  it('refuses an unknown type naming the valid ones', () => {
    assert.throws(() => hardwareFor('v100'), (e: unknown) => {
      assert.ok(e instanceof MistError);
      assert.equal(e.code, 'BAD_INPUT');
      assert.equal(e.message, 'gpu: unknown GPU type "v100"; valid: a100-40gb, a100-80gb, h100-80gb, h200-141gb, l4-24gb, cpu');
      return true;
    });
    assert.throws(() => hardwareFor('toString'), badInputAbout('gpu'));
  });

  it('deep-merges overrides: a nested field, a new layout, a whole array', () => {
    const f = Array.from({ length: 28 }, () => 1.25);
    const hw = hardwareFor('a100-80gb', {
      peakFlops: 300e12,
      gemm: { maxEfficiency: 0.7 },
      collective: { '2x8': { bandwidth: 180 * GIB }, '8x8': { bandwidth: 170 * GIB, latency: 0.001 } },
      h2d: { latency: 0.001 },
      interference: f,
    });
    assert.equal(hw.peakFlops, 300e12);
    assert.equal(hw.gemm.maxEfficiency, 0.7);
    assert.equal(hw.gemm.halfFlops, CATALOG['a100-80gb'].gemm.halfFlops, 'siblings kept');
    assert.equal(hw.collective['2x8'].bandwidth, 180 * GIB);
    assert.equal(hw.collective['2x8'].latency, CATALOG['a100-80gb'].collective['2x8'].latency, 'sibling latency kept');
    assert.deepEqual(hw.collective['8x8'], { bandwidth: 170 * GIB, latency: 0.001 });
    assert.deepEqual(hw.collective['1x8'], CATALOG['a100-80gb'].collective['1x8'], 'other layouts kept');
    assert.equal(hw.h2d.latency, 0.001);
    assert.equal(hw.h2d.bandwidth, CATALOG['a100-80gb'].h2d.bandwidth);
    assert.deepEqual(hw.interference, f);
    assert.notEqual(hw.interference, f, 'the array is copied');
    assert.equal(hw.name, 'a100-80gb');
  });

  const bad: Array<{ name: string; overrides: object; field: string }> = [
    { name: 'an unknown top-level field', overrides: { peakFlop: 1 }, field: 'hardware.peakFlop' },
    { name: 'an unknown nested field', overrides: { gemm: { max: 1 } }, field: 'hardware.gemm.max' },
    { name: 'an unknown layout', overrides: { collective: { '3x8': { bandwidth: 1 } } }, field: 'hardware.collective.3x8' },
    { name: 'a new layout without its bandwidth', overrides: { collective: { '8x8': { latency: 0 } } }, field: 'hardware.collective.8x8.bandwidth' },
    { name: 'a wrong type', overrides: { peakFlops: '1e15' }, field: 'hardware.peakFlops' },
    { name: 'a negative bandwidth', overrides: { d2h: { bandwidth: -1 } }, field: 'hardware.d2h.bandwidth' },
    { name: 'an efficiency above 1', overrides: { gemm: { maxEfficiency: 1.2 } }, field: 'hardware.gemm.maxEfficiency' },
    { name: 'too few interference factors', overrides: { interference: [1, 1, 1] }, field: 'hardware.interference' },
    { name: 'an interference factor below 1', overrides: { interference: [...Array(27).fill(1), 0.5] }, field: 'hardware.interference[27]' },
    { name: 'a usable fraction of 0', overrides: { usableMemoryFraction: 0 }, field: 'hardware.usableMemoryFraction' },
    { name: 'an object where a number belongs', overrides: { peakFlops: { x: 1 } }, field: 'hardware.peakFlops' },
  ];
  for (const b of bad) {
    it(`refuses ${b.name}`, () => {
      assert.throws(() => hardwareFor('a100-80gb', b.overrides as never), badInputAbout(b.field));
    });
  }

  it('is JSON-serialisable and round-trips', () => {
    for (const t of GPU_TYPES) {
      const hw = hardwareFor(t);
      assert.deepEqual(JSON.parse(JSON.stringify(hw)), hw);
      assert.deepEqual(hardwareFor(t, JSON.parse(JSON.stringify(hw))), hw, 'the catalog entry is a valid override of itself');
    }
  });
});
