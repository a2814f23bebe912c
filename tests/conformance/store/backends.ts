/**
 * The store backends the conformance suite (and the CLI tests) run against: SQLite on a temp file, PostgreSQL
 * (MIST_TEST_PG_URL, default the local server) on a fresh schema that is dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore, type Store } from '../../../controller/src/plans/store.js';
import type { Plan } from '../../../controller/src/domain/plan.js';

export const PG_URL = process.env.MIST_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test';

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** Opens a store on this backend's database (each call a new connection/pool on the same data). */
  open(): Promise<Store>;
  /** Removes the database (file or schema). */
  cleanup(): Promise<void>;
}

export function sqliteBackend(): Backend {
  const dir = mkdtempSync(join(tmpdir(), 'mist-store-'));
  const file = join(dir, 'state', 'mist.db');
  return {
    name: 'sqlite',
    open: () => openStore(file),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function postgresBackend(): Backend {
  const schema = `mist_test_${randomBytes(6).toString('hex')}`;
  return {
    name: 'postgres',
    open: () => openStore(PG_URL, { schema }),
    cleanup: async () => {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

export const BACKENDS: ReadonlyArray<{ name: Backend['name']; make: () => Backend }> = [
  { name: 'sqlite', make: sqliteBackend },
  { name: 'postgres', make: postgresBackend },
];

/** A valid Plan (DESIGN.md §4) with a few knobs to vary. */
export function makePlan(o: {
  id: string;
  model?: string;
  arch?: 'gpt' | 'llama' | 'lvm';
  gpu?: string;
  nodes?: number;
  gpusPerNode?: number;
  space?: string;
  iterationSeconds?: number;
  fits?: boolean;
  stages?: number;
}): Plan {
  const nodes = o.nodes ?? 1;
  const gpusPerNode = o.gpusPerNode ?? 8;
  const S = o.stages ?? 2;
  const layers = 24;
  const per = layers / S;
  const iterationSeconds = o.iterationSeconds ?? 1.5;
  return {
    version: 1,
    id: o.id,
    space: o.space ?? 'mist',
    model: { name: o.model ?? 'gpt3-1.3b', arch: o.arch ?? 'gpt', layers, hidden: 2048, heads: 16, kvHeads: 16, ffnHidden: 8192, vocab: 50257, seqLen: 2048, tiedEmbeddings: true },
    cluster: { gpu: o.gpu ?? 'a100-80gb', nodes, gpusPerNode },
    globalBatch: 512,
    seqLen: 2048,
    gradAccum: 64,
    workload: { flash: true, dropout: 0, gradDtype: 'bf16' },
    stages: Array.from({ length: S }, (_, i) => ({
      layers: [i * per, (i + 1) * per - 1] as [number, number],
      nodes,
      gpusPerNode: gpusPerNode / S >= 1 ? gpusPerNode / S : 1,
      dp: 2,
      tp: 2,
      microBatch: 4,
      zero: 1 as const,
      ckpt: i === 0 ? { mode: 'layers' as const, count: 3 } : { mode: 'none' as const },
      offload: { weights: 0, grads: 0, optimizer: 0.5, activations: 0 },
    })),
    prePost: { dp: 2, tp: 2, zero: 1 },
    predicted: {
      fits: o.fits ?? true,
      reason: o.fits === false ? 'stage 0 needs 93.1 GiB/GPU, capacity 80.0 GiB' : null,
      iterationSeconds,
      tokensPerSecond: (512 * 2048) / iterationSeconds,
      mfu: 0.41,
      stages: Array.from({ length: S }, () => ({ stableSeconds: 0.02, deltaSeconds: 0.003, peakMemoryBytes: 61_234_567_890 })),
    },
    tuner: { seconds: 0.42, candidates: 123456, solver: 'glpk', status: 'optimal', baselines: { megatron: { iterationSeconds: iterationSeconds * 1.3 } } },
  };
}
