/**
 * Model fixtures: writes a Llama-style model folder in the Hugging Face / Optimum layout
 *
 *   DIR/config.json  generation_config.json  tokenizer.json  tokenizer_config.json
 *   DIR/onnx/model.onnx  (+ onnx/model.onnx_data when weights are stored externally)
 *   DIR/onnx/model_fp16.onnx (+ _data)  with dtypes ['fp16'] (fp16 weights, KV cache and logits; computing in
 *                                       fp32, or in fp16 like a real fp16 export with compute 'fp16')
 *   DIR/onnx/model_q4.onnx, model_q4f16.onnx, model_int8.onnx, model_uint8.onnx, model_quantized.onnx
 *                                       quantized from the same fp32 weights (quantize.ts)
 *
 * with seeded random weights: the same options and seed give byte-identical files. The folder is written to a
 * temporary sibling directory and renamed into place, so a reader never sees a half-written model.
 */
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { encodeModel, GraphBuilder } from './onnx-builder.js';
import { buildLlamaGraph, countParameters, LLAMA_ATTENTIONS, type LlamaAttention, type LlamaSpec } from './llama.js';
import { validateQuantSpec, type Q4Spec } from './quantize.js';
import { SIZE_PRESETS, SIZES, type SizeName } from './sizes.js';
import { loadTokenizerInfo, TOKENIZERS, type TokenizerName } from './tokenizers.js';

export { SIZES, SIZE_PRESETS, type SizeName } from './sizes.js';
export { TOKENIZERS, type TokenizerName } from './tokenizers.js';
export { countParameters, LLAMA_ATTENTIONS, type LlamaAttention, type LlamaSpec } from './llama.js';
export type { QuantSpec } from './quantize.js';

export const OPSET = 17;
export const IR_VERSION = 8;
export const DEFAULT_SEED = 1234;
/** Weights above this many bytes go to `onnx/model.onnx_data` when `externalData` is 'auto'. */
export const EXTERNAL_DATA_AUTO_BYTES = 64 * 1024 * 1024;
/** Protobuf messages are limited to 2 GiB; inline weights must stay well below. */
const INLINE_LIMIT_BYTES = 1.8 * 1024 ** 3;

export interface MakeModelOptions {
  /** Output folder. */
  out: string;
  size?: SizeName;
  seed?: number;
  /** Replace an existing folder. Without it an existing `out` is an error. */
  force?: boolean;
  tokenizer?: TokenizerName;
  /**
   * The model's vocabulary (vocab_size, the logits' width), padded past the tokenizer's as real checkpoints pad to a
   * multiple of 64 or 128. The padding ids outscore every real id (llama.ts PADDING_SCORE), so a sampler that does
   * not mask them picks one. Default: the tokenizer's vocabulary size (no padding).
   */
  vocabSize?: number;
  layers?: number;
  hidden?: number;
  heads?: number;
  kvHeads?: number;
  /** Defaults to hidden / heads. */
  headDim?: number;
  intermediate?: number;
  /** max_position_embeddings. */
  context?: number;
  kvDtype?: 'float32' | 'float16';
  /** Whether the graph has a `position_ids` input (default true). */
  positionIds?: boolean;
  /**
   * 'standard' (default): attention from default-domain ONNX ops. 'gqa': ONNX Runtime's com.microsoft
   * GroupQueryAttention contrib op, as onnxruntime-genai's model builder exports (llama.ts has the contract).
   */
  attention?: LlamaAttention;
  /**
   * A fault for tests of failure handling: every Run whose total length (past + new tokens) reaches this many tokens
   * fails inside ONNX Runtime, as a runtime or device failure in the middle of a generation would (llama.ts).
   * Absent: none.
   */
  failAtLength?: number;
  /** true, false, or 'auto' (default: external when weights exceed 64 MiB). */
  externalData?: boolean | 'auto';
  /**
   * Which ONNX files to write, by transformers.js dtype name: 'fp32' → onnx/model.onnx, 'fp16' →
   * onnx/model_fp16.onnx (fp16 weights, KV and logits, as onnx-community publishes). Default ['fp32'].
   * Both files hold the same seeded weights (fp16 rounded from fp32).
   */
  dtypes?: ModelDtype[];
  /** 4-bit files (q4, q4f16): values per block along K, 32 (default) or 128 (any power of two >= 16). */
  q4BlockSize?: number;
  /** 4-bit files: asymmetric blocks with zero points (default false: symmetric, no zero_points input). */
  q4ZeroPoints?: boolean;
  /** 4-bit files: MatMulNBits accuracy_level (0-4); default: not written. */
  q4AccuracyLevel?: number;
  /** 8-bit files (int8, uint8, q8): a scale per output column instead of per tensor (default false). */
  int8PerChannel?: boolean;
  /**
   * Arithmetic of onnx/model_fp16.onnx. 'fp32' (default; today's files, byte for byte): each fp16 weight behind a
   * Cast to fp32, which ONNX Runtime folds at load, so the model computes (and keeps its weights resident) in fp32.
   * 'fp16': as a real fp16 export (Optimum / onnx-community): weights used directly, fp16 activations, MatMuls, KV
   * and logits, fp32 only inside RMSNorm, the rotary tables and the softmax (llama.ts, LlamaSpec.computeDtype).
   * Needs 'fp16' in dtypes; model.onnx is always fp32. Recorded as `compute: 'fp16'` in config.json.
   */
  compute?: ModelCompute;
  /** Progress lines ("wrote ..."); default silent. */
  log?: (line: string) => void;
}

export const MODEL_DTYPES = ['fp32', 'fp16', 'q4', 'q4f16', 'int8', 'uint8', 'q8'] as const;
export type ModelDtype = (typeof MODEL_DTYPES)[number];
export const MODEL_COMPUTES = ['fp32', 'fp16'] as const;
export type ModelCompute = (typeof MODEL_COMPUTES)[number];
/** File names by transformers.js dtype (its DEFAULT_DTYPE_SUFFIX_MAPPING: q8 is `_quantized`). */
export const ONNX_FILE: Record<ModelDtype, string> = {
  fp32: 'model.onnx',
  fp16: 'model_fp16.onnx',
  q4: 'model_q4.onnx',
  q4f16: 'model_q4f16.onnx',
  int8: 'model_int8.onnx',
  uint8: 'model_uint8.onnx',
  q8: 'model_quantized.onnx',
};

export interface ModelConfig {
  architectures: string[];
  model_type: 'llama';
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: null;
  hidden_act: 'silu';
  attention_bias: false;
  mlp_bias: false;
  tie_word_embeddings: false;
  bos_token_id: number | null;
  eos_token_id: number | number[];
  pad_token_id?: number;
  torch_dtype: 'float32';
  use_cache: true;
  'transformers.js_config': Record<string, unknown>;
  /** How this model was made (reproducible from these fields). */
  tokmeter_modelgen: {
    size: SizeName | 'custom';
    seed: number;
    tokenizer: TokenizerName;
    kv_dtype: 'float32' | 'float16';
    position_ids: boolean;
    attention: LlamaAttention;
    external_data: boolean;
    dtypes: ModelDtype[];
    opset: number;
    /** Present only when model_fp16.onnx computes in fp16 (compute 'fp16'); absent means fp32 compute. */
    compute?: 'fp16';
    /** Present only with quantized files: how they were quantized. */
    quantization?: {
      q4?: { block_size: number; zero_points: boolean; accuracy_level?: number };
      int8?: { per_channel: boolean };
    };
  };
}

export interface MakeModelResult {
  dir: string;
  config: ModelConfig;
  parameters: number;
  /** Total bytes of all files written. */
  bytes: number;
  files: { path: string; bytes: number }[];
}

export async function makeModel(options: MakeModelOptions): Promise<MakeModelResult> {
  if (!options || typeof options.out !== 'string' || options.out.length === 0) {
    throw new TypeError('expected a non-empty string for out');
  }
  const size = options.size ?? 'tiny';
  if (!(SIZES as readonly string[]).includes(size)) {
    throw new TypeError(`expected size to be one of ${SIZES.join(', ')}, got ${String(size)}`);
  }
  const preset = SIZE_PRESETS[size];
  const seed = options.seed ?? DEFAULT_SEED;
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new TypeError(`expected a non-negative integer for seed, got ${String(seed)}`);
  const tokenizerName = options.tokenizer ?? preset.tokenizer;
  if (!(TOKENIZERS as readonly string[]).includes(tokenizerName)) {
    throw new TypeError(`expected tokenizer to be one of ${TOKENIZERS.join(', ')}, got ${String(tokenizerName)}`);
  }
  const tok = loadTokenizerInfo(tokenizerName);

  const hidden = options.hidden ?? preset.hidden;
  const heads = options.heads ?? preset.heads;
  const vocabSize = options.vocabSize ?? tok.vocabSize;
  if (!Number.isSafeInteger(vocabSize) || vocabSize < tok.vocabSize) {
    throw new TypeError(
      `expected an integer >= ${tok.vocabSize} (the tokenizer's vocabulary) for vocabSize, got ${String(vocabSize)}`,
    );
  }
  const spec: LlamaSpec = {
    vocabSize,
    ...(vocabSize > tok.vocabSize ? { paddingFrom: tok.vocabSize } : {}),
    hiddenSize: hidden,
    numLayers: options.layers ?? preset.layers,
    numHeads: heads,
    numKvHeads: options.kvHeads ?? Math.min(preset.kvHeads, heads),
    headDim: options.headDim ?? hidden / heads,
    intermediateSize: options.intermediate ?? preset.intermediate,
    rmsNormEps: 1e-5,
    ropeTheta: tok.ropeTheta,
    kvDtype: options.kvDtype ?? 'float32',
    positionIds: options.positionIds ?? true,
    attention: options.attention ?? 'standard',
    ...(options.failAtLength !== undefined ? { failAtLength: options.failAtLength } : {}),
  };
  if (!(LLAMA_ATTENTIONS as readonly string[]).includes(spec.attention!)) {
    throw new TypeError(
      `expected attention to be one of ${LLAMA_ATTENTIONS.join(', ')}, got ${String(options.attention)}`,
    );
  }
  const context = options.context ?? preset.context;
  if (!Number.isSafeInteger(context) || context <= 0)
    throw new TypeError(`expected a positive integer for context, got ${String(context)}`);
  if (!Number.isInteger(spec.headDim)) {
    throw new RangeError(`hidden (${hidden}) is not divisible by heads (${heads}); pass headDim`);
  }
  // The size names the layer shapes; the tokenizer is recorded on its own (tokmeter_modelgen.tokenizer).
  const custom = ['layers', 'hidden', 'heads', 'kvHeads', 'headDim', 'intermediate', 'vocabSize'].some(
    (k) => options[k as keyof MakeModelOptions] !== undefined,
  );

  const parameters = countParameters(spec);
  const ext = options.externalData ?? 'auto';
  const external = ext === 'auto' ? parameters * 4 > EXTERNAL_DATA_AUTO_BYTES : ext;
  const dtypes: ModelDtype[] = [...new Set<ModelDtype>(options.dtypes ?? ['fp32'])];
  if (dtypes.length === 0 || dtypes.some((d) => !(MODEL_DTYPES as readonly string[]).includes(d))) {
    throw new TypeError(
      `expected dtypes to be a non-empty list of ${MODEL_DTYPES.join(', ')}, got ${String(options.dtypes)}`,
    );
  }

  const compute = options.compute ?? 'fp32';
  if (!(MODEL_COMPUTES as readonly string[]).includes(compute)) {
    throw new TypeError(`expected compute to be one of ${MODEL_COMPUTES.join(', ')}, got ${String(options.compute)}`);
  }
  if (compute === 'fp16' && !dtypes.includes('fp16')) {
    throw new RangeError("compute 'fp16' applies to onnx/model_fp16.onnx: add 'fp16' to dtypes");
  }

  const q4: Q4Spec = {
    bits: 4,
    blockSize: options.q4BlockSize ?? 32,
    zeroPoints: options.q4ZeroPoints ?? false,
    ...(options.q4AccuracyLevel !== undefined ? { accuracyLevel: options.q4AccuracyLevel } : {}),
  };
  validateQuantSpec(q4);
  const perChannel = options.int8PerChannel ?? false;
  const hasQ4 = dtypes.includes('q4') || dtypes.includes('q4f16');
  const hasQ8 = dtypes.some((d) => d === 'int8' || d === 'uint8' || d === 'q8');

  if (!external && parameters * 4 > INLINE_LIMIT_BYTES) {
    throw new RangeError(
      `${parameters} fp32 weights do not fit in one protobuf file (2 GiB limit); use externalData (--external-data)`,
    );
  }

  const out = resolve(options.out);
  if (existsSync(out) && !options.force) throw new Error(`${out} already exists (pass force to replace it)`);
  const parent = dirname(out);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(out)}.tmp-${process.pid}-${Date.now()}`);
  const log = options.log ?? (() => {});

  const config: ModelConfig = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: spec.vocabSize,
    hidden_size: spec.hiddenSize,
    intermediate_size: spec.intermediateSize,
    num_hidden_layers: spec.numLayers,
    num_attention_heads: spec.numHeads,
    num_key_value_heads: spec.numKvHeads,
    head_dim: spec.headDim,
    max_position_embeddings: context,
    rms_norm_eps: spec.rmsNormEps,
    rope_theta: spec.ropeTheta,
    rope_scaling: null,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
    bos_token_id: tok.bosTokenId,
    eos_token_id: tok.eosTokenIds.length === 1 ? tok.eosTokenIds[0]! : tok.eosTokenIds,
    ...(tok.padTokenId !== null ? { pad_token_id: tok.padTokenId } : {}),
    torch_dtype: 'float32',
    use_cache: true,
    'transformers.js_config': {
      dtype: dtypes.includes('fp32') ? 'fp32' : dtypes[0],
      ...(external ? { use_external_data_format: Object.fromEntries(dtypes.map((d) => [ONNX_FILE[d], 1])) } : {}),
    },
    tokmeter_modelgen: {
      size: custom ? 'custom' : size,
      seed,
      tokenizer: tokenizerName,
      kv_dtype: spec.kvDtype,
      position_ids: spec.positionIds,
      attention: spec.attention!,
      external_data: external,
      dtypes,
      opset: OPSET,
      ...(compute === 'fp16' ? { compute: 'fp16' as const } : {}),
      ...(hasQ4 || hasQ8
        ? {
            quantization: {
              ...(hasQ4
                ? {
                    q4: {
                      block_size: q4.blockSize,
                      zero_points: q4.zeroPoints,
                      ...(q4.accuracyLevel !== undefined ? { accuracy_level: q4.accuracyLevel } : {}),
                    },
                  }
                : {}),
              ...(hasQ8 ? { int8: { per_channel: perChannel } } : {}),
            },
          }
        : {}),
    },
  };
  const generationConfig = {
    ...(tok.bosTokenId !== null ? { bos_token_id: tok.bosTokenId } : {}),
    eos_token_id: tok.eosTokenIds.length === 1 ? tok.eosTokenIds[0] : tok.eosTokenIds,
    ...(tok.padTokenId !== null ? { pad_token_id: tok.padTokenId } : {}),
  };

  const started = Date.now();
  try {
    mkdirSync(join(tmp, 'onnx'), { recursive: true });
    for (const dtype of dtypes) {
      const fileSpec = fileSpecFor(spec, dtype, compute, q4, perChannel);
      writeOnnx(join(tmp, 'onnx'), ONNX_FILE[dtype], fileSpec, seed, external, parameters);
    }
    writeFileSync(join(tmp, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    writeFileSync(join(tmp, 'generation_config.json'), JSON.stringify(generationConfig, null, 2) + '\n');
    copyFileSync(tok.tokenizerJsonPath, join(tmp, 'tokenizer.json'));
    copyFileSync(tok.tokenizerConfigPath, join(tmp, 'tokenizer_config.json'));

    if (existsSync(out)) {
      const old = join(parent, `.${basename(out)}.old-${process.pid}-${Date.now()}`);
      renameSync(out, old);
      renameSync(tmp, out);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmp, out);
    }
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }

  const names = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'];
  for (const d of dtypes) {
    names.push(`onnx/${ONNX_FILE[d]}`);
    if (external) names.push(`onnx/${ONNX_FILE[d]}_data`);
  }
  const files = names.map((n) => ({ path: join(out, n), bytes: statSync(join(out, n)).size }));
  const bytes = files.reduce((a, f) => a + f.bytes, 0);
  for (const f of files) log(`wrote ${f.path} (${formatBytes(f.bytes)})`);
  log(
    `model: ${config.tokmeter_modelgen.size}, ${formatCount(parameters)} parameters, ${spec.numLayers} layers, hidden ${spec.hiddenSize}, ` +
      `${spec.numHeads} heads / ${spec.numKvHeads} KV heads x ${spec.headDim}, vocab ${spec.vocabSize} (${tok.package}), ` +
      `${spec.attention === 'gqa' ? 'GroupQueryAttention, ' : ''}files ${dtypes.join('+')}${compute === 'fp16' ? ' (fp16 file computes in fp16)' : ''}, KV ${dtypes.some((d) => d !== 'fp16' && d !== 'q4f16') ? spec.kvDtype : 'float16'}, ${formatBytes(bytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return { dir: out, config, parameters, bytes, files };
}

/**
 * The graph of one file: fp16 (fp16 weights, KV and logits), q4 (MatMulNBits, fp32 elsewhere), q4f16 (MatMulNBits
 * in an fp16 graph, as a real fp16 export quantized), int8 / uint8 / q8 (quantize_dynamic; q8, transformers.js's
 * model_quantized.onnx, has uint8 weights as the uint8 file).
 */
function fileSpecFor(spec: LlamaSpec, dtype: ModelDtype, compute: ModelCompute, q4: Q4Spec, perChannel: boolean) {
  const half = { kvDtype: 'float16' as const, weightDtype: 'float16' as const };
  switch (dtype) {
    case 'fp16':
      return { ...spec, ...half, ...(compute === 'fp16' ? { computeDtype: 'float16' as const } : {}) };
    case 'q4':
      return { ...spec, weightDtype: 'float32' as const, quant: q4 };
    case 'q4f16':
      return { ...spec, ...half, computeDtype: 'float16' as const, quant: q4 };
    case 'int8':
    case 'uint8':
    case 'q8':
      return {
        ...spec,
        weightDtype: 'float32' as const,
        quant: { bits: 8 as const, signed: dtype === 'int8', perChannel },
      };
    default:
      return { ...spec, weightDtype: 'float32' as const };
  }
}

/** Builds one decoder graph and writes `dir/fileName` (and `fileName_data` when external). */
function writeOnnx(
  dir: string,
  fileName: string,
  spec: LlamaSpec,
  seed: number,
  external: boolean,
  expectedParameters: number,
): void {
  const builder = new GraphBuilder(
    'tokmeter_llama',
    external ? { path: join(dir, `${fileName}_data`), location: `${fileName}_data` } : null,
  );
  try {
    buildLlamaGraph(builder, spec, seed);
    if (builder.parameterCount !== expectedParameters) {
      throw new Error(`internal: built ${builder.parameterCount} parameters, expected ${expectedParameters}`);
    }
    const model = builder.finish({
      opset: OPSET,
      irVersion: IR_VERSION,
      producer: 'tokmeter-modelgen',
      docString: `Random-weight Llama-style decoder (seed ${seed}); not a trained model.`,
    });
    writeFileSync(join(dir, fileName), encodeModel(model));
  } finally {
    builder.abort();
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : `${(n / 1e3).toFixed(1)}K`;
}
