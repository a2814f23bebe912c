/**
 * Model presets (DESIGN.md §3). Every preset carries its dims and a `source` naming the published config the dims
 * were read from. Parameter counts are not stored: they follow from the dims (model.ts) and a test checks them
 * against counts computed independently from the same published configs.
 */
import type { ModelSpec } from '../domain/model.js';

export interface Preset extends ModelSpec {
  name: string;
  source: string;
}

const GPT3 = 'GPT-3 paper (Brown et al. 2020, arXiv 2005.14165) Table 2.1; GPT-2 BPE vocab 50257, context 2048, tied embeddings';
const LLAMA2 = "Meta's config.json on Hugging Face (meta-llama/Llama-2-";
const LVM =
  'LVM (Bai et al. 2023, arXiv 2312.00785), EasyLM LLAMA_STANDARD_CONFIGS in ytongbai/LVM (research/seeds.md §1.3): vocab 8192 VQGAN codes + 100 specials, 256 tokens per 256×256 image, 16 images = 4096 tokens, untied';

function gpt(name: string, layers: number, hidden: number, heads: number, source: string, over: Partial<Preset> = {}): Preset {
  return {
    name,
    arch: 'gpt',
    layers,
    hidden,
    heads,
    kvHeads: heads,
    ffnHidden: 4 * hidden,
    vocab: 50257,
    seqLen: 2048,
    tiedEmbeddings: true,
    source,
    ...over,
  };
}

function lvm(name: string, layers: number, hidden: number, heads: number, ffnHidden: number, config: string): Preset {
  return {
    name,
    arch: 'lvm',
    layers,
    hidden,
    heads,
    kvHeads: heads,
    ffnHidden,
    vocab: 8292,
    seqLen: 4096,
    tiedEmbeddings: false,
    tokensPerImage: 256,
    imagesPerSequence: 16,
    source: `${LVM}; config ${config}`,
  };
}

export const PRESETS: Readonly<Record<string, Preset>> = Object.freeze({
  'gpt3-1.3b': gpt('gpt3-1.3b', 24, 2048, 16, `${GPT3}; GPT-3 XL: n_layers 24, d_model 2048 (the table's n_heads 24 × d_head 128 is not 2048; 16 heads × 128 as in Megatron-LM's and Mist's 1.3B configs)`),
  'gpt3-2.7b': gpt('gpt3-2.7b', 32, 2560, 32, `${GPT3}; GPT-3 2.7B: n_layers 32, d_model 2560, n_heads 32, d_head 80`),
  'gpt3-6.7b': gpt('gpt3-6.7b', 32, 4096, 32, `${GPT3}; GPT-3 6.7B: n_layers 32, d_model 4096, n_heads 32, d_head 128`),
  'gpt3-13b': gpt(
    'gpt3-13b',
    40,
    5120,
    40,
    `${GPT3}; GPT-3 13B: n_layers 40, n_heads 40, d_head 128 (the table's d_model 5140 is not 40×128; 5120 as in Megatron-LM's 13B)`,
  ),
  'gpt3-22b': gpt('gpt3-22b', 48, 6144, 64, "Mist's gpt2-22B config (Dazz993/Mist benchmark/mist/configs/model/gpt2, research/mist.md §8.1): 48 layers, hidden 6144, 64 heads, FFN 24576, vocab 50304, seq 2048", {
    vocab: 50304,
  }),
  'gpt3-175b': gpt('gpt3-175b', 96, 12288, 96, `${GPT3}; GPT-3 175B: n_layers 96, d_model 12288, n_heads 96, d_head 128`),
  'llama2-7b': {
    name: 'llama2-7b', arch: 'llama', layers: 32, hidden: 4096, heads: 32, kvHeads: 32, ffnHidden: 11008, vocab: 32000, seqLen: 4096, tiedEmbeddings: false,
    source: `${LLAMA2}7b-hf): hidden_size 4096, intermediate_size 11008, num_hidden_layers 32, num_attention_heads 32, num_key_value_heads 32, vocab_size 32000, max_position_embeddings 4096, tie_word_embeddings false`,
  },
  'llama2-13b': {
    name: 'llama2-13b', arch: 'llama', layers: 40, hidden: 5120, heads: 40, kvHeads: 40, ffnHidden: 13824, vocab: 32000, seqLen: 4096, tiedEmbeddings: false,
    source: `${LLAMA2}13b-hf): hidden_size 5120, intermediate_size 13824, num_hidden_layers 40, num_attention_heads 40, num_key_value_heads 40, vocab_size 32000, max_position_embeddings 4096`,
  },
  'llama2-70b': {
    name: 'llama2-70b', arch: 'llama', layers: 80, hidden: 8192, heads: 64, kvHeads: 8, ffnHidden: 28672, vocab: 32000, seqLen: 4096, tiedEmbeddings: false,
    source: `${LLAMA2}70b-hf): hidden_size 8192, intermediate_size 28672, num_hidden_layers 80, num_attention_heads 64, num_key_value_heads 8, vocab_size 32000, max_position_embeddings 4096`,
  },
  'llama3-8b': {
    name: 'llama3-8b', arch: 'llama', layers: 32, hidden: 4096, heads: 32, kvHeads: 8, ffnHidden: 14336, vocab: 128256, seqLen: 8192, tiedEmbeddings: false,
    source: "Meta's config.json on Hugging Face (meta-llama/Meta-Llama-3-8B): hidden_size 4096, intermediate_size 14336, num_hidden_layers 32, num_attention_heads 32, num_key_value_heads 8, vocab_size 128256, max_position_embeddings 8192",
  },
  'lvm-300m': lvm('lvm-300m', 22, 1024, 8, 2688, 'vqlm_300m: 22 layers, hidden 1024, 8 heads, intermediate 2688'),
  'lvm-600m': lvm('lvm-600m', 22, 1536, 16, 4096, 'vqlm_600m: 22 layers, hidden 1536, 16 heads, intermediate 4096'),
  'lvm-1b': lvm('lvm-1b', 22, 2048, 16, 5504, 'vqlm_1b: 22 layers, hidden 2048, 16 heads, intermediate 5504'),
  'lvm-3b': lvm('lvm-3b', 26, 3200, 32, 8640, 'vqlm_3b: 26 layers, hidden 3200, 32 heads, intermediate 8640'),
  'lvm-7b': lvm('lvm-7b', 32, 4096, 32, 11008, 'vqlm_7b: 32 layers, hidden 4096, 32 heads, intermediate 11008 (the LLaMA-7B shape)'),
  'tiny-gpt': gpt('tiny-gpt', 4, 64, 4, 'tiny CPU preset (Mist): GPT block, 4 layers, hidden 64, 4 heads, vocab 256, seq 64', { vocab: 256, seqLen: 64 }),
  'tiny-llama': {
    name: 'tiny-llama', arch: 'llama', layers: 4, hidden: 64, heads: 4, kvHeads: 2, ffnHidden: 176, vocab: 256, seqLen: 64, tiedEmbeddings: false,
    source: 'tiny CPU preset (Mist): LLaMA block, 4 layers, hidden 64, 4 heads, 2 kv heads, SwiGLU 176 (8h/3 rounded up to 16), vocab 256, seq 64',
  },
  'tiny-lvm': {
    name: 'tiny-lvm', arch: 'lvm', layers: 4, hidden: 64, heads: 4, kvHeads: 2, ffnHidden: 176, vocab: 256, seqLen: 64, tiedEmbeddings: false,
    tokensPerImage: 16, imagesPerSequence: 4,
    source: 'tiny CPU preset (Mist): LVM (LLaMA block over visual tokens), 4 layers, hidden 64, 4 heads, 2 kv heads, SwiGLU 176, vocab 256, 16 tokens per image × 4 images = 64',
  },
});

export const PRESET_NAMES: readonly string[] = Object.keys(PRESETS);
