/**
 * Plan → Megatron-LM launch: torchrun settings and `pretrain_gpt.py` arguments, plus a precise list of the plan
 * features Megatron-LM cannot express and how each is approximated (DESIGN.md §6, runtime `megatron`).
 *
 * Pinned target: Megatron-LM (Megatron-Core) at NVIDIA/Megatron-LM commit 000c4ac24f61159c138b0975def722c65245983c;
 * every flag emitted here is checked against megatron/training/arguments.py of that tree (--attention-backend
 * {flash, unfused}, --recompute-modules, --decoder-first/last-pipeline-num-layers, --grad-reduce-in-bf16,
 * --use-megatron-fsdp --data-parallel-sharding-strategy {optim_grads, optim_grads_params} --ckpt-format fsdp_dtensor,
 * --optimizer-cpu-offload, which validate_args only accepts with --use-precision-aware-optimizer), plus Megatron-FSDP's
 * required flags from docs/discussions/megatron-fsdp-user-guide (add --no-gradient-accumulation-fusion
 * --use-distributed-optimizer).
 *
 * Pure: no I/O. The agent never imports the controller, so the Plan is described structurally here.
 */

export const MEGATRON_PIN = {
  repo: 'NVIDIA/Megatron-LM',
  commit: '000c4ac24f61159c138b0975def722c65245983c',
  argumentsFile: 'megatron/training/arguments.py',
  entry: 'pretrain_gpt.py',
} as const;

export interface MegatronPlanStage {
  layers: [number, number];
  dp: number;
  tp: number;
  microBatch: number;
  zero: 0 | 1 | 2 | 3;
  ckpt: { mode: 'none' | 'selective' | 'norms' | 'pointwise' | 'layers' | 'full'; count?: number; others?: 'selective' | 'norms' | 'pointwise' };
  offload: { weights: number; grads: number; optimizer: number; activations: number };
  splitBackward?: boolean;
}

export interface MegatronPlan {
  id?: string;
  model: { arch: 'gpt' | 'llama' | 'lvm'; layers: number; hidden: number; heads: number; kvHeads: number; ffnHidden: number; vocab: number; seqLen: number; tiedEmbeddings?: boolean };
  cluster: { nodes: number; gpusPerNode: number };
  globalBatch: number;
  seqLen: number;
  gradAccum: number;
  workload: { flash: boolean; dropout: number; gradDtype: 'bf16' | 'fp32'; sequenceParallel?: boolean; tpCommOverlap?: boolean };
  stages: MegatronPlanStage[];
  prePost: { dp: number; tp: number; zero: 0 | 1 | 2 | 3 };
}

export interface Approximation {
  /** The plan feature, e.g. "stages[1].offload.weights". */
  feature: string;
  /** What Megatron-LM runs instead, and the consequence. */
  approximation: string;
}

export interface MegatronLaunch {
  pin: typeof MEGATRON_PIN;
  /** torchrun --nnodes / --nproc-per-node. */
  nnodes: number;
  nprocPerNode: number;
  launcher: string[];
  /** Arguments of pretrain_gpt.py (no data or checkpoint paths: the agent adds those). */
  args: string[];
  approximations: Approximation[];
}

export class MegatronTranslationError extends Error {
  override name = 'MegatronTranslationError';
}

const layerCount = (s: MegatronPlanStage): number => s.layers[1] - s.layers[0] + 1;

export function planToMegatron(plan: MegatronPlan): MegatronLaunch {
  const m = plan.model;
  const stages = plan.stages;
  if (!stages.length) throw new MegatronTranslationError('the plan has no stages');
  const s0 = stages[0]!;
  const pp = stages.length;
  const { dp, tp, microBatch } = s0;
  for (const [i, s] of stages.entries()) {
    if (s.dp !== dp || s.tp !== tp || s.microBatch !== microBatch) {
      throw new MegatronTranslationError(`stages[${i}]: Megatron-LM needs the same dp, tp and microBatch in every stage (got dp ${s.dp}, tp ${s.tp}, b ${s.microBatch} vs ${dp}, ${tp}, ${microBatch})`);
    }
  }
  const world = dp * tp * pp;
  if (world !== plan.cluster.nodes * plan.cluster.gpusPerNode) {
    throw new MegatronTranslationError(`the plan uses ${world} GPUs (dp ${dp} × tp ${tp} × pp ${pp}) but its cluster slice has ${plan.cluster.nodes} × ${plan.cluster.gpusPerNode}`);
  }
  const approx: Approximation[] = [];
  const args: string[] = [];
  const push = (...a: Array<string | number>): void => {
    args.push(...a.map(String));
  };

  // model
  push('--num-layers', m.layers, '--hidden-size', m.hidden, '--ffn-hidden-size', m.ffnHidden, '--num-attention-heads', m.heads);
  push('--seq-length', plan.seqLen, '--max-position-embeddings', Math.max(m.seqLen, plan.seqLen));
  push('--tokenizer-type', 'NullTokenizer', '--vocab-size', m.vocab);
  if (m.arch === 'gpt') {
    push('--position-embedding-type', 'learned_absolute');
    if (m.kvHeads !== m.heads) {
      push('--group-query-attention', '--num-query-groups', m.kvHeads);
    }
  } else {
    push('--position-embedding-type', 'rope', '--normalization', 'RMSNorm', '--swiglu', '--disable-bias-linear');
    if (m.kvHeads !== m.heads) push('--group-query-attention', '--num-query-groups', m.kvHeads);
  }
  if (!m.tiedEmbeddings) push('--untie-embeddings-and-output-weights');
  push('--hidden-dropout', plan.workload.dropout, '--attention-dropout', plan.workload.dropout);

  // parallelism and batch
  push('--tensor-model-parallel-size', tp, '--pipeline-model-parallel-size', pp);
  push('--micro-batch-size', microBatch, '--global-batch-size', plan.globalBatch);
  if (plan.workload.sequenceParallel && tp > 1) push('--sequence-parallel');
  if (plan.workload.tpCommOverlap && tp > 1) {
    // validate_args asserts sequence_parallel whenever tp_comm_overlap is set.
    if (plan.workload.sequenceParallel) push('--tp-comm-overlap');
    else approx.push({ feature: 'workload.tpCommOverlap', approximation: 'TP communication overlap is dropped: Megatron-LM allows --tp-comm-overlap only with --sequence-parallel, which the plan does not use (same memory, less overlap)' });
  }
  if (dp * microBatch * plan.gradAccum !== plan.globalBatch) {
    throw new MegatronTranslationError(`globalBatch ${plan.globalBatch} != dp ${dp} × microBatch ${microBatch} × gradAccum ${plan.gradAccum}`);
  }

  // layer split
  if (pp > 1) {
    const counts = stages.map(layerCount);
    const uniform = counts.every((c) => c === counts[0]);
    if (!uniform) {
      const first = counts[0]!;
      const last = counts[pp - 1]!;
      const middle = counts.slice(1, pp - 1);
      const middleEqual = middle.every((c) => c === middle[0]);
      if (middleEqual) {
        if (first !== (middle[0] ?? first) || pp === 2) push('--decoder-first-pipeline-num-layers', first);
        if (last !== (middle[0] ?? last) || pp === 2) push('--decoder-last-pipeline-num-layers', last);
      } else {
        // Megatron can only make the first and last stages uneven; the middle stages share the rest evenly.
        const rest = m.layers - first - last;
        const mid = pp - 2;
        if (rest % mid !== 0) {
          throw new MegatronTranslationError(`layer split ${counts.join('+')}: Megatron-LM cannot express it (middle stages must be equal and ${rest} layers do not divide over ${mid} middle stages)`);
        }
        push('--decoder-first-pipeline-num-layers', first, '--decoder-last-pipeline-num-layers', last);
        approx.push({ feature: 'stages[*].layers', approximation: `split ${counts.join('+')} becomes ${first}+${Array(mid).fill(rest / mid).join('+')}+${last}: Megatron-LM splits the middle stages evenly (--decoder-first/last-pipeline-num-layers only move the first and last stage)` });
      }
    }
  }

  // recomputation. Partial modes are Megatron-Core's selective modules: selective = core_attn, norms = layernorm
  // (+ core_attn without flash). Megatron-LM cannot recompute a dense MLP's activation function alone, nor combine
  // selective modules with block recomputation, so "pointwise" runs as "norms" and "others" is dropped.
  const PARTIAL = ['selective', 'norms', 'pointwise'];
  const moduleSet = new Set<string>();
  for (const s of stages) {
    if (s.ckpt.mode === 'selective') moduleSet.add('core_attn');
    if (s.ckpt.mode === 'norms' || s.ckpt.mode === 'pointwise') {
      if (!plan.workload.flash) moduleSet.add('core_attn');
      moduleSet.add('layernorm');
    }
  }
  const selectiveArgs = (): Array<string | number> => {
    const mods = ['core_attn', 'layernorm'].filter((m) => moduleSet.has(m));
    return mods.length === 0 || (mods.length === 1 && mods[0] === 'core_attn') ? ['--recompute-granularity', 'selective'] : ['--recompute-granularity', 'selective', '--recompute-modules', ...mods];
  };
  if (stages.some((s) => s.ckpt.mode === 'pointwise')) {
    approx.push({ feature: 'stages[*].ckpt.mode', approximation: 'pointwise recomputation (norms and activation function) runs as --recompute-modules layernorm: the activation function\'s output is stored, more activation memory than planned' });
  }
  if (new Set(stages.map((s) => s.ckpt.mode).filter((m) => PARTIAL.includes(m))).size > 1) {
    approx.push({ feature: 'stages[*].ckpt.mode', approximation: `per-stage partial recomputation becomes one module set for every stage: ${[...moduleSet].join(', ')}` });
  }
  if (stages.some((s) => s.ckpt.mode === 'layers' && s.ckpt.others !== undefined)) {
    approx.push({ feature: 'stages[*].ckpt.others', approximation: 'partial recomputation of the layers outside the recomputed block is dropped (Megatron-LM recomputes either blocks or selectively, not both): more activation memory than planned' });
  }
  const modes = stages.map((s) => (PARTIAL.includes(s.ckpt.mode) ? 'selective' : s.ckpt.mode));
  const counts = stages.map((s) => (s.ckpt.mode === 'layers' ? Math.min(s.ckpt.count ?? 0, layerCount(s)) : s.ckpt.mode === 'full' ? layerCount(s) : 0));
  const allFull = stages.every((s, i) => modes[i] === 'full' || (modes[i] === 'layers' && counts[i] === layerCount(s)));
  if (allFull) {
    push('--recompute-granularity', 'full', '--recompute-method', 'uniform', '--recompute-num-layers', 1);
  } else if (modes.every((x) => x === 'none')) {
    /* no recomputation */
  } else if (modes.every((x) => x === 'selective')) {
    push(...selectiveArgs());
  } else if (modes.every((x) => x !== 'selective')) {
    const c = Math.max(...counts);
    push('--recompute-granularity', 'full', '--recompute-method', 'block', '--recompute-num-layers', c);
    approx.push({ feature: 'stages[*].ckpt', approximation: `Mist recomputes the LAST c layers of each stage; Megatron-LM's block method recomputes the FIRST c — same count, same memory and recompute FLOPs per micro-batch, different layers` });
    if (new Set(counts).size > 1) {
      approx.push({ feature: 'stages[*].ckpt.count', approximation: `per-stage counts ${counts.join(', ')} become one count ${c} for every stage (the largest: never more memory than planned, more recomputation on the other stages)` });
    }
  } else {
    const c = Math.max(...counts);
    if (c > 0) {
      push('--recompute-granularity', 'full', '--recompute-method', 'block', '--recompute-num-layers', c);
      approx.push({ feature: 'stages[*].ckpt', approximation: `a mix of selective and layer recomputation (${modes.join(', ')}) becomes block recompute of ${c} layers on every stage (FIRST c layers, see above); selective recomputation is dropped` });
    } else {
      push(...selectiveArgs());
      approx.push({ feature: 'stages[*].ckpt', approximation: `a mix of none and selective (${modes.join(', ')}) becomes selective on every stage` });
    }
  }

  // ZeRO / distributed optimizer / FSDP
  const zeros = stages.map((s) => s.zero);
  const z = Math.max(...zeros, plan.prePost.zero);
  if (new Set([...zeros, plan.prePost.zero]).size > 1) {
    approx.push({ feature: 'stages[*].zero', approximation: `per-stage ZeRO levels ${zeros.join(', ')} (pre/post ${plan.prePost.zero}) become one level ${z} for the whole model` });
  }
  const optOffload = Math.max(...stages.map((s) => s.offload.optimizer));
  if (z === 1 || (z === 0 && optOffload > 0)) {
    push('--use-distributed-optimizer');
    if (z === 0) approx.push({ feature: 'zero', approximation: 'optimizer offload needs the distributed optimizer, so ZeRO-0 runs as ZeRO-1 (less memory, same maths)' });
  } else if (z >= 2) {
    push('--use-megatron-fsdp', '--data-parallel-sharding-strategy', z === 2 ? 'optim_grads' : 'optim_grads_params', '--no-gradient-accumulation-fusion', '--use-distributed-optimizer', '--ckpt-format', 'fsdp_dtensor');
    if (pp > 1 || tp > 1) approx.push({ feature: `zero ${z}`, approximation: 'Megatron-FSDP is combined with tp/pp here; check the pinned version supports this combination (the user guide documents FSDP with TP and EP)' });
  }

  // offloading
  if (optOffload > 0) {
    // validate_args rejects --optimizer-cpu-offload without the precision-aware optimizer (its dtypes default to fp32).
    push('--optimizer-cpu-offload', '--optimizer-offload-fraction', optOffload, '--use-precision-aware-optimizer');
    if (new Set(stages.map((s) => s.offload.optimizer)).size > 1) {
      approx.push({ feature: 'stages[*].offload.optimizer', approximation: `per-stage ratios ${stages.map((s) => s.offload.optimizer).join(', ')} become one fraction ${optOffload} (the largest)` });
    }
  }
  stages.forEach((s, i) => {
    if (s.offload.weights > 0) approx.push({ feature: `stages[${i}].offload.weights`, approximation: `weight offload ${s.offload.weights} is not expressible with pretrain_gpt.py arguments; weights stay on the GPU (more memory than planned)` });
    if (s.offload.grads > 0) approx.push({ feature: `stages[${i}].offload.grads`, approximation: `gradient offload ${s.offload.grads} is not expressible (Megatron offloads gradients only as part of --optimizer-cpu-offload, for the optimizer's fraction); gradients stay on the GPU` });
    if (s.offload.activations > 0) approx.push({ feature: `stages[${i}].offload.activations`, approximation: `activation offload ${s.offload.activations} is not expressible with pretrain_gpt.py arguments (Megatron-Core's cpu_offloading is a TransformerConfig field with whole-layer granularity, not a ratio); activations stay on the GPU` });
    if (s.splitBackward) approx.push({ feature: `stages[${i}].splitBackward`, approximation: "the split backward is dropped: Megatron-LM's 1F1B computes weight gradients inside each backward (its --delay-wgrad-compute serves MoE expert-parallel overlap only), so the pipeline drain waits for them (slower than planned, less memory)" });
  });
  if (plan.prePost.dp !== dp || plan.prePost.tp !== tp) {
    approx.push({ feature: 'prePost', approximation: `pre/post layers with dp ${plan.prePost.dp}, tp ${plan.prePost.tp} run with the blocks' dp ${dp}, tp ${tp}` });
  }

  // precision and kernels
  // With --bf16, --grad-reduce-in-bf16 clears accumulate_allreduce_grads_in_fp32, so the DDP / Megatron-FSDP gradient
  // buffers take the param dtype (bf16, 2 B/param); otherwise bf16 defaults to fp32 gradient buffers (4 B/param).
  push('--bf16', plan.workload.gradDtype === 'bf16' ? '--grad-reduce-in-bf16' : '--accumulate-allreduce-grads-in-fp32');
  push('--attention-backend', plan.workload.flash ? 'flash' : 'unfused');
  push('--optimizer', 'adam');

  const nnodes = plan.cluster.nodes;
  const nprocPerNode = plan.cluster.gpusPerNode;
  return {
    pin: MEGATRON_PIN,
    nnodes,
    nprocPerNode,
    launcher: ['torchrun', '--nnodes', String(nnodes), '--nproc-per-node', String(nprocPerNode)],
    args,
    approximations: approx,
  };
}
