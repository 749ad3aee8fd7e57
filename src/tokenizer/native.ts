/** The tokenizer's access to the addon: the only tokenizer module that touches the raw binding. */
import { loadAddon } from '../native/binding.js';
import type { NativeTokenizerApi } from '../native/tokenizer-contract.js';

export function tokenizerAddon(): NativeTokenizerApi {
  return loadAddon();
}
