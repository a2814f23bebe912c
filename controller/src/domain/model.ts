/**
 * Model dimensions: the only thing the tuner, the runtimes and the job spec need to know about a model.
 * Presets live in tuner/presets.ts; any preset can be replaced by explicit dims (DESIGN.md §3).
 */
export type Arch = 'gpt' | 'llama' | 'lvm';

export interface ModelSpec {
  /** Preset name when the dims came from one (informational; the dims below are authoritative). */
  name?: string;
  arch: Arch;
  layers: number;
  hidden: number;
  heads: number;
  /** Key/value heads (GQA). Equal to heads for multi-head attention; GPT always uses heads. */
  kvHeads: number;
  /** MLP inner size. GPT default 4·hidden; LLaMA/LVM default SwiGLU sizing (see tuner/model.ts). */
  ffnHidden: number;
  vocab: number;
  seqLen: number;
  /** Input and output embeddings share one matrix (GPT-2/3 style). */
  tiedEmbeddings?: boolean;
  /** LVM only: visual tokens per image and images per sequence (seqLen = tokensPerImage · imagesPerSequence). */
  tokensPerImage?: number;
  imagesPerSequence?: number;
}
