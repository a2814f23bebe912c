/** Golden tests of the Plan → Megatron-LM translation (agent/runtime/megatron). */
import assert from 'node:assert/strict';
import { MEGATRON_PIN, MegatronTranslationError, planToMegatron, type MegatronPlan, type MegatronPlanStage } from '../../../agent/runtime/megatron/translate.js';

const NO_OFFLOAD = { weights: 0, grads: 0, optimizer: 0, activations: 0 };

function stage(layers: [number, number], over: Partial<MegatronPlanStage> = {}): MegatronPlanStage {
  return { layers, dp: 2, tp: 4, microBatch: 2, zero: 1, ckpt: { mode: 'none' }, offload: { ...NO_OFFLOAD }, ...over };
}

function plan(stages: MegatronPlanStage[], over: Partial<MegatronPlan> = {}): MegatronPlan {
  const s = stages[0]!;
  return {
    model: { arch: 'llama', layers: stages[stages.length - 1]!.layers[1] + 1, hidden: 4096, heads: 32, kvHeads: 8, ffnHidden: 14336, vocab: 128256, seqLen: 8192, tiedEmbeddings: false },
    cluster: { nodes: (s.dp * s.tp * stages.length) / 8, gpusPerNode: 8 },
    globalBatch: s.dp * s.microBatch * 16,
    seqLen: 4096,
    gradAccum: 16,
    workload: { flash: true, dropout: 0, gradDtype: 'bf16' },
    stages,
    prePost: { dp: s.dp, tp: s.tp, zero: s.zero },
    ...over,
  };
}

const MODEL_LLAMA3 = ['--num-layers', '32', '--hidden-size', '4096', '--ffn-hidden-size', '14336', '--num-attention-heads', '32', '--seq-length', '4096',
  '--max-position-embeddings', '8192', '--tokenizer-type', 'NullTokenizer', '--vocab-size', '128256', '--position-embedding-type', 'rope', '--normalization', 'RMSNorm',
  '--swiglu', '--disable-bias-linear', '--group-query-attention', '--num-query-groups', '8', '--untie-embeddings-and-output-weights', '--hidden-dropout', '0', '--attention-dropout', '0'];

describe('megatron adapter: plan → pretrain_gpt.py arguments (golden)', () => {
  it('pins a Megatron-LM version and names its arguments file', () => {
    assert.equal(MEGATRON_PIN.argumentsFile, 'megatron/training/arguments.py');
    assert.match(MEGATRON_PIN.commit, /^[0-9a-f]{40}$/);
  });

  it('a uniform 2-stage plan with ZeRO-1 and selective recompute', () => {
    const out = planToMegatron(plan([stage([0, 15], { ckpt: { mode: 'selective' } }), stage([16, 31], { ckpt: { mode: 'selective' } })]));
    assert.equal(out.nnodes, 2);
    assert.equal(out.nprocPerNode, 8);
    assert.deepEqual(out.launcher, ['torchrun', '--nnodes', '2', '--nproc-per-node', '8']);
    assert.deepEqual(out.args, [...MODEL_LLAMA3, '--tensor-model-parallel-size', '4', '--pipeline-model-parallel-size', '2', '--micro-batch-size', '2', '--global-batch-size', '64',
      '--recompute-granularity', 'selective', '--use-distributed-optimizer', '--bf16', '--grad-reduce-in-bf16', '--attention-backend', 'flash', '--optimizer', 'adam']);
    assert.deepEqual(out.approximations, []);
  });

  it('gradDtype bf16 is --grad-reduce-in-bf16 (bf16 gradient buffers), fp32 is --accumulate-allreduce-grads-in-fp32; neither is an approximation', () => {
    for (const zero of [1, 3] as const) {
      const stages = [stage([0, 15], { zero }), stage([16, 31], { zero })];
      const bf16 = planToMegatron(plan(stages));
      assert.ok(bf16.args.join(' ').includes('--bf16 --grad-reduce-in-bf16 --'));
      assert.ok(!bf16.args.includes('--accumulate-allreduce-grads-in-fp32'));
      const p32 = plan(stages);
      p32.workload = { ...p32.workload, gradDtype: 'fp32' };
      const fp32 = planToMegatron(p32);
      assert.ok(fp32.args.join(' ').includes('--bf16 --accumulate-allreduce-grads-in-fp32 --'));
      assert.ok(!fp32.args.includes('--grad-reduce-in-bf16'));
      for (const out of [bf16, fp32]) assert.ok(!out.approximations.some((a) => a.feature === 'workload.gradDtype'));
    }
  });

  it('--tp-comm-overlap only with --sequence-parallel (Megatron-LM asserts it); otherwise dropped and reported', () => {
    const stages = [stage([0, 15]), stage([16, 31])];
    const withSp = planToMegatron(plan(stages, { workload: { flash: true, dropout: 0, gradDtype: 'bf16', sequenceParallel: true, tpCommOverlap: true } }));
    assert.ok(withSp.args.join(' ').includes('--sequence-parallel --tp-comm-overlap'));
    const noSp = planToMegatron(plan(stages, { workload: { flash: true, dropout: 0, gradDtype: 'bf16', tpCommOverlap: true } }));
    assert.ok(!noSp.args.includes('--tp-comm-overlap') && !noSp.args.includes('--sequence-parallel'));
    assert.deepEqual(noSp.approximations.map((a) => a.feature), ['workload.tpCommOverlap']);
  });

  it('norms is --recompute-modules layernorm (+ core_attn without flash); pointwise runs as norms; "others" beside a block is dropped; each reported', () => {
    const norms = planToMegatron(plan([stage([0, 15], { ckpt: { mode: 'norms' } }), stage([16, 31], { ckpt: { mode: 'norms' } })]));
    assert.ok(norms.args.join(' ').includes('--recompute-granularity selective --recompute-modules layernorm --'));
    assert.ok(!norms.approximations.some((a) => a.feature.startsWith('stages[*].ckpt')));
    const noFlash = plan([stage([0, 15], { ckpt: { mode: 'norms' } }), stage([16, 31], { ckpt: { mode: 'norms' } })]);
    noFlash.workload = { ...noFlash.workload, flash: false };
    assert.ok(planToMegatron(noFlash).args.join(' ').includes('--recompute-modules core_attn layernorm'));
    const pw = planToMegatron(plan([stage([0, 15], { ckpt: { mode: 'pointwise' } }), stage([16, 31], { ckpt: { mode: 'pointwise' } })]));
    assert.ok(pw.args.join(' ').includes('--recompute-granularity selective --recompute-modules layernorm'));
    assert.match(pw.approximations.map((a) => `${a.feature}: ${a.approximation}`).join('\n'), /stages\[\*\]\.ckpt\.mode: pointwise recomputation .* runs as --recompute-modules layernorm/);
    const mixed = planToMegatron(plan([stage([0, 15], { ckpt: { mode: 'layers', count: 2, others: 'pointwise' } }), stage([16, 31], { ckpt: { mode: 'none' } })]));
    assert.ok(mixed.args.join(' ').includes('--recompute-granularity full --recompute-method block --recompute-num-layers 2'));
    assert.ok(mixed.approximations.some((a) => a.feature === 'stages[*].ckpt.others'));
  });

  it('an uneven split, last-c-layers recompute and optimizer offload', () => {
    const out = planToMegatron(plan([
      stage([0, 6], { ckpt: { mode: 'layers', count: 3 }, offload: { ...NO_OFFLOAD, optimizer: 0.5 } }),
      stage([7, 18], { ckpt: { mode: 'layers', count: 3 }, offload: { ...NO_OFFLOAD, optimizer: 0.5 } }),
      stage([19, 31], { ckpt: { mode: 'layers', count: 3 }, offload: { ...NO_OFFLOAD, optimizer: 0.5 } }),
    ], { cluster: { nodes: 3, gpusPerNode: 8 } }));
    const tail = out.args.slice(MODEL_LLAMA3.length);
    assert.deepEqual(tail, ['--tensor-model-parallel-size', '4', '--pipeline-model-parallel-size', '3', '--micro-batch-size', '2', '--global-batch-size', '64',
      '--decoder-first-pipeline-num-layers', '7', '--decoder-last-pipeline-num-layers', '13',
      '--recompute-granularity', 'full', '--recompute-method', 'block', '--recompute-num-layers', '3',
      '--use-distributed-optimizer', '--optimizer-cpu-offload', '--optimizer-offload-fraction', '0.5', '--use-precision-aware-optimizer', '--bf16', '--grad-reduce-in-bf16',
      '--attention-backend', 'flash', '--optimizer', 'adam']);
    const notes = out.approximations.map((a) => a.approximation).join('\n');
    assert.match(notes, /LAST c layers.*FIRST c/);
  });

  it('ZeRO-3 with full recompute maps to Megatron-FSDP optim_grads_params; weight/grad/activation offload are reported', () => {
    const s = (l: [number, number]): MegatronPlanStage => stage(l, { dp: 8, tp: 1, microBatch: 1, zero: 3, ckpt: { mode: 'full' }, offload: { weights: 0.5, grads: 0.25, optimizer: 0, activations: 0.3 } });
    const p = plan([s([0, 31])], { cluster: { nodes: 1, gpusPerNode: 8 }, globalBatch: 128, workload: { flash: false, dropout: 0.1, gradDtype: 'fp32' } });
    const out = planToMegatron(p);
    const tail = out.args.slice(MODEL_LLAMA3.length);
    assert.deepEqual(tail, ['--tensor-model-parallel-size', '1', '--pipeline-model-parallel-size', '1', '--micro-batch-size', '1', '--global-batch-size', '128',
      '--recompute-granularity', 'full', '--recompute-method', 'uniform', '--recompute-num-layers', '1',
      '--use-megatron-fsdp', '--data-parallel-sharding-strategy', 'optim_grads_params', '--no-gradient-accumulation-fusion', '--use-distributed-optimizer', '--ckpt-format', 'fsdp_dtensor',
      '--bf16', '--accumulate-allreduce-grads-in-fp32', '--attention-backend', 'unfused', '--optimizer', 'adam']);
    assert.ok(out.args.includes('--hidden-dropout') && out.args[out.args.indexOf('--hidden-dropout') + 1] === '0.1');
    assert.deepEqual(out.approximations.map((a) => a.feature), ['stages[0].offload.weights', 'stages[0].offload.grads', 'stages[0].offload.activations']);
  });

  it('a split backward is reported as dropped and adds no flag (Megatron-LM has no split backward for dense models)', () => {
    const plain = planToMegatron(plan([stage([0, 15]), stage([16, 31])], { cluster: { nodes: 2, gpusPerNode: 8 } }));
    const out = planToMegatron(plan([stage([0, 15]), { ...stage([16, 31]), splitBackward: true }], { cluster: { nodes: 2, gpusPerNode: 8 } }));
    assert.deepEqual(out.args, plain.args);
    assert.deepEqual(out.approximations.map((x) => x.feature), [...plain.approximations.map((x) => x.feature), 'stages[1].splitBackward']);
    assert.match(out.approximations.at(-1)!.approximation, /weight gradients inside each backward/);
  });

  it('uneven middle stages are approximated; non-uniform meshes and bad slices are refused', () => {
    const p = plan([stage([0, 7]), stage([8, 17]), stage([18, 23]), stage([24, 31])], { cluster: { nodes: 4, gpusPerNode: 8 } });
    const out = planToMegatron(p);
    assert.deepEqual(out.args.filter((a, i) => out.args[i - 1]?.startsWith('--decoder-')), ['8', '8']);
    assert.match(out.approximations.map((a) => a.approximation).join('\n'), /8\+8\+8\+8/);
    assert.throws(() => planToMegatron(plan([stage([0, 15]), stage([16, 31], { tp: 2 })])), MegatronTranslationError);
    assert.throws(() => planToMegatron(plan([stage([0, 31])], { cluster: { nodes: 4, gpusPerNode: 8 } })), /cluster slice/);
  });

  it('GPT with tied embeddings: learned positions, no untie flag', () => {
    const p = plan([stage([0, 23], { dp: 8, tp: 1 })], { cluster: { nodes: 1, gpusPerNode: 8 }, globalBatch: 256 });
    p.model = { arch: 'gpt', layers: 24, hidden: 2048, heads: 16, kvHeads: 16, ffnHidden: 8192, vocab: 50257, seqLen: 2048, tiedEmbeddings: true };
    p.seqLen = 2048;
    const out = planToMegatron(p);
    assert.ok(out.args.includes('learned_absolute'));
    assert.ok(!out.args.includes('--untie-embeddings-and-output-weights'));
    assert.ok(!out.args.includes('--swiglu'));
  });
});
