import assert from 'node:assert/strict';
import { isMistError } from '../../../protocol/src/errors.js';
import {
  blockQuantities,
  FLOPS_CONVENTION,
  modelFlopsPerIteration,
  paramCounts,
  resolveModel,
  stateBytesPerParam,
  swigluFfn,
} from '../../../controller/src/tuner/model.js';
import { PRESETS, PRESET_NAMES } from '../../../controller/src/tuner/presets.js';
import { interpret } from '../../../controller/src/tuner/symbolic/compile.js';
import type { ModelSpec } from '../../../controller/src/domain/model.js';

/**
 * Published architecture configs, transcribed here independently of presets.ts, and a module-by-module parameter
 * enumeration in the style of the Hugging Face implementations (GPT2Model; LlamaForCausalLM).
 */
interface Published {
  kind: 'gpt2' | 'llama';
  n_layer: number;
  d_model: number;
  n_head: number;
  n_kv_head?: number;
  d_ff?: number;
  vocab: number;
  n_ctx: number;
  /** A published total, when one exists (exact for the HF LLaMA checkpoints; rounded labels otherwise). */
  published?: number;
  publishedTolerance?: number;
}

const PUBLISHED: Record<string, Published> = {
  // GPT-3 paper Table 2.1 (13B: 40 heads × 128 = 5120), vocab 50257, n_ctx 2048
  'gpt3-1.3b': { kind: 'gpt2', n_layer: 24, d_model: 2048, n_head: 24, vocab: 50257, n_ctx: 2048, published: 1.3e9, publishedTolerance: 0.05 },
  'gpt3-2.7b': { kind: 'gpt2', n_layer: 32, d_model: 2560, n_head: 32, vocab: 50257, n_ctx: 2048, published: 2.7e9, publishedTolerance: 0.05 },
  'gpt3-6.7b': { kind: 'gpt2', n_layer: 32, d_model: 4096, n_head: 32, vocab: 50257, n_ctx: 2048, published: 6.7e9, publishedTolerance: 0.05 },
  'gpt3-13b': { kind: 'gpt2', n_layer: 40, d_model: 5120, n_head: 40, vocab: 50257, n_ctx: 2048, published: 13.0e9, publishedTolerance: 0.05 },
  'gpt3-22b': { kind: 'gpt2', n_layer: 48, d_model: 6144, n_head: 64, vocab: 50304, n_ctx: 2048, published: 22e9, publishedTolerance: 0.05 },
  'gpt3-175b': { kind: 'gpt2', n_layer: 96, d_model: 12288, n_head: 96, vocab: 50257, n_ctx: 2048, published: 175.0e9, publishedTolerance: 0.05 },
  // Meta config.json; totals are the Hugging Face checkpoint counts
  'llama2-7b': { kind: 'llama', n_layer: 32, d_model: 4096, n_head: 32, n_kv_head: 32, d_ff: 11008, vocab: 32000, n_ctx: 4096, published: 6_738_415_616, publishedTolerance: 0 },
  'llama2-13b': { kind: 'llama', n_layer: 40, d_model: 5120, n_head: 40, n_kv_head: 40, d_ff: 13824, vocab: 32000, n_ctx: 4096, published: 13_015_864_320, publishedTolerance: 0 },
  'llama2-70b': { kind: 'llama', n_layer: 80, d_model: 8192, n_head: 64, n_kv_head: 8, d_ff: 28672, vocab: 32000, n_ctx: 4096, published: 68_976_648_192, publishedTolerance: 0 },
  'llama3-8b': { kind: 'llama', n_layer: 32, d_model: 4096, n_head: 32, n_kv_head: 8, d_ff: 14336, vocab: 128256, n_ctx: 8192, published: 8_030_261_248, publishedTolerance: 0 },
  // EasyLM vqlm_* configs (seeds.md §1.3; the table's totals are rounded to 3 digits)
  'lvm-300m': { kind: 'llama', n_layer: 22, d_model: 1024, n_head: 8, d_ff: 2688, vocab: 8292, n_ctx: 4096, published: 0.291e9, publishedTolerance: 0.005 },
  'lvm-600m': { kind: 'llama', n_layer: 22, d_model: 1536, n_head: 16, d_ff: 4096, vocab: 8292, n_ctx: 4096, published: 0.648e9, publishedTolerance: 0.005 },
  'lvm-1b': { kind: 'llama', n_layer: 22, d_model: 2048, n_head: 16, d_ff: 5504, vocab: 8292, n_ctx: 4096, published: 1.147e9, publishedTolerance: 0.005 },
  'lvm-3b': { kind: 'llama', n_layer: 26, d_model: 3200, n_head: 32, d_ff: 8640, vocab: 8292, n_ctx: 4096, published: 3.275e9, publishedTolerance: 0.005 },
  'lvm-7b': { kind: 'llama', n_layer: 32, d_model: 4096, n_head: 32, d_ff: 11008, vocab: 8292, n_ctx: 4096, published: 6.544e9, publishedTolerance: 0.005 },
  'tiny-gpt': { kind: 'gpt2', n_layer: 4, d_model: 64, n_head: 4, vocab: 256, n_ctx: 64 },
  'tiny-llama': { kind: 'llama', n_layer: 4, d_model: 64, n_head: 4, n_kv_head: 2, d_ff: 176, vocab: 256, n_ctx: 64 },
  'tiny-lvm': { kind: 'llama', n_layer: 4, d_model: 64, n_head: 4, n_kv_head: 2, d_ff: 176, vocab: 256, n_ctx: 64 },
};

function enumerate(c: Published): number {
  const h = c.d_model;
  const shapes: number[][] = [];
  if (c.kind === 'gpt2') {
    const ff = c.d_ff ?? 4 * h;
    shapes.push([c.vocab, h], [c.n_ctx, h]); // wte, wpe
    for (let i = 0; i < c.n_layer; i++) {
      shapes.push([h], [h]); // ln_1 weight, bias
      shapes.push([h, 3 * h], [3 * h]); // c_attn
      shapes.push([h, h], [h]); // attn c_proj
      shapes.push([h], [h]); // ln_2
      shapes.push([h, ff], [ff]); // c_fc
      shapes.push([ff, h], [h]); // mlp c_proj
    }
    shapes.push([h], [h]); // ln_f; lm_head tied to wte
  } else {
    const headDim = h / c.n_head;
    const kv = (c.n_kv_head ?? c.n_head) * headDim;
    shapes.push([c.vocab, h]); // embed_tokens
    for (let i = 0; i < c.n_layer; i++) {
      shapes.push([h, h], [kv, h], [kv, h], [h, h]); // q, k, v, o
      shapes.push([c.d_ff!, h], [c.d_ff!, h], [h, c.d_ff!]); // gate, up, down
      shapes.push([h], [h]); // input_layernorm, post_attention_layernorm
    }
    shapes.push([h], [c.vocab, h]); // norm, lm_head (untied)
  }
  return shapes.reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
}

describe('tuner/model: presets', () => {
  it('has every preset the design names, each with a source', () => {
    for (const name of ['gpt3-1.3b', 'gpt3-2.7b', 'gpt3-6.7b', 'gpt3-13b', 'gpt3-22b', 'gpt3-175b', 'llama2-7b', 'llama2-13b', 'llama2-70b', 'llama3-8b', 'lvm-300m', 'lvm-600m', 'lvm-1b', 'lvm-3b', 'lvm-7b', 'tiny-gpt', 'tiny-llama', 'tiny-lvm']) {
      assert.ok(PRESETS[name], name);
      assert.ok(PRESETS[name]!.source.length > 20, `${name} source`);
    }
    assert.deepEqual([...PRESET_NAMES].sort(), Object.keys(PUBLISHED).sort());
  });

  for (const [name, cfg] of Object.entries(PUBLISHED)) {
    it(`${name}: parameter count equals the published architecture's within 0.1%`, () => {
      const exact = enumerate(cfg);
      const ours = paramCounts(resolveModel(name)).total;
      assert.ok(Math.abs(ours - exact) / exact <= 1e-3, `${name}: ${ours} vs ${exact}`);
      if (cfg.published !== undefined) {
        const tol = cfg.publishedTolerance ?? 0;
        assert.ok(Math.abs(exact - cfg.published) <= tol * cfg.published, `${name}: enumeration ${exact} vs published ${cfg.published}`);
      }
    });
  }

  it('LVM presets use 8192 codes + 100 specials, 256 tokens per image and 16 images per sequence', () => {
    for (const n of ['lvm-300m', 'lvm-600m', 'lvm-1b', 'lvm-3b', 'lvm-7b']) {
      const m = resolveModel(n);
      assert.equal(m.vocab, 8192 + 100);
      assert.equal(m.tokensPerImage! * m.imagesPerSequence!, m.seqLen);
      assert.equal(m.seqLen, 4096);
      assert.equal(m.tiedEmbeddings, false);
    }
    const t = resolveModel('tiny-lvm');
    assert.deepEqual([t.layers, t.hidden, t.heads, t.kvHeads, t.vocab, t.seqLen, t.tokensPerImage, t.imagesPerSequence], [4, 64, 4, 2, 256, 64, 16, 4]);
  });

  it('the SwiGLU rule reproduces LLaMA-2 7B/13B and (with ×1.3, multiple 4096) 70B', () => {
    assert.equal(swigluFfn(4096), 11008);
    assert.equal(swigluFfn(5120), 13824);
    assert.equal(swigluFfn(8192, 4096, 1.3), 28672);
  });
});

describe('tuner/model: resolveModel', () => {
  const ok: Array<{ name: string; input: Parameters<typeof resolveModel>[0]; check: (m: ModelSpec) => void }> = [
    { name: 'preset name', input: 'llama2-70b', check: (m) => assert.equal(m.kvHeads, 8) },
    { name: 'inline JSON, GPT default ffn 4h and tied', input: '{"arch":"gpt","layers":2,"hidden":32,"heads":4,"vocab":100,"seqLen":16}', check: (m) => { assert.equal(m.ffnHidden, 128); assert.equal(m.tiedEmbeddings, true); assert.equal(m.kvHeads, 4); } },
    { name: 'object, LLaMA default ffn by the SwiGLU rule', input: { arch: 'llama', layers: 2, hidden: 4096, heads: 32, vocab: 100, seqLen: 16 }, check: (m) => { assert.equal(m.ffnHidden, 11008); assert.equal(m.tiedEmbeddings, false); } },
    { name: 'preset with overrides', input: { preset: 'gpt3-1.3b', heads: 16, vocab: 50304 } as never, check: (m) => { assert.equal(m.heads, 16); assert.equal(m.layers, 24); } },
  ];
  for (const c of ok) it(`accepts ${c.name}`, () => c.check(resolveModel(c.input)));

  const bad: Array<{ name: string; input: Parameters<typeof resolveModel>[0]; field: string; mentions?: string }> = [
    { name: 'an unknown preset (lists the valid ones)', input: 'gpt5', field: 'model', mentions: 'llama2-7b' },
    { name: 'a bad arch', input: { arch: 'rnn' as never, layers: 1, hidden: 8, heads: 1, vocab: 2, seqLen: 2 }, field: 'model.arch', mentions: 'gpt, llama, lvm' },
    { name: 'heads not dividing hidden', input: { arch: 'gpt', layers: 1, hidden: 10, heads: 3, vocab: 2, seqLen: 2 }, field: 'model.heads' },
    { name: 'kvHeads not dividing heads', input: { arch: 'llama', layers: 1, hidden: 64, heads: 4, kvHeads: 3, vocab: 2, seqLen: 2 }, field: 'model.kvHeads' },
    { name: 'a missing field', input: { arch: 'llama', hidden: 64, heads: 4, vocab: 2, seqLen: 2 }, field: 'model.layers' },
    { name: 'a non-integer', input: { arch: 'llama', layers: 1.5, hidden: 64, heads: 4, vocab: 2, seqLen: 2 }, field: 'model.layers' },
    { name: 'broken JSON', input: '{"arch":', field: 'model' },
  ];
  for (const c of bad) {
    it(`rejects ${c.name}`, () => {
      assert.throws(
        () => resolveModel(c.input),
        (e: unknown) => isMistError(e) && e.code === 'BAD_INPUT' && e.message.startsWith(`${c.field}:`) && (!c.mentions || e.message.includes(c.mentions)),
      );
    });
  }
});

describe('tuner/model: FLOPs (research/validation.md §1.2, §1.6)', () => {
  const cases = [
    { name: 'gpt3-1.3b', B: 32, s: 2048 },
    { name: 'gpt3-175b', B: 1536, s: 2048 },
    { name: 'gpt3-22b', B: 512, s: 1024 },
  ];
  for (const c of cases) {
    it(`${c.name}: model FLOPs = 72·B·s·L·h²·(1 + s/6h + V/12Lh)`, () => {
      const m = resolveModel(c.name);
      const { layers: L, hidden: h, vocab: V } = m;
      const want = 72 * c.B * c.s * L * h * h * (1 + c.s / (6 * h) + V / (12 * L * h));
      const got = modelFlopsPerIteration(m, c.B, c.s);
      assert.ok(Math.abs(got - want) / want < 1e-12, `${got} vs ${want}`);
    });
    it(`${c.name}: per-layer forward GEMMs = 24·b·s·h² + 4·b·s²·h and the logit layer 2·b·s·h·V (SC21 §1.2 parts)`, () => {
      const m = resolveModel(c.name);
      const q = blockQuantities(m, { seqLen: c.s, flash: false, dropout: 0.1 });
      const h = m.hidden;
      for (const [b, tp] of [[1, 1], [4, 2], [2, 8]] as const) {
        const want = (24 * b * c.s * h * h + 4 * b * c.s * c.s * h) / tp;
        const got = interpret(q.flopsFwd, { b, tp });
        assert.ok(Math.abs(got - want) / want < 1e-12);
      }
    });
  }
  it('GPT with full recompute: 4 layer passes + 3 logit passes = 96·B·s·l·h²·(1 + s/6h + V/16lh) (SC21 eq. 3)', () => {
    const m = resolveModel('gpt3-175b');
    const B = 1536;
    const s = 2048;
    const q = blockQuantities(m, { seqLen: s, flash: false, dropout: 0 });
    const hw = modelFlopsPerIteration(m, B, s) + B * m.layers * interpret(q.flopsFwd, { b: 1, tp: 1 });
    const { layers: l, hidden: h, vocab: V } = m;
    const want = 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));
    assert.ok(Math.abs(hw - want) / want < 1e-12, `${hw} vs ${want}`);
  });
  it("LLaMA/LVM model FLOPs follow Megatron's num_floating_point_operations with GQA and SwiGLU (validation.md §1.6)", () => {
    for (const name of ['llama2-70b', 'llama3-8b', 'lvm-7b']) {
      const m = resolveModel(name);
      const B = 64;
      const s = m.seqLen;
      const { layers: L, hidden: h, vocab: V, heads: a, kvHeads: g, ffnHidden: ffn } = m;
      const q = h; // query projection size
      const want = 12 * B * s * L * h * h * ((1 + g / a + s / h) * (q / h) + (ffn / h) * 1 * (3 / 2) + V / (2 * L * h));
      const got = modelFlopsPerIteration(m, B, s);
      assert.ok(Math.abs(got - want) / want < 1e-12, `${name}: ${got} vs ${want}`);
    }
    assert.match(FLOPS_CONVENTION, /not halved/);
  });
});

describe('tuner/model: activation bytes (Korthikanti et al., validation.md §2.1)', () => {
  // GPT block with dropout, no flash, no sequence parallelism: the configurations Table 2 covers
  const configs = [
    { name: 'gpt3-1.3b', s: 2048 },
    { name: 'gpt3-22b', s: 2048 },
    { name: 'gpt3-175b', s: 2048 },
  ];
  for (const cfg of configs) {
    const m = resolveModel(cfg.name);
    const q = blockQuantities(m, { seqLen: cfg.s, flash: false, dropout: 0.1 });
    const { hidden: h, heads: a } = m;
    const s = cfg.s;
    for (const [b, t] of [[1, 1], [2, 1], [1, 2], [4, 4], [1, 8]] as const) {
      const sbh = s * b * h;
      it(`${cfg.name} b=${b} t=${t}: none = sbh(10 + 24/t + 5as/(ht)), selective = sbh(10 + 24/t), full = 2sbh`, () => {
        const env = { b, tp: t };
        const near = (got: number, want: number): void => assert.ok(Math.abs(got - want) / want < 1e-12, `${got} vs ${want}`);
        near(interpret(q.saved.none, env), sbh * (10 + 24 / t + (5 * a * s) / (h * t)));
        near(interpret(q.saved.selective, env), sbh * (10 + 24 / t));
        near(interpret(q.saved.full, env), 2 * sbh);
        if (t === 1) near(interpret(q.saved.none, env), sbh * (34 + (5 * a * s) / h));
      });
    }
  }
  it('flash attention removes every s² term; no dropout removes the masks', () => {
    const m = resolveModel('gpt3-1.3b');
    const s = 2048;
    const flash = blockQuantities(m, { seqLen: s, flash: true, dropout: 0 });
    const env1 = { b: 1, tp: 1 };
    const sbh = s * m.hidden;
    // 32·sbh (34 minus the two hidden dropout masks) + the fp32 log-sum-exp of every row and head
    assert.equal(interpret(flash.saved.none, env1), 32 * sbh + 4 * m.heads * s);
    const noDrop = blockQuantities(m, { seqLen: s, flash: false, dropout: 0 });
    assert.equal(interpret(noDrop.saved.none, env1), sbh * (32 + (2 * m.heads * s) / m.hidden));
  });
  it('norms drops the two norm outputs (4sbh, split by t only under SP), pointwise also the activation output (2sbf/t); the core only without flash', () => {
    const near = (got: number, want: number): void => assert.ok(Math.abs(got - want) / want < 1e-12, `${got} vs ${want}`);
    const s = 2048;
    for (const name of ['gpt3-1.3b', 'llama2-7b']) {
      const m = resolveModel(name);
      for (const [b, t] of [[1, 1], [2, 4]] as const) {
        const env = { b, tp: t };
        const sbh = s * b * m.hidden;
        const sbf = s * b * m.ffnHidden;
        const noFlash = blockQuantities(m, { seqLen: s, flash: false, dropout: 0 });
        near(interpret(noFlash.saved.pointwise, env), interpret(noFlash.saved.selective, env) - 4 * sbh - (2 * sbf) / t);
        near(interpret(noFlash.saved.norms, env), interpret(noFlash.saved.selective, env) - 4 * sbh);
        const flash = blockQuantities(m, { seqLen: s, flash: true, dropout: 0 });
        near(interpret(flash.saved.pointwise, env), interpret(flash.saved.none, env) - 4 * sbh - (2 * sbf) / t);
        near(interpret(flash.saved.norms, env), interpret(flash.saved.none, env) - 4 * sbh);
        const sp = blockQuantities(m, { seqLen: s, flash: true, dropout: 0, sequenceParallel: true });
        near(interpret(sp.saved.pointwise, env), interpret(sp.saved.none, env) - (4 * sbh) / t - (2 * sbf) / t);
        assert.ok(interpret(flash.saved.pointwise, env) > interpret(flash.saved.full, env));
        assert.equal(noFlash.pointwise.withCore, true);
        assert.equal(flash.pointwise.withCore, false);
      }
    }
  });
  it('model-state bytes per parameter: 16 with bf16 grads, 18 with fp32 main grads', () => {
    assert.equal(stateBytesPerParam('bf16'), 16);
    assert.equal(stateBytesPerParam('fp32'), 18);
  });
});

describe('tuner/model: activation bytes with sequence parallelism (Korthikanti Table 2, Megatron theoretical_memory_usage; validation.md §1.6, §2.1)', () => {
  const configs = [
    { name: 'gpt3-1.3b', s: 2048 },
    { name: 'gpt3-22b', s: 2048 },
    { name: 'gpt3-175b', s: 2048 },
  ];
  const near = (got: number, want: number): void => assert.ok(Math.abs(got - want) / want < 1e-12, `${got} vs ${want}`);
  for (const cfg of configs) {
    const m = resolveModel(cfg.name);
    const sp = blockQuantities(m, { seqLen: cfg.s, flash: false, dropout: 0.1, sequenceParallel: true });
    const plain = blockQuantities(m, { seqLen: cfg.s, flash: false, dropout: 0.1 });
    const { hidden: h, heads: a } = m;
    const s = cfg.s;
    for (const [b, t] of [[1, 1], [2, 1], [1, 2], [4, 4], [1, 8]] as const) {
      const sbh = s * b * h;
      it(`${cfg.name} b=${b} t=${t}: none = sbh(34/t + 5as/(ht)), selective = 34·sbh/t, full = 2sbh/t`, () => {
        const env = { b, tp: t };
        near(interpret(sp.saved.none, env), sbh * (34 / t + (5 * a * s) / (h * t)));
        near(interpret(sp.saved.selective, env), (sbh * 34) / t);
        near(interpret(sp.saved.full, env), (2 * sbh) / t);
        // the pipeline payload (and the in-flight output copies) is the sequence shard
        near(interpret(sp.out, env), (2 * sbh) / t);
      });
    }
    it(`${cfg.name}: at tp = 1 sequence parallelism changes nothing (Megatron turns it off there)`, () => {
      const env = { b: 2, tp: 1 };
      for (const k of ['none', 'selective', 'full'] as const) assert.equal(interpret(sp.saved[k], env), interpret(plain.saved[k], env));
      assert.equal(interpret(sp.memFwd, env), interpret(plain.memFwd, env));
      assert.equal(interpret(sp.out, env), interpret(plain.out, env));
    });
  }
  it("selective with SP equals Megatron's s·b·h·(18 + 4·ffn/h)/t for any GPT ffn (theoretical_memory_usage.py)", () => {
    const m = resolveModel({ arch: 'gpt', layers: 4, hidden: 1024, heads: 16, ffnHidden: 3072, vocab: 1000, seqLen: 1024 });
    const q = blockQuantities(m, { seqLen: 1024, flash: true, dropout: 0.1, sequenceParallel: true });
    for (const [b, t] of [[1, 2], [3, 8]] as const) {
      near(interpret(q.saved.selective, { b, tp: t }), (1024 * b * 1024 * (18 + (4 * 3072) / 1024)) / t);
    }
  });
  it('flash without dropout under SP: 32·sbh/t plus the fp32 log-sum-exp 4·b·a·s/t', () => {
    const m = resolveModel('gpt3-1.3b');
    const q = blockQuantities(m, { seqLen: 2048, flash: true, dropout: 0, sequenceParallel: true });
    near(interpret(q.saved.none, { b: 2, tp: 4 }), (32 * 2048 * 2 * m.hidden) / 4 + (4 * 2 * m.heads * 2048) / 4);
  });
  it('the memory-bound traffic of norms, residual adds and dropouts shrinks by tp; the split GEMM-side traffic is unchanged', () => {
    const m = resolveModel('gpt3-22b');
    const sp = blockQuantities(m, { seqLen: 2048, flash: true, dropout: 0.1, sequenceParallel: true });
    const plain = blockQuantities(m, { seqLen: 2048, flash: true, dropout: 0.1 });
    const sbh = 2048 * m.hidden;
    // plain: (8 + 12 + 10)·sbh replicated; SP: the same /t
    near(interpret(plain.memFwd, { b: 1, tp: 8 }) - interpret(sp.memFwd, { b: 1, tp: 8 }), 30 * sbh * (1 - 1 / 8));
  });
  it('TP collectives: plain TP all-reduces 2 + 2 per block; SP all-gathers and reduce-scatters the same buffers and re-gathers 2 inputs in backward', () => {
    const m = resolveModel('gpt3-1.3b');
    const plain = blockQuantities(m, { seqLen: 2048, flash: true, dropout: 0 }).tpComm;
    const sp = blockQuantities(m, { seqLen: 2048, flash: true, dropout: 0, sequenceParallel: true }).tpComm;
    const env = { b: 1, tp: 4 };
    const shape = (cs: typeof plain.fwd) => cs.map((c) => [c.op, c.count, interpret(c.bytes, env)]);
    const x = 2 * 2048 * m.hidden;
    assert.deepEqual(shape(plain.fwd), [['ar', 2, x]]);
    assert.deepEqual(shape(plain.bwd), [['ar', 2, x]]);
    assert.deepEqual(plain.bwdRegather, []);
    assert.deepEqual(shape(sp.fwd), [['ag', 2, x], ['rs', 2, x]]);
    assert.deepEqual(shape(sp.bwd), [['ag', 2, x], ['rs', 2, x]]);
    assert.deepEqual(shape(sp.bwdRegather), [['ag', 2, x]]);
    assert.deepEqual(sp.fedGemms, ['qkv', 'proj', 'fc1', 'fc2']);
  });
});
