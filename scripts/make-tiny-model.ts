/**
 * Writes a random-weight Llama-style model folder (Hugging Face / Optimum layout) for tests, demos and benchmarks.
 *
 *   npx tsx scripts/make-tiny-model.ts --size tiny --out .models/tiny
 *   npx tsx scripts/make-tiny-model.ts --size demo --out models/demo
 *   npx tsx scripts/make-tiny-model.ts --size bench --out .models/bench
 *   npx tsx scripts/make-tiny-model.ts --layers 4 --hidden 128 --heads 8 --kv-heads 2 --out /tmp/m --force
 *
 * Flags: --size tiny|demo|bench (default tiny), --out DIR (required), --seed N, --force, --tokenizer NAME,
 * --layers N, --hidden N, --heads N, --kv-heads N, --head-dim N, --intermediate N, --context N,
 * --kv-dtype float32|float16, --no-position-ids, --attention standard|gqa (gqa: ONNX Runtime's com.microsoft
 * GroupQueryAttention op, as onnxruntime-genai exports), --external-data, --no-external-data,
 * --dtype (or --dtypes) LIST of fp32, fp16, q4, q4f16, int8, uint8, q8 (which ONNX files: model.onnx,
 * model_fp16.onnx, model_q4.onnx, ...; default fp32), --q4-block-size, --q4-zero-points, --q4-accuracy-level and
 * --int8-per-channel (how the quantized files are quantized, src/modelgen/quantize.ts),
 * --compute fp32|fp16 (arithmetic of model_fp16.onnx: fp32 behind Casts, the default, or fp16 as a real fp16
 * export; fp16 needs --dtype to include fp16).
 */
import { parseArgs } from 'node:util';
import {
  LLAMA_ATTENTIONS,
  type LlamaAttention,
  makeModel,
  MODEL_COMPUTES,
  type ModelCompute,
  MODEL_DTYPES,
  type ModelDtype,
  SIZES,
  TOKENIZERS,
  type MakeModelOptions,
  type SizeName,
  type TokenizerName,
} from '../src/modelgen/index.js';

const USAGE = `usage: make-tiny-model --out DIR [--size ${SIZES.join('|')}] [--seed N] [--force]
       [--tokenizer ${TOKENIZERS.join('|')}] [--layers N] [--hidden N] [--heads N] [--kv-heads N]
       [--head-dim N] [--intermediate N] [--context N] [--kv-dtype float32|float16]
       [--no-position-ids] [--attention ${LLAMA_ATTENTIONS.join('|')}] [--external-data | --no-external-data] [--dtype fp32|fp16|fp32,fp16]
       [--compute ${MODEL_COMPUTES.join('|')}] [--q4-block-size 32|128] [--q4-zero-points] [--q4-accuracy-level 0-4]
       [--int8-per-channel]`;

function intFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value))
    throw new UsageError(`expected a non-negative integer for --${name}, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${name} is too large: ${value}`);
  return n;
}

class UsageError extends Error {}

export function parseCli(argv: string[]): MakeModelOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      out: { type: 'string' },
      size: { type: 'string' },
      seed: { type: 'string' },
      force: { type: 'boolean' },
      tokenizer: { type: 'string' },
      layers: { type: 'string' },
      hidden: { type: 'string' },
      heads: { type: 'string' },
      'kv-heads': { type: 'string' },
      'head-dim': { type: 'string' },
      intermediate: { type: 'string' },
      context: { type: 'string' },
      'kv-dtype': { type: 'string' },
      dtype: { type: 'string' },
      dtypes: { type: 'string' },
      'q4-block-size': { type: 'string' },
      'q4-zero-points': { type: 'boolean' },
      'q4-accuracy-level': { type: 'string' },
      'int8-per-channel': { type: 'boolean' },
      compute: { type: 'string' },
      'no-position-ids': { type: 'boolean' },
      attention: { type: 'string' },
      'external-data': { type: 'boolean' },
      'no-external-data': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) throw new UsageError('');
  if (!values.out) throw new UsageError('--out DIR is required');
  const size = values.size ?? 'tiny';
  if (!(SIZES as readonly string[]).includes(size))
    throw new UsageError(`expected --size ${SIZES.join('|')}, got ${size}`);
  const kvDtype = values['kv-dtype'] ?? 'float32';
  if (kvDtype !== 'float32' && kvDtype !== 'float16')
    throw new UsageError(`expected --kv-dtype float32|float16, got ${kvDtype}`);
  if (values.tokenizer !== undefined && !(TOKENIZERS as readonly string[]).includes(values.tokenizer)) {
    throw new UsageError(`expected --tokenizer ${TOKENIZERS.join('|')}, got ${values.tokenizer}`);
  }
  const attention = values.attention ?? 'standard';
  if (!(LLAMA_ATTENTIONS as readonly string[]).includes(attention))
    throw new UsageError(`expected --attention ${LLAMA_ATTENTIONS.join('|')}, got ${attention}`);
  if (values['external-data'] && values['no-external-data'])
    throw new UsageError('--external-data and --no-external-data conflict');
  if (values.dtype !== undefined && values.dtypes !== undefined)
    throw new UsageError('pass --dtype or --dtypes, not both');
  const dtypes = (values.dtype ?? values.dtypes ?? 'fp32').split(',');
  for (const d of dtypes) {
    if (!(MODEL_DTYPES as readonly string[]).includes(d)) {
      throw new UsageError(`expected --dtype to list ${MODEL_DTYPES.join('|')}, got ${values.dtype ?? values.dtypes}`);
    }
  }
  if (values.compute !== undefined) {
    if (!(MODEL_COMPUTES as readonly string[]).includes(values.compute))
      throw new UsageError(`expected --compute ${MODEL_COMPUTES.join('|')}, got ${values.compute}`);
    if (values.compute === 'fp16' && !dtypes.includes('fp16'))
      throw new UsageError('--compute fp16 applies to model_fp16.onnx: pass --dtype fp16 or --dtype fp32,fp16');
  }
  const opts: MakeModelOptions = {
    dtypes: dtypes as ModelDtype[],
    out: values.out,
    size: size as SizeName,
    force: values.force ?? false,
    kvDtype,
    positionIds: !values['no-position-ids'],
    attention: attention as LlamaAttention,
    externalData: values['external-data'] ? true : values['no-external-data'] ? false : 'auto',
    log: (line) => console.log(line),
  };
  const ints: [keyof MakeModelOptions, string][] = [
    ['seed', 'seed'],
    ['layers', 'layers'],
    ['hidden', 'hidden'],
    ['heads', 'heads'],
    ['kvHeads', 'kv-heads'],
    ['headDim', 'head-dim'],
    ['intermediate', 'intermediate'],
    ['context', 'context'],
    ['q4BlockSize', 'q4-block-size'],
    ['q4AccuracyLevel', 'q4-accuracy-level'],
  ];
  for (const [key, flag] of ints) {
    const v = intFlag(flag, values[flag as keyof typeof values] as string | undefined);
    if (v !== undefined) (opts as unknown as Record<string, unknown>)[key] = v;
  }
  if (values.compute !== undefined) opts.compute = values.compute as ModelCompute;
  if (values['q4-zero-points']) opts.q4ZeroPoints = true;
  if (values['int8-per-channel']) opts.int8PerChannel = true;
  if (values.tokenizer !== undefined) opts.tokenizer = values.tokenizer as TokenizerName;
  return opts;
}

async function main(): Promise<void> {
  let opts: MakeModelOptions;
  try {
    opts = parseCli(process.argv.slice(2));
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (msg) console.error(`make-tiny-model: ${msg}`);
    console.error(USAGE);
    process.exitCode = 2;
    return;
  }
  try {
    await makeModel(opts);
  } catch (err) {
    console.error(`make-tiny-model: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

await main();
