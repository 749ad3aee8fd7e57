/** What bench/generate's scripts share about the bench model's files. */
import type { ModelDtype } from '../../src/modelgen/index.js';

/** Bytes per element of the embedding table in each file (q4 files keep it float; 8-bit files quantize it). */
export const EMBEDDING_ELEMENT_BYTES: Record<ModelDtype, number> = {
  fp32: 4,
  fp16: 2,
  q4: 4,
  q4f16: 2,
  int8: 1,
  uint8: 1,
  q8: 1,
};
