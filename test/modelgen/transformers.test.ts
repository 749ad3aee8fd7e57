/**
 * The peer: @huggingface/transformers (transformers.js) must load a generated folder offline and its greedy
 * `generate` must produce exactly the tokens of our own onnxruntime-node greedy loop on the same folder.
 * transformers.js runs in a child process (see transformers-child.ts for why).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeModel, ONNX_FILE, type MakeModelOptions, type ModelDtype } from '../../src/modelgen/index.js';
import { emptyCache, forward, greedy, openModel, row } from './helpers.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const TEXTS = ['The quick brown fox', 'Hello world', 'Once upon a time, in a land far away, there lived'];
const NEW_TOKENS = 12;
/** Files whose logits are fp16, where exact ties of the two top logits occur (see below). */
const TIES = new Set<ModelDtype>(['fp16', 'q4f16']);

interface ChildResult {
  prompts: { text: string; inputIds: number[]; tokens: number[] }[];
}

async function transformersGreedy(dir: string, dtype: string, texts: string[]): Promise<ChildResult> {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', join(here, 'transformers-child.ts'), dir, String(NEW_TOKENS), dtype, ...texts],
    { cwd: join(here, '..', '..'), maxBuffer: 1 << 20, env: { ...process.env, HF_HUB_OFFLINE: '1' } },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildResult;
}

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tokmeter-modelgen-tjs-'));
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const CHAT_TEXTS = ['chat:Hi there!', 'chat:Write a haiku about the sea.', 'Plain text, no template'];
const variants: [string, Partial<MakeModelOptions>, string[]][] = [
  ['fp32 KV, inline weights', {}, TEXTS],
  ['fp16 KV, no position_ids, external data', { kvDtype: 'float16', positionIds: false, externalData: true }, TEXTS],
  // The demo's tokenizer (Llama 3, chat template, two EOS ids) on a one-layer model.
  ['llama3 tokenizer, chat template', { tokenizer: 'llama3', layers: 1, hidden: 32, heads: 4, kvHeads: 2 }, CHAT_TEXTS],
  // onnx/model_fp16.onnx only: fp16 weights, KV and logits, picked by transformers.js through dtype 'fp16'.
  ['model_fp16.onnx', { dtypes: ['fp16'] }, TEXTS],
  // The same file computing in fp16 (compute: 'fp16'), as a real fp16 export does.
  ['model_fp16.onnx computing in fp16', { dtypes: ['fp16'], compute: 'fp16' }, TEXTS],
  // Quantized files, each alone in its folder (transformers.js picks it by dtype, as ours does).
  ['model_q4.onnx (MatMulNBits, block 32, symmetric)', { dtypes: ['q4'] }, TEXTS],
  [
    'model_q4.onnx (block 128, zero points, accuracy_level 4)',
    { dtypes: ['q4'], q4BlockSize: 128, q4ZeroPoints: true, q4AccuracyLevel: 4 },
    TEXTS,
  ],
  ['model_q4f16.onnx (fp16 graph, fp16 scales)', { dtypes: ['q4f16'] }, TEXTS],
  ['model_int8.onnx (DynamicQuantizeLinear + MatMulInteger)', { dtypes: ['int8'] }, TEXTS],
  ['model_uint8.onnx (per channel)', { dtypes: ['uint8'], int8PerChannel: true }, TEXTS],
  ['model_quantized.onnx (q8)', { dtypes: ['q8'] }, TEXTS],
];

describe('transformers.js offline', () => {
  for (const [name, opts, texts] of variants) {
    it(`greedy generate equals our onnxruntime-node greedy loop (${name})`, async () => {
      const made = await makeModel({
        out: join(root, name.replace(/\W+/g, '-').replace(/-$/, '')),
        size: 'tiny',
        seed: 11,
        ...opts,
      });
      const dtype = made.config.tokmeter_modelgen.dtypes.includes('fp32')
        ? 'fp32'
        : made.config.tokmeter_modelgen.dtypes[0]!;
      const peer = await transformersGreedy(made.dir, dtype, texts);
      const eos = [
        JSON.parse(readFileSync(join(made.dir, 'generation_config.json'), 'utf8')).eos_token_id,
      ].flat() as number[];
      const { session, shape } = await openModel(made.dir, ONNX_FILE[dtype]);
      expect(peer.prompts).toHaveLength(texts.length);
      for (const p of peer.prompts) {
        // BOS comes from the chat template, or from llama2's post-processor (this llama3 tokenizer.json adds none).
        if (p.text.startsWith('chat:') || made.config.tokmeter_modelgen.tokenizer === 'llama2') {
          expect(p.inputIds[0]).toBe(made.config.bos_token_id);
          expect(p.inputIds[1]).not.toBe(made.config.bos_token_id); // once, not twice
        }
        expect(p.tokens.length).toBeGreaterThan(0);
        const ours = await greedy(session, shape, p.inputIds, NEW_TOKENS, eos);
        const d = p.tokens.findIndex((t, i) => t !== ours[i]);
        if (d < 0 || !TIES.has(dtype)) {
          expect(p.tokens).toEqual(ours);
          continue;
        }
        // fp16 logits tie exactly far more often than fp32 ones, and the two argmaxes break a tie differently
        // (ours takes the lowest id): a difference is accepted only where our logits of both ids are equal.
        const ctx = [...p.inputIds, ...ours.slice(0, d)];
        const step = await forward(session, shape, [ctx], [ctx.map(() => 1)], emptyCache(shape, 1));
        const last = row(step.logits, shape.vocab, ctx.length, 0, ctx.length - 1);
        expect(last[p.tokens[d]!]).toBe(last[ours[d]!]);
      }
      // Different prompts, different continuations: the equality above is not a degenerate one.
      expect(new Set(peer.prompts.map((p) => p.tokens.join(','))).size).toBe(texts.length);
    });
  }
});
