/**
 * bench:predict — cost-model throughput in candidate cells per second per core (DESIGN.md §9: goal ≥ 20M/s).
 *
 * A cell is one candidate row (b, dp, tp, ZeRO flags, offload ratios …) scored at one (l, c, p): stable time,
 * delta time, peak memory and required memory. Workload: GPT-22B on 4×8 L4 (Mist's tuning-time benchmark case),
 * a middle stage on a (1, 4) mesh, G = 128, rows over b ∈ {1, 2, 4} × dp ∈ {1, 2, 4} × ZeRO-{1,2,3} ×
 * Mist's offload grid (31 (wo, go) pairs × 8 oo × 8 ao), cells over l ∈ 1..12, c ∈ 0..l, p ∈ 0..7.
 *
 * Single-threaded (one core). The figure includes the per-row prepare pass (amortised over the row's cells).
 * Baseline, same process: the scalar interpreter over the very same expression trees, on a sample of cells.
 */
import { candidateRows, compileStageModel, outputArrays, zeroFlags, type CandidateRows, type Row } from '../controller/src/tuner/cost.js';
import { hardwareFor } from '../controller/src/tuner/hardware.js';
import { resolveModel } from '../controller/src/tuner/model.js';
import { emitJson, say, wantJson } from './report.js';

const SPARSE = [0, 0.25, 0.375, 0.5, 0.75, 1];
const DENSE = [0, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1];

function buildRows(): { rows: CandidateRows; n: number } {
  const list: Row[] = [];
  for (const b of [1, 2, 4]) {
    for (const dp of [1, 2, 4]) {
      const tp = 4 / dp;
      for (const zero of dp === 1 ? [1] : [1, 2, 3]) {
        for (const wo of SPARSE) {
          for (const go of SPARSE) {
            if (wo > 0 && go === 0) continue;
            for (const oo of DENSE) {
              for (const ao of DENSE) {
                list.push({ b, dp, tp, ...zeroFlags(zero), wo, go, oo, ao, sel: 0, ppdp: dp, pptp: tp, ppzero: 1 });
              }
            }
          }
        }
      }
    }
  }
  const n = list.length;
  const rows = candidateRows(n);
  list.forEach((r, i) => {
    for (const k of Object.keys(r) as Array<keyof Row>) rows[k][i] = r[k];
  });
  return { rows, n };
}

function main(): void {
  const hw = hardwareFor('l4-24gb');
  const model = resolveModel('gpt3-22b');
  const ctx = { model, seqLen: 2048, workload: { flash: true, dropout: 0, gradDtype: 'bf16' as const }, hw, position: 'middle' as const };
  let t = performance.now();
  const sm = compileStageModel(ctx);
  const compileMs = performance.now() - t;
  const { rows, n } = buildRows();
  const scalars = { G: 128, nodes: 1, gpn: 4, cross: 0 };
  const cells: Array<{ l: number; c: number; p: number }> = [];
  for (let l = 1; l <= 12; l++) for (let c = 0; c <= l; c++) for (let p = 0; p <= 7; p++) cells.push({ l, c, p });
  say(`bench:predict — GPT-22B, 4×8 L4, middle stage (1,4) mesh: ${n} candidate rows × ${cells.length} (l, c, p) cells = ${(n * cells.length / 1e6).toFixed(1)}M cells`);
  say(`compile: ${compileMs.toFixed(1)} ms (${sm.compiled.intermediates} per-row intermediates)`);

  const out = outputArrays(n);
  // warm-up (JIT), then measure: best of 3 rounds
  let prepared = sm.prepare(rows, scalars, n);
  for (let i = 0; i < 20; i++) sm.evalCell(prepared, cells[i]!, out);
  let best = Infinity;
  let bestPrep = Infinity;
  let bestCells = Infinity;
  let checksum = 0;
  for (let round = 0; round < 3; round++) {
    t = performance.now();
    prepared = sm.prepare(rows, scalars, n);
    const t1 = performance.now();
    for (const cell of cells) {
      sm.evalCell(prepared, cell, out);
      checksum += out.stable[n - 1]! + out.required[0]!;
    }
    const t2 = performance.now();
    best = Math.min(best, t2 - t);
    bestPrep = Math.min(bestPrep, t1 - t);
    bestCells = Math.min(bestCells, t2 - t1);
  }
  const total = n * cells.length;
  const perSec = total / (best / 1000);
  const cellOnly = total / (bestCells / 1000);
  say(`compiled column evaluator: ${(perSec / 1e6).toFixed(1)}M cells/s/core including the per-row pass (${bestPrep.toFixed(0)} ms); cell phase alone ${(cellOnly / 1e6).toFixed(1)}M cells/s`);

  // baseline: the interpreter over the same trees, on a deterministic sample of cells
  const sampleRows = Math.min(n, 200);
  const sampleCells = cells.filter((_, i) => i % 41 === 0);
  let maxRel = 0;
  t = performance.now();
  let count = 0;
  for (let r = 0; r < sampleRows; r++) {
    const i = Math.floor((r * n) / sampleRows);
    const row = {} as Row;
    for (const k of Object.keys(rows) as Array<keyof Row>) row[k] = rows[k][i]!;
    for (const cell of sampleCells) {
      const v = sm.interpret(row, scalars, cell);
      count++;
      if (r < 20) {
        sm.evalCell(sm.prepare(candidateRows(1, row), scalars, 1), cell, outputOne);
        const rel = Math.abs(v.stable - outputOne.stable[0]!) / Math.max(1e-300, Math.abs(v.stable));
        maxRel = Math.max(maxRel, rel);
      }
    }
  }
  const interpMs = performance.now() - t;
  const interpPerSec = count / (interpMs / 1000);
  const ratio = perSec / interpPerSec;
  say(`baseline (scalar interpreter, same expressions): ${(interpPerSec / 1e3).toFixed(1)}k cells/s; speed-up ×${ratio.toFixed(0)}; max relative difference ${maxRel.toExponential(1)}`);
  say(`goal ≥ 20M cells/s/core: ${perSec >= 20e6 ? 'met' : 'NOT met'}`);
  if (!Number.isFinite(checksum)) throw new Error('non-finite results');
  emitJson({
    bench: 'predict',
    case: 'gpt3-22b / 4x8 l4-24gb / middle stage (1,4) / G=128',
    rows: n,
    cellsPerRow: cells.length,
    cells: total,
    compileMs,
    prepareMs: bestPrep,
    cellsPerSecondPerCore: perSec,
    cellPhaseCellsPerSecond: cellOnly,
    baseline: { name: 'scalar interpreter over the same expression trees', cellsPerSecond: interpPerSec, cellsMeasured: count },
    speedupVsBaseline: ratio,
    maxRelativeDifference: maxRel,
    goalCellsPerSecond: 20e6,
    goalMet: perSec >= 20e6,
    json: wantJson,
  });
}

const outputOne = outputArrays(1);
main();
