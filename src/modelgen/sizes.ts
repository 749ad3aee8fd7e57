/**
 * Named model sizes. Numbers chosen for what each is for (measured figures are in the modelgen README section of
 * the final report / docs):
 * - tiny: tests. Llama 2's 32k vocabulary keeps it at ~4M parameters (16 MB), a step takes well under a millisecond.
 *   (`tokmeter make-model` gives it Llama 3's tokenizer and chat template unless told otherwise.)
 * - demo: `npm start` on 2 CPU cores. Llama 3's tokenizer, because it carries a chat template; ~70M parameters.
 * - bench: benchmarks. GPT-2-small-sized (~125M parameters, 0.5 GB fp32, external data) so figures compare with
 *   the ones measured for GPT-2 on this kind of machine; 12 layers make per-step overhead visible.
 */
import type { TokenizerName } from './tokenizers.js';

export const SIZES = ['tiny', 'demo', 'bench'] as const;
export type SizeName = (typeof SIZES)[number];

export interface SizePreset {
  tokenizer: TokenizerName;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  context: number;
}

export const SIZE_PRESETS: Record<SizeName, SizePreset> = {
  tiny: { tokenizer: 'llama2', layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 176, context: 2048 },
  demo: { tokenizer: 'llama3', layers: 4, hidden: 256, heads: 8, kvHeads: 2, intermediate: 704, context: 4096 },
  bench: { tokenizer: 'llama2', layers: 12, hidden: 768, heads: 12, kvHeads: 4, intermediate: 2048, context: 4096 },
};
