/**
 * Runs @huggingface/transformers (transformers.js) greedy generation on a model folder, offline, and prints
 * JSON to stdout: { prompts: [{ text, inputIds, tokens }] }.
 *
 * A separate process because transformers.js brings its own onnxruntime-node (1.30) and both bindings link
 * libonnxruntime.so.1 by soname: whichever loads second in one process fails with "version VERS_1.xx not found".
 *
 * usage: node --import tsx test/modelgen/transformers-child.ts MODEL_DIR MAX_NEW_TOKENS DTYPE TEXT...
 * DTYPE: fp32, fp16, q4, q4f16, int8, uint8 or q8 (transformers.js's names; q8 loads model_quantized.onnx).
 * A TEXT of the form `chat:MESSAGE` is rendered with the folder's chat template as one user message
 * (add_generation_prompt), the way a chat server would prompt the model.
 */
import type { Tensor } from '@huggingface/transformers';
import { loadCausalLm, loadTokenizer, PEER_DTYPES, type PeerDtype } from '../../scripts/transformers-offline.js';

const [dir, maxNewArg, dtype, ...texts] = process.argv.slice(2);
if (!dir || !maxNewArg || !(PEER_DTYPES as readonly string[]).includes(dtype ?? '') || texts.length === 0) {
  console.error(`usage: transformers-child.ts MODEL_DIR MAX_NEW_TOKENS ${PEER_DTYPES.join('|')} TEXT...`);
  process.exit(2);
}
const tokenizer = await loadTokenizer(dir);
const model = await loadCausalLm(dir, { dtype: dtype as PeerDtype });
const results = [];
for (const text of texts) {
  const enc = text.startsWith('chat:')
    ? (tokenizer.apply_chat_template([{ role: 'user', content: text.slice(5) }], {
        add_generation_prompt: true,
        tokenize: true,
        return_dict: true,
      }) as unknown as { input_ids: Tensor; attention_mask: Tensor })
    : tokenizer(text);
  const out = (await model.generate({
    ...enc,
    max_new_tokens: Number(maxNewArg),
    do_sample: false,
  })) as Tensor;
  const inputIds = (enc.input_ids as Tensor).tolist()[0] as bigint[];
  const all = (out.tolist()[0] as bigint[]).map(Number);
  results.push({ text, inputIds: inputIds.map(Number), tokens: all.slice(inputIds.length) });
}
process.stdout.write(JSON.stringify({ prompts: results }) + '\n');
