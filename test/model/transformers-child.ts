/**
 * Greedy generation with @huggingface/transformers (transformers.js) on a model folder, offline: encodes each text
 * with transformers' tokenizer and prints {"inputIds": [[...]], "outputs": [[...]]} (new tokens only, EOS included
 * as transformers returns it).
 * A child process: transformers.js brings its own onnxruntime-node whose libonnxruntime.so.1 clashes by soname with
 * the one tokmeter loads.
 *   node --import tsx test/model/transformers-child.ts MODEL_DIR MAX_NEW '["Hello", "world"]'
 */
import type { Tensor } from '@huggingface/transformers';
import { loadCausalLm, loadTokenizer, promptTensors } from '../../scripts/transformers-offline.js';

const [dir, maxNew, promptsJson] = process.argv.slice(2);
if (!dir || !maxNew || !promptsJson) {
  console.error('usage: transformers-child.ts MODEL_DIR MAX_NEW PROMPTS_JSON');
  process.exit(2);
}
const model = await loadCausalLm(dir);
const tokenizer = await loadTokenizer(dir);
const outputs: number[][] = [];
const inputIds: number[][] = [];
for (const text of JSON.parse(promptsJson) as string[]) {
  const ids = Array.from(tokenizer.encode(text));
  inputIds.push(ids);
  const { input_ids, attention_mask } = promptTensors(ids);
  const out = (await model.generate({
    input_ids,
    attention_mask,
    max_new_tokens: Number(maxNew),
    do_sample: false,
  })) as Tensor;
  outputs.push((out.tolist()[0] as bigint[]).map(Number).slice(ids.length));
}
process.stdout.write(JSON.stringify({ inputIds, outputs }) + '\n');
