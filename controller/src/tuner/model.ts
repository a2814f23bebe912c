/**
 * Model specs and the closed-form per-layer quantities of the cost model.
 *
 * Three layer kinds (mist.md §3.2, priced the way Mist prices its traced layers):
 *  - block: one transformer layer (all layers are identical);
 *  - pre:   the embedding (token, and for GPT learned positions);
 *  - post:  final norm, LM head and the loss.
 *
 * Architectures:
 *  - gpt:   learned positions, LayerNorm with biases, GeLU MLP of ffnHidden (4h), biases on every linear layer
 *           (GPT-3 / Megatron), tied input/output embeddings.
 *  - llama: RoPE, RMSNorm, SwiGLU MLP (three matrices of h×ffn), grouped-query attention (kvHeads), no biases,
 *           untied embeddings.
 *  - lvm:   the LLaMA block over visual tokens (VQGAN codes); only vocab and sequence layout differ.
 *
 * Every quantity is an Expr over two symbols — `b` (micro-batch per GPU) and `tp` (tensor-parallel degree) — with
 * the sequence length, flash attention and dropout folded in as constants. Units: elements for parameters, bytes
 * for memory (bf16 activations, 1-byte dropout masks), FLOPs for compute. Per-GPU values under Megatron tensor
 * parallelism; without sequence parallelism the replicated parts (norms, dropouts, residual adds and their
 * activations) stay whole, with it (`LayerWorkload.sequenceParallel`, Korthikanti et al. 2022 §4.2.2) they are split
 * along the sequence by tp as well.
 */
import type { Arch, ModelSpec } from '../domain/model.js';
import { badInput } from '../../../protocol/src/errors.js';
import { PRESETS, PRESET_NAMES } from './presets.js';
import { add, div, max, mul, num, sub, sym, type Expr } from './symbolic/expr.js';

export const B = sym('b');
export const TP = sym('tp');

/** LLaMA's SwiGLU sizing rule: multipleOf · ceil((2/3 · 4h · multiplier) / multipleOf). */
export function swigluFfn(hidden: number, multipleOf = 256, multiplier = 1): number {
  const raw = Math.floor(((2 * 4 * hidden) / 3) * multiplier);
  return multipleOf * Math.ceil(raw / multipleOf);
}

export function defaultFfn(arch: Arch, hidden: number): number {
  return arch === 'gpt' ? 4 * hidden : swigluFfn(hidden);
}

const ARCHES: readonly Arch[] = ['gpt', 'llama', 'lvm'];
const INT_FIELDS = ['layers', 'hidden', 'heads', 'kvHeads', 'ffnHidden', 'vocab', 'seqLen'] as const;

/**
 * Resolve a model from a preset name, a ModelSpec-like object, or inline JSON text with keys
 * arch (gpt|llama|lvm), layers, hidden, heads, kvHeads?, ffnHidden?, vocab, seqLen (plus optional name,
 * tiedEmbeddings, tokensPerImage, imagesPerSequence, or `preset` to start from a preset and override dims).
 */
export function resolveModel(input: string | Partial<ModelSpec> & { preset?: string }, field = 'model'): ModelSpec {
  if (typeof input === 'string') {
    const t = input.trim();
    if (t.startsWith('{')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(t);
      } catch (e) {
        throw badInput(field, `is not valid JSON (${(e as Error).message})`, 'give a preset name or a JSON object with arch, layers, hidden, heads, vocab, seqLen');
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw badInput(field, 'JSON must be an object', 'e.g. {"arch":"gpt","layers":4,...}');
      return resolveModel(parsed as Partial<ModelSpec>, field);
    }
    const p = PRESETS[t];
    if (!p) throw badInput(field, `unknown preset ${JSON.stringify(t)}`, `valid presets: ${PRESET_NAMES.join(', ')}; or inline JSON dims`);
    const { source: _source, ...spec } = p;
    return { ...spec };
  }
  if (input === null || typeof input !== 'object') throw badInput(field, 'must be a preset name or an object of dims', `valid presets: ${PRESET_NAMES.join(', ')}`);
  let base: Partial<ModelSpec> = {};
  const { preset, ...rest } = input as Partial<ModelSpec> & { preset?: string };
  if (preset !== undefined) {
    base = resolveModel(String(preset), `${field}.preset`);
    // derived dims follow their overridden sources unless given too
    if (rest.heads !== undefined && rest.kvHeads === undefined && base.kvHeads === base.heads) delete base.kvHeads;
    if (rest.hidden !== undefined && rest.ffnHidden === undefined) delete base.ffnHidden;
  }
  const m: Partial<ModelSpec> = { ...base, ...rest };
  if (!ARCHES.includes(m.arch as Arch)) throw badInput(`${field}.arch`, `must be one of ${ARCHES.join(', ')} (got ${JSON.stringify(m.arch)})`);
  const arch = m.arch as Arch;
  for (const k of ['layers', 'hidden', 'heads', 'vocab', 'seqLen'] as const) {
    if (m[k] === undefined) throw badInput(`${field}.${k}`, 'is required', 'a positive integer');
  }
  const kvHeads = m.kvHeads ?? m.heads!;
  const ffnHidden = m.ffnHidden ?? defaultFfn(arch, m.hidden!);
  const spec: ModelSpec = {
    ...(m.name !== undefined ? { name: m.name } : {}),
    arch,
    layers: m.layers!,
    hidden: m.hidden!,
    heads: m.heads!,
    kvHeads,
    ffnHidden,
    vocab: m.vocab!,
    seqLen: m.seqLen!,
    tiedEmbeddings: m.tiedEmbeddings ?? arch === 'gpt',
    ...(m.tokensPerImage !== undefined ? { tokensPerImage: m.tokensPerImage } : {}),
    ...(m.imagesPerSequence !== undefined ? { imagesPerSequence: m.imagesPerSequence } : {}),
  };
  validateModel(spec, field);
  return spec;
}

export function validateModel(m: ModelSpec, field = 'model'): void {
  if (!ARCHES.includes(m.arch)) throw badInput(`${field}.arch`, `must be one of ${ARCHES.join(', ')} (got ${JSON.stringify(m.arch)})`);
  for (const k of INT_FIELDS) {
    const v = m[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw badInput(`${field}.${k}`, `must be a positive integer (got ${JSON.stringify(v)})`);
  }
  if (m.hidden % m.heads !== 0) throw badInput(`${field}.heads`, `${m.heads} does not divide hidden ${m.hidden}`, 'heads must divide hidden');
  if (m.heads % m.kvHeads !== 0) throw badInput(`${field}.kvHeads`, `${m.kvHeads} does not divide heads ${m.heads}`, 'kvHeads must divide heads');
  if (m.arch === 'gpt' && m.kvHeads !== m.heads) throw badInput(`${field}.kvHeads`, `GPT uses multi-head attention (kvHeads = heads = ${m.heads})`);
  if (m.arch === 'lvm' && m.tokensPerImage !== undefined && m.imagesPerSequence !== undefined && m.tokensPerImage * m.imagesPerSequence !== m.seqLen) {
    throw badInput(`${field}.seqLen`, `${m.seqLen} ≠ tokensPerImage ${m.tokensPerImage} × imagesPerSequence ${m.imagesPerSequence}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Parameter counts (elements)

export interface ParamCounts {
  block: number;
  /** Replicated under TP (norms; row-parallel biases for GPT). */
  blockReplicated: number;
  pre: number;
  /** Post-layer parameters that exist on their own (final norm + untied head). */
  post: number;
  /** Head matrix V·h (owned by `pre` when tied). */
  head: number;
  total: number;
}

export function paramCounts(m: ModelSpec): ParamCounts {
  const h = m.hidden;
  const f = m.ffnHidden;
  const kvDim = (h / m.heads) * m.kvHeads;
  let block: number;
  let blockReplicated: number;
  let pre: number;
  let postNorm: number;
  if (m.arch === 'gpt') {
    // qkv 3h²+3h, proj h²+h, fc1 hf+f, fc2 fh+h, two LayerNorms 2·2h
    block = 4 * h * h + 2 * h * f + 9 * h + f;
    blockReplicated = 2 * h + 4 * h; // proj and fc2 biases (row-parallel), LayerNorms
    pre = m.vocab * h + m.seqLen * h;
    postNorm = 2 * h;
  } else {
    // q h², k,v h·kvDim each, o h², SwiGLU 3hf, two RMSNorms h each
    block = 2 * h * h + 2 * h * kvDim + 3 * h * f + 2 * h;
    blockReplicated = 2 * h;
    pre = m.vocab * h;
    postNorm = h;
  }
  const head = m.vocab * h;
  const tied = m.tiedEmbeddings ?? m.arch === 'gpt';
  const post = postNorm + (tied ? 0 : head);
  return { block, blockReplicated, pre, post, head, total: m.layers * block + pre + post };
}

// ---------------------------------------------------------------------------------------------------------------
// Per-layer quantities as expressions of (b, tp)

export interface LayerWorkload {
  /** Training sequence length (the plan's seqLen). */
  seqLen: number;
  flash: boolean;
  /** Dropout probability; > 0 adds masks (1 B/element) and dropout outputs. */
  dropout: number;
  /**
   * Megatron sequence parallelism (default false): the parts that plain TP replicates (LayerNorm, dropout, residual
   * adds, the inputs of the column-parallel GEMMs) are split along the sequence by tp; TP all-reduces become
   * all-gather + reduce-scatter (Korthikanti et al. 2022 §4.2.2, research/validation.md §1.6/§2.1). Every form
   * reduces to the plain-TP one at tp = 1.
   */
  sequenceParallel?: boolean;
}

/** A tensor-parallel collective of a layer pass: `count` collectives `op` of `bytes` each (the full buffer). */
export interface TpCollective {
  op: 'ar' | 'ag' | 'rs';
  count: number;
  bytes: Expr;
}

/**
 * A layer's tensor-parallel communication per micro-batch.
 *  - fwd / bwd: collectives on the critical path of the forward and backward pass;
 *  - bwdRegather: with sequence parallelism, the all-gather of the saved sequence-sharded input of each
 *    column-parallel GEMM, needed for its weight gradient; Megatron launches it asynchronously before the input-
 *    gradient GEMM (Korthikanti §4.2.2; Megatron `LinearWithGradAccumulationAndAsyncCommunication`), so it runs
 *    concurrently with that GEMM;
 *  - fedGemms: the names of the GEMMs these collectives feed or drain (what `tpCommOverlap` overlaps them with).
 */
export interface TpComm {
  fwd: TpCollective[];
  bwd: TpCollective[];
  bwdRegather: TpCollective[];
  fedGemms: string[];
}

/** One GEMM (or batched GEMM) of the forward pass: FLOPs per GPU. Backward runs two GEMMs of the same size. */
export interface Gemm {
  name: string;
  flops: Expr;
}

export interface LayerQuantities {
  /** Parameters per GPU at this tp (elements). */
  params: Expr;
  /**
   * Saved activation bytes per GPU per micro-batch: without checkpointing, selective (attention core recomputed),
   * norms (norm outputs recomputed, and the core without flash: Megatron's --recompute-modules layernorm
   * [core_attn]), pointwise (norm and activation-function outputs recomputed; the core without flash), full.
   */
  saved: { none: Expr; selective: Expr; norms: Expr; pointwise: Expr; full: Expr };
  /** Transient bytes above the saved set while the layer runs forward (no-ckpt schedule) and backward. */
  fwdTransient: Expr;
  bwdTransient: Expr;
  /** Output bytes per GPU (the pipeline P2P payload for a block). */
  out: Expr;
  /** Forward GEMMs (per GPU). Backward = 2× each. */
  gemms: Gemm[];
  /** Forward bytes moved by memory-bound kernels (norms, softmax, elementwise, dropout, copies); backward 2×. */
  memFwd: Expr;
  memBwd: Expr;
  /** The attention core alone (what selective checkpointing recomputes): GEMMs and memory traffic of its forward. */
  core: { gemms: Gemm[]; memFwd: Expr };
  /**
   * What norms / pointwise checkpointing re-runs: the norms (normsMemFwd) or the norms and the activation
   * function (memFwd), in bytes moved, and the attention core too when `withCore` (without flash, whose kernel
   * keeps no scores to drop).
   */
  pointwise: { memFwd: Expr; normsMemFwd: Expr; withCore: boolean };
  /** With flash attention the core is one fused kernel whose backward recomputes the scores: bwd/fwd FLOP ratio. */
  coreBwdRatio: number;
  /** TP collectives per micro-batch (0 when tp = 1 is decided by the collective model). */
  tpComm: TpComm;
  /** Total forward FLOPs per GPU (sum of gemms), for reporting. */
  flopsFwd: Expr;
  /**
   * Bytes per GPU a split backward keeps from a layer's input-gradient pass until its weight-gradient pass: each
   * weight GEMM's input and output gradient (bf16). Blocks only (0 for the pre/post layers, which do not defer).
   */
  wgradRetained: Expr;
}

function sumFlops(gs: Gemm[]): Expr {
  return add(...gs.map((g) => g.flops));
}

/** The transformer block. */
export function blockQuantities(m: ModelSpec, w: LayerWorkload): LayerQuantities {
  const s = w.seqLen;
  const h = m.hidden;
  const a = m.heads;
  const f = m.ffnHidden;
  const kvDim = (h / a) * m.kvHeads;
  const drop = w.dropout > 0;
  const sp = w.sequenceParallel === true;
  const sbh = mul(s, B, h); // elements of one hidden-state tensor
  const sbhT = div(sbh, TP);
  /** What plain TP replicates is split along the sequence under sequence parallelism. */
  const seqSplit = (e: Expr): Expr => (sp ? div(e, TP) : e);
  const bas2T = div(mul(B, a, s, s), TP); // attention score elements per GPU
  const sbfT = div(mul(s, B, f), TP);
  const pc = paramCounts(m);
  const params = add(div(pc.block - pc.blockReplicated, TP), pc.blockReplicated);
  const llama = m.arch !== 'gpt';

  // --- saved activations (Korthikanti et al. 2022 §4 accounting, bytes) ---
  // replicated under TP: the two norm inputs, the QKV and MLP inputs (norm outputs), hidden dropout masks; split
  // by tp under sequence parallelism (the column-parallel GEMMs save their sequence-sharded input and re-gather
  // it in backward), giving Korthikanti's sbh(34/t + 5as/(ht))
  const replicated = seqSplit(add(mul(2, 2, sbh), mul(2, sbh), mul(2, sbh), drop ? mul(2, sbh) : 0));
  // split under TP: Q, K, V, the projection input, the MLP intermediates
  const qkv = mul(2, div(mul(s, B, h + 2 * kvDim), TP));
  const projIn = mul(2, sbhT);
  const mlp = llama
    ? mul(6, sbfT) // gate and up outputs (4sbf) + the w2 input (2sbf)
    : mul(4, sbfT); // GeLU input (2sbf) + fc2 input (2sbf)
  const split = add(qkv, projIn, mlp);
  // attention core: softmax output (2), attention-dropout mask (1) and output (2) per score; flash keeps only the
  // fp32 log-sum-exp per row and regenerates dropout from the RNG state.
  const scores = w.flash ? mul(4, div(mul(B, a, s), TP)) : mul(drop ? 5 : 2, bas2T);
  const none = add(replicated, split, scores);
  const selective = add(replicated, split);
  // pointwise: the two norm outputs (QKV and MLP inputs) and the activation function's output (fc2 / w2 input)
  // are recomputed from what stays saved (the norm inputs, the fc1 / gate-up outputs); with flash the core keeps
  // only its log-sum-exp, so it is not recomputed
  const normOutputs = seqSplit(mul(2, 2, sbh));
  const normsSaved = sub(w.flash ? none : selective, normOutputs);
  const pointwise = sub(normsSaved, mul(2, sbfT));
  const full = seqSplit(mul(2, sbh)); // the layer input (sequence-sharded under SP, as Megatron checkpoints it)

  // --- transient memory while the layer runs ---
  // (unchanged by sequence parallelism: the sharded output is smaller, but the all-gathered GEMM input and the
  // row-parallel GEMM's full-size partial output before its reduce-scatter take its place)
  // forward: raw scores before the softmax (no flash) or the MLP intermediate, plus the output being written
  const fwdTransient = add(max(w.flash ? 0 : mul(2, bas2T), mul(2, sbfT)), mul(2, sbh));
  // backward: the gradient of the largest activation (scores without flash, else dQ/dK/dV or the MLP
  // intermediate) plus input and output gradients
  const bwdTransient = add(max(w.flash ? mul(2, 3, sbhT) : mul(2, 2, bas2T), mul(2, 2, sbfT)), mul(2, 2, sbh));

  // --- FLOPs (forward, per GPU) ---
  const twoBs = mul(2, B, s);
  const coreGemms: Gemm[] = [
    { name: 'scores', flops: div(mul(2, B, s, s, h), TP) },
    { name: 'context', flops: div(mul(2, B, s, s, h), TP) },
  ];
  const gemms: Gemm[] = [
    { name: 'qkv', flops: div(mul(twoBs, h, h + 2 * kvDim), TP) },
    ...coreGemms,
    { name: 'proj', flops: div(mul(twoBs, h, h), TP) },
    ...(llama
      ? [
          { name: 'gate_up', flops: div(mul(twoBs, h, 2 * f), TP) },
          { name: 'down', flops: div(mul(twoBs, f, h), TP) },
        ]
      : [
          { name: 'fc1', flops: div(mul(twoBs, h, f), TP) },
          { name: 'fc2', flops: div(mul(twoBs, f, h), TP) },
        ]),
  ];

  // --- memory-bound traffic (bytes, forward) ---
  // norms: read + write each (2 × 2 × 2sbh); residual adds: read 2, write 1 (2 × 3 × 2sbh); hidden dropouts add
  // a mask write and a re-read; q/k/v layout copies (read + write); GeLU or SwiGLU elementwise; RoPE on q and k.
  // (sequence parallelism runs norms, residual adds and hidden dropouts on s/tp tokens)
  const norms = seqSplit(mul(8, sbh));
  const residual = seqSplit(mul(12, sbh));
  const hiddenDrop = drop ? seqSplit(mul(2, 5, sbh)) : num(0);
  const layout = mul(2, qkv);
  const act = llama ? mul(2, 3, sbfT) : mul(2, 2, sbfT);
  const rope = llama ? mul(2, 2, div(mul(s, B, h + kvDim), TP)) : num(0);
  // attention core without flash: fused scale-mask-softmax reads and writes the scores; dropout on the
  // probabilities reads them and writes output and mask
  const coreMem = w.flash ? num(0) : add(mul(4, bas2T), drop ? mul(5, bas2T) : 0);
  const memFwd = add(norms, residual, hiddenDrop, layout, act, rope, coreMem);
  const memBwd = mul(2, memFwd);
  // a deferred weight gradient needs each weight GEMM's input (qkv and MLP inputs: the full hidden state, as the
  // weight GEMM consumes it even under SP; the projection and fc2 / w2 inputs: split) and its output gradient
  const wgradIn = add(mul(2, sbh), sbhT, div(mul(s, B, f), TP));
  const wgradOut = add(div(mul(s, B, h + 2 * kvDim), TP), mul(2, sbh), llama ? mul(2, sbfT) : sbfT);
  const wgradRetained = mul(2, add(wgradIn, wgradOut));

  return {
    params,
    saved: { none, selective, norms: normsSaved, pointwise, full },
    fwdTransient,
    bwdTransient,
    out: seqSplit(mul(2, sbh)), // Megatron sends the sequence-sharded hidden state between stages under SP
    gemms,
    memFwd,
    memBwd,
    core: { gemms: coreGemms, memFwd: coreMem },
    pointwise: { memFwd: add(norms, act), normsMemFwd: norms, withCore: !w.flash },
    coreBwdRatio: w.flash ? 2.5 : 2,
    // plain TP: one all-reduce after each row-parallel GEMM (fwd: proj, fc2) and before each column-parallel input
    // gradient (bwd: qkv, fc1). SP: all-gather → qkv / fc1, proj / fc2 → reduce-scatter, mirrored in backward, and
    // the re-gather of the qkv and fc1 inputs for their weight gradients.
    tpComm: sp
      ? {
          fwd: [{ op: 'ag', count: 2, bytes: mul(2, sbh) }, { op: 'rs', count: 2, bytes: mul(2, sbh) }],
          bwd: [{ op: 'ag', count: 2, bytes: mul(2, sbh) }, { op: 'rs', count: 2, bytes: mul(2, sbh) }],
          bwdRegather: [{ op: 'ag', count: 2, bytes: mul(2, sbh) }],
          fedGemms: gemms.filter((g) => !coreGemms.includes(g)).map((g) => g.name),
        }
      : {
          fwd: [{ op: 'ar', count: 2, bytes: mul(2, sbh) }],
          bwd: [{ op: 'ar', count: 2, bytes: mul(2, sbh) }],
          bwdRegather: [],
          fedGemms: gemms.filter((g) => !coreGemms.includes(g)).map((g) => g.name),
        },
    flopsFwd: sumFlops(gemms),
    wgradRetained,
  };
}

/** The pre layer (embedding lookup; GPT adds learned positions and embedding dropout). Vocab-parallel under TP. */
export function preQuantities(m: ModelSpec, w: LayerWorkload): LayerQuantities {
  const s = w.seqLen;
  const h = m.hidden;
  const sbh = mul(s, B, h);
  const pc = paramCounts(m);
  const gpt = m.arch === 'gpt';
  const sp = w.sequenceParallel === true;
  const seqSplit = (e: Expr): Expr => (sp ? div(e, TP) : e);
  const drop = w.dropout > 0 && gpt;
  const params = gpt ? add(div(m.vocab * h, TP), m.seqLen * h) : div(pc.pre, TP);
  // int64 token ids (+ dropout mask; under SP the embedding output is reduce-scattered before the dropout)
  const saved = add(mul(8, B, s), drop ? seqSplit(sbh) : 0);
  const memFwd = add(mul(4, sbh), gpt ? seqSplit(mul(6, sbh)) : 0);
  return {
    params,
    saved: { none: saved, selective: saved, norms: saved, pointwise: saved, full: saved },
    fwdTransient: mul(2, 2, sbh),
    bwdTransient: mul(2, 2, sbh),
    out: seqSplit(mul(2, sbh)),
    gemms: [],
    memFwd,
    memBwd: mul(2, memFwd),
    core: { gemms: [], memFwd: num(0) },
    pointwise: { memFwd: num(0), normsMemFwd: num(0), withCore: false },
    coreBwdRatio: 2,
    // the vocab-parallel embedding's partial sums: all-reduced (plain TP) or reduce-scattered to the sequence shards
    // (SP, whose backward all-gathers the gradient)
    tpComm: sp
      ? { fwd: [{ op: 'rs', count: 1, bytes: mul(2, sbh) }], bwd: [{ op: 'ag', count: 1, bytes: mul(2, sbh) }], bwdRegather: [], fedGemms: [] }
      : { fwd: [{ op: 'ar', count: 1, bytes: mul(2, sbh) }], bwd: [], bwdRegather: [], fedGemms: [] },
    flopsFwd: num(0),
    wgradRetained: num(0),
  };
}

/**
 * The post layer: final norm, LM head (vocab-parallel under TP) and the cross-entropy loss in fp32.
 * `headResident`: whether this layer holds its own copy of the head matrix (untied, or tied but on another stage
 * than the embedding, as Megatron keeps a copy on the last stage).
 */
export function postQuantities(m: ModelSpec, w: LayerWorkload, headResident: boolean): LayerQuantities {
  const s = w.seqLen;
  const h = m.hidden;
  const V = m.vocab;
  const sbh = mul(s, B, h);
  const bsvT = div(mul(B, s, V), TP);
  const sp = w.sequenceParallel === true;
  const seqSplit = (e: Expr): Expr => (sp ? div(e, TP) : e);
  const normParams = m.arch === 'gpt' ? 2 * h : h;
  const params = add(normParams, headResident ? div(V * h, TP) : 0);
  // norm input, head input (both sequence-sharded under SP), fp32 softmax of the logits
  const saved = add(seqSplit(mul(4, sbh)), mul(4, bsvT));
  const gemms: Gemm[] = [{ name: 'logits', flops: mul(2, B, s, h, div(V, TP)) }];
  const memFwd = add(seqSplit(mul(8, sbh)), mul(14, bsvT)); // norm; logits → fp32, softmax read/write, loss
  return {
    params,
    saved: { none: saved, selective: saved, norms: saved, pointwise: saved, full: saved },
    // bf16 logits alive while the fp32 softmax is written (Mist's measured GPT-1.3B b=8 peak, mist.md §9.1,
    // fits 6·b·s·V bytes for the head, not more)
    fwdTransient: mul(2, bsvT),
    // the loss gradient is computed in place in the fp32 softmax buffer (as Megatron's vocab-parallel
    // cross-entropy does), then cast to bf16; plus the input gradient
    bwdTransient: add(mul(2, bsvT), mul(2, sbh)),
    out: num(0),
    gemms,
    memFwd,
    memBwd: mul(2, memFwd),
    core: { gemms: [], memFwd: num(0) },
    pointwise: { memFwd: num(0), normsMemFwd: num(0), withCore: false },
    coreBwdRatio: 2,
    // plain TP: logits input all-reduce (bwd) and the vocab-parallel cross-entropy's max/sum all-reduces (fwd, 3 floats
    // per row), both priced at 4·b·s bytes (kept as calibrated). SP: the cross-entropy all-reduces, the all-gather of
    // the sharded norm output into the logits GEMM, the reduce-scatter of its input gradient and the re-gather of
    // its input for the head's weight gradient.
    tpComm: sp
      ? {
          fwd: [{ op: 'ar', count: 1, bytes: mul(4, B, s) }, { op: 'ag', count: 1, bytes: mul(2, sbh) }],
          bwd: [{ op: 'rs', count: 1, bytes: mul(2, sbh) }],
          bwdRegather: [{ op: 'ag', count: 1, bytes: mul(2, sbh) }],
          fedGemms: ['logits'],
        }
      : { fwd: [{ op: 'ar', count: 1, bytes: mul(4, B, s) }], bwd: [{ op: 'ar', count: 1, bytes: mul(4, B, s) }], bwdRegather: [], fedGemms: ['logits'] },
    flopsFwd: sumFlops(gemms),
    wgradRetained: num(0),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Model-state bytes per parameter (mist.md §3.2: full_opts = 6 × fp16 weight bytes under mixed-precision Adam)

export type GradDtype = 'bf16' | 'fp32';

export const WEIGHT_BYTES = 2;
export const OPTIMIZER_BYTES = 12; // fp32 master weights + Adam m + v

export function gradBytes(d: GradDtype): number {
  return d === 'fp32' ? 4 : 2;
}

/** Bytes per parameter of model state: 16 (bf16 grads) or 18 (fp32 main grads). */
export function stateBytesPerParam(d: GradDtype): number {
  return WEIGHT_BYTES + gradBytes(d) + OPTIMIZER_BYTES;
}

// ---------------------------------------------------------------------------------------------------------------
// Model FLOPs (reporting convention)

export const FLOPS_CONVENTION =
  'megatron-2024: 3 × forward GEMM FLOPs (fwd + 2× bwd), no recompute, causal s² term not halved; for GPT = 72·B·s·L·h²·(1 + s/6h + V/12Lh) (Korthikanti eq. 7), for LLaMA/LVM the SwiGLU/GQA generalisation 12·B·s·L·h²·[(1 + g/a + s/h) + 3f/2h] + 6·B·s·h·V';

/** Model FLOPs of one iteration for `batch` sequences of length s (closed form, independent of the Expr code). */
export function modelFlopsPerIteration(m: ModelSpec, batch: number, s: number): number {
  const h = m.hidden;
  const L = m.layers;
  const V = m.vocab;
  const f = m.ffnHidden;
  const g = m.kvHeads;
  const a = m.heads;
  const mlp = m.arch === 'gpt' ? f / h : (3 * f) / (2 * h);
  return 12 * batch * s * L * h * h * ((1 + g / a + s / h) + mlp) + 6 * batch * s * h * V;
}
