/**
 * transformers.js (@huggingface/transformers) on a local model folder, offline: the peer that the parity tests and the
 * benches compare tokmeter against. One place for the offline setup, the CPU session options and the prompt tensors.
 */
import { basename, dirname } from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor } from '@huggingface/transformers';

/** Points transformers.js at `dir`'s parent, never at the network; returns the model id to load `dir` by. */
function offline(dir: string): string {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = dirname(dir) + '/';
  return basename(dir);
}

/** transformers.js dtype names of the files a tokmeter model folder can hold (onnx/model{suffix}.onnx). */
export const PEER_DTYPES = ['fp32', 'fp16', 'q4', 'q4f16', 'int8', 'uint8', 'q8'] as const;
export type PeerDtype = (typeof PEER_DTYPES)[number];

/** The model in `dir` on the CPU with `threads` intra-op threads (one inter-op thread). */
export function loadCausalLm(
  dir: string,
  { dtype = 'fp32', threads = 1 }: { dtype?: PeerDtype; threads?: number } = {},
): ReturnType<typeof AutoModelForCausalLM.from_pretrained> {
  return AutoModelForCausalLM.from_pretrained(offline(dir), {
    device: 'cpu',
    dtype,
    session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 },
  });
}

/** The tokenizer in `dir`. */
export function loadTokenizer(dir: string): ReturnType<typeof AutoTokenizer.from_pretrained> {
  return AutoTokenizer.from_pretrained(offline(dir));
}

/** `input_ids` and an all-ones `attention_mask` for one unpadded prompt. */
export function promptTensors(ids: number[]): { input_ids: Tensor; attention_mask: Tensor } {
  return {
    input_ids: new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
    attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
  };
}
