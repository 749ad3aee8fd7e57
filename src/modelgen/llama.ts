/**
 * A Llama-style decoder written as a plain ONNX graph (standard ops, opset 17), with seeded random weights; with
 * `attention: 'gqa'` each layer's attention is ONNX Runtime's com.microsoft GroupQueryAttention instead (see
 * LlamaSpec.attention), same weights and same function.
 *
 * Graph contract (Optimum / onnx-community "text-generation-with-past" layout):
 *   inputs   input_ids            int64 [batch_size, sequence_length]
 *            attention_mask       int64 [batch_size, past_sequence_length + sequence_length]
 *            position_ids         int64 [batch_size, sequence_length]            (absent with positionIds: false)
 *            past_key_values.{i}.key|value  kv [batch_size, num_kv_heads, past_sequence_length, head_dim]
 *   outputs  logits               float [batch_size, sequence_length, vocab_size]  (float16 with fp16 weights)
 *            present.{i}.key|value kv [batch_size, num_kv_heads, total_sequence_length, head_dim]
 * `kv` is float32 or float16; with float16 the cache is stored in fp16 and all compute stays fp32 (Casts at the
 * cache boundary), so step-by-step and full-recompute decoding round the same values identically.
 * With `computeDtype: 'float16'` (fp16 weights only) the graph computes in fp16 as an Optimum fp16 export does; see
 * LlamaSpec.computeDtype for where it stays in fp32.
 * Past tensors may have length 0 (the first step). Query i of the new chunk sits at absolute key index
 * past + i; key j is visible iff j <= past + i and attention_mask[b, j] = 1. Masked scores are *replaced* (Where)
 * by a large negative number rather than added to, so padded keys contribute exactly zero and left-padded rows
 * match their unpadded selves up to summation order.
 *
 * Decisions:
 * - GQA without copying the cache: queries are reshaped to [B, kv_heads, group, S, D] and multiplied with keys
 *   unsqueezed to [B, kv_heads, 1, D, T] (MatMul broadcasts), instead of Optimum's Expand+Reshape repeat_kv,
 *   which materializes the repeated cache every step. Query head h uses KV head floor(h / group), as HF's repeat_kv.
 * - Weights are stored [in, out] for MatMul (HF stores nn.Linear weights [out, in]); names follow HF's parameter
 *   names so a reader can map them.
 * - Init: scaled uniform, std 1/sqrt(fan_in) for every projection (each matmul keeps activations near unit scale),
 *   embeddings std 1, query/key projections with an extra gain so attention is not uniform, RMSNorm weights near 1
 *   with noise. GPT-2-style N(0, 0.02) with a tied head makes greedy decoding repeat one token (observed); the
 *   untied random LM head alone avoids that, and these scales make the attention and MLP branches as large as the
 *   residual, so the continuation depends on the whole context: prompts sharing their last token get final logits
 *   correlated only 0.3-0.6 at every preset size (measured; a test holds < 0.8 on tiny).
 */
import { DataType, GraphBuilder, type DataTypeValue } from './onnx-builder.js';
import { toHalfArray } from './half.js';
import { Prng, uniformBoundForStd } from './prng.js';
import { quantizedGather, quantizedMatMul, validateQuantSpec, type QuantSpec } from './quantize.js';

/** What a padding id adds to its logit (paddingFrom): more than any real id's logit reaches. */
export const PADDING_SCORE = 1000;

export interface LlamaSpec {
  vocabSize: number;
  /**
   * Ids from here to vocabSize are padding that no tokenizer names (vocabularies padded to a multiple of 64 or 128).
   * Their logits get PADDING_SCORE added, so greedy decoding picks one unless the sampler masks them. Absent: none.
   */
  paddingFrom?: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  kvDtype: 'float32' | 'float16';
  /** Whether `position_ids` is a graph input; without it positions come from cumsum(attention_mask) - 1. */
  positionIds: boolean;
  /**
   * Storage type of the weights. 'float16' is the layout of onnx-community's `model_fp16.onnx`: fp16 weights,
   * fp16 KV cache and fp16 logits; here compute stays fp32 (weights are Cast once, which ONNX Runtime folds at
   * load), so the model runs on any CPU build. Default 'float32'.
   */
  weightDtype?: 'float32' | 'float16';
  /**
   * Arithmetic type of the graph. 'float32' (default): as described for weightDtype. 'float16' (needs fp16
   * weights and KV): computes as a real fp16 export (Optimum / onnx-community `model_fp16.onnx`, a torch fp16 model
   * traced) does: weights used directly, no Cast; fp16 embeddings, hidden states, MatMuls, SiLU, residual adds, KV
   * and logits. fp32 islands where HF's Llama upcasts: RMSNorm (x cast to fp32 for the mean of squares and the
   * scaling, cast back before the fp16 weight, as LlamaRMSNorm), the rotary tables (cos/sin from positions in fp32,
   * then cast to fp16, as LlamaRotaryEmbedding), and the masked softmax (scores cast to fp32, masked with the same
   * finite -1e9, softmax, probabilities cast back, as eager attention's softmax(dtype=float32)). The same function
   * as the fp32 graph up to fp16 rounding.
   */
  computeDtype?: 'float32' | 'float16';
  /**
   * How attention is written. 'standard' (default): default-domain ops (MatMul, Where over the mask, Softmax).
   * 'gqa': one com.microsoft `GroupQueryAttention` node per layer, as onnxruntime-genai's model builder exports
   * it: query [B, S, heads*D], key/value
   * [B, S, kv_heads*D], past/present BNSH, `seqlens_k` = ReduceSum(attention_mask, 1) - 1 (int32 [B]) and
   * `total_sequence_length` = the mask's width (int32 scalar); rotary applied before the node (do_rotary 0).
   * The op takes no mask: it assumes each row's valid keys are its first seqlens_k + 1 (right padding).
   */
  attention?: LlamaAttention;
  /**
   * Quantized linear layers and LM head (quantize.ts has the operators and the math), from the same fp32 draws:
   * 4 bits: com.microsoft MatMulNBits, with fp32 weights elsewhere (q4) or in an fp16 graph (q4f16: weightDtype
   * and computeDtype 'float16', fp16 scales); the embedding stays a float Gather, as in onnx-community's q4 files.
   * 8 bits (fp32 weights and compute only): quantize_dynamic's DynamicQuantizeLinear + MatMulInteger, and the
   * embedding table quantized behind a DequantizeLinear. Absent: float MatMuls.
   */
  quant?: QuantSpec;
  /**
   * A fault for tests: the Run fails once the total length T (the attention mask's width) reaches this many tokens
   * (>= 3; rows per Run below failAtLength - 1). The mask is reshaped to [-1, min(T, failAtLength - 1)], which holds
   * its elements only while T < failAtLength; its sum times 0 is added to the embeddings, so the logits stay
   * exactly those of the model without the fault. Absent: none.
   */
  failAtLength?: number;
}

export const LLAMA_ATTENTIONS = ['standard', 'gqa'] as const;
export type LlamaAttention = (typeof LLAMA_ATTENTIONS)[number];

/** Extra gain on the query/key projections: scores get a standard deviation of a few units. */
const QK_GAIN = 2.5;
/** Score for masked positions (finite, so a fully masked padding row gives a uniform softmax, never NaN). */
const MASKED_SCORE = -1e9;

export const ATTENTION_MASK_DIM = 'past_sequence_length + sequence_length';

/** Number of weights in a model with this spec (float parameters). */
export function countParameters(s: LlamaSpec): number {
  const h = s.hiddenSize;
  const q = s.numHeads * s.headDim;
  const kv = s.numKvHeads * s.headDim;
  const perLayer = h * q + 2 * h * kv + q * h + 3 * h * s.intermediateSize + 2 * h;
  const paddingBias = s.paddingFrom !== undefined && s.paddingFrom < s.vocabSize ? s.vocabSize : 0;
  return 2 * s.vocabSize * h + s.numLayers * perLayer + h + paddingBias;
}

export function validateSpec(s: LlamaSpec): void {
  const positive: (keyof LlamaSpec)[] = [
    'vocabSize',
    'hiddenSize',
    'numLayers',
    'numHeads',
    'numKvHeads',
    'headDim',
    'intermediateSize',
  ];
  for (const k of positive) {
    const v = s[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw new TypeError(`expected a positive integer for ${k}, got ${String(v)}`);
    }
  }
  if (s.failAtLength !== undefined && (!Number.isSafeInteger(s.failAtLength) || s.failAtLength < 3)) {
    throw new TypeError(`expected an integer >= 3 for failAtLength, got ${String(s.failAtLength)}`);
  }
  if (s.numHeads % s.numKvHeads !== 0) {
    throw new RangeError(`numHeads (${s.numHeads}) must be a multiple of numKvHeads (${s.numKvHeads})`);
  }
  if (s.headDim % 2 !== 0) throw new RangeError(`headDim must be even for rotary embeddings, got ${s.headDim}`);
  if (!(s.rmsNormEps > 0)) throw new RangeError(`rmsNormEps must be positive, got ${s.rmsNormEps}`);
  if (!(s.ropeTheta > 0)) throw new RangeError(`ropeTheta must be positive, got ${s.ropeTheta}`);
  if (s.kvDtype !== 'float32' && s.kvDtype !== 'float16') {
    throw new TypeError(`expected kvDtype 'float32' or 'float16', got ${String(s.kvDtype)}`);
  }
  if (s.computeDtype !== undefined && s.computeDtype !== 'float32' && s.computeDtype !== 'float16') {
    throw new TypeError(`expected computeDtype 'float32' or 'float16', got ${String(s.computeDtype)}`);
  }
  if (s.computeDtype === 'float16' && (s.weightDtype !== 'float16' || s.kvDtype !== 'float16')) {
    throw new RangeError("computeDtype 'float16' needs weightDtype and kvDtype 'float16'");
  }
  if (s.quant) {
    validateQuantSpec(s.quant);
    if (s.quant.bits === 8 && s.weightDtype === 'float16')
      throw new RangeError('8-bit quantization takes fp32 weights');
    if (s.quant.bits === 4 && s.weightDtype === 'float16' && s.computeDtype !== 'float16') {
      throw new RangeError("4-bit quantization with fp16 weights computes in fp16 (computeDtype 'float16')");
    }
  }
  if (s.attention !== undefined && !(LLAMA_ATTENTIONS as readonly string[]).includes(s.attention)) {
    throw new TypeError(`expected attention to be one of ${LLAMA_ATTENTIONS.join(', ')}, got ${String(s.attention)}`);
  }
}

/** Adds the whole decoder to `g` (inputs, weights, nodes, outputs). */
export function buildLlamaGraph(g: GraphBuilder, s: LlamaSpec, seed: number): void {
  validateSpec(s);
  const rng = new Prng(seed);
  const H = s.hiddenSize;
  const D = s.headDim;
  const nH = s.numHeads;
  const nKV = s.numKvHeads;
  const group = nH / nKV;
  const kvType: DataTypeValue = s.kvDtype === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;

  const halfWeights = s.weightDtype === 'float16';
  /** fp16 arithmetic (computeDtype 'float16'): weights are used as stored, activations are fp16. */
  const halfCompute = s.computeDtype === 'float16';
  const logitsType: DataTypeValue = halfWeights ? DataType.FLOAT16 : DataType.FLOAT;
  /**
   * Stores a weight (fp32 or fp16) and returns the name of its value in the compute type (fp32, or the stored fp16
   * with halfCompute). Same random draws either way.
   */
  const store = (name: string, dims: number[], data: Float32Array, castToFloat = true): string => {
    if (!halfWeights) return g.initializer(name, DataType.FLOAT, dims, data, true);
    const stored = g.initializer(name, DataType.FLOAT16, dims, toHalfArray(data), true);
    return castToFloat && !halfCompute ? g.op('Cast', [stored], { to: DataType.FLOAT }) : stored;
  };
  const weight = (name: string, dims: number[], std: number, castToFloat = true): string =>
    store(
      name,
      dims,
      rng.fillUniform(new Float32Array(dims.reduce((a, b) => a * b, 1)), uniformBoundForStd(std)),
      castToFloat,
    );
  const normWeight = (name: string): string => store(name, [H], rng.fillUniform(new Float32Array(H), 0.2, 1));
  const quant = s.quant;
  const sharedQuantizedInputs = new Map<string, string[]>();
  /** x @ W for a [fanIn, fanOut] weight drawn with `std`: a MatMul, or its quantized form. */
  const linear = (x: string, name: string, dims: [number, number], std: number, output?: string): string => {
    if (!quant) return g.op('MatMul', [x, weight(name, dims, std)], {}, output);
    const w = rng.fillUniform(new Float32Array(dims[0] * dims[1]), uniformBoundForStd(std));
    return quantizedMatMul(g, x, name, w, dims[0], dims[1], quant, halfCompute, sharedQuantizedInputs, output);
  };

  // ---- inputs
  const inputIds = g.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const attentionMask = g.input('attention_mask', DataType.INT64, ['batch_size', ATTENTION_MASK_DIM]);
  const positionIdsIn = s.positionIds
    ? g.input('position_ids', DataType.INT64, ['batch_size', 'sequence_length'])
    : null;
  // Outputs in Optimum's order: logits first, then present.{i}.key|value (declared here, produced below).
  g.output('logits', logitsType, ['batch_size', 'sequence_length', s.vocabSize]);
  for (let i = 0; i < s.numLayers; i++) {
    g.output(`present.${i}.key`, kvType, ['batch_size', nKV, 'total_sequence_length', D]);
    g.output(`present.${i}.value`, kvType, ['batch_size', nKV, 'total_sequence_length', D]);
  }
  const past: { key: string; value: string }[] = [];
  for (let i = 0; i < s.numLayers; i++) {
    const dims = ['batch_size', nKV, 'past_sequence_length', D];
    past.push({
      key: g.input(`past_key_values.${i}.key`, kvType, dims),
      value: g.input(`past_key_values.${i}.value`, kvType, dims),
    });
  }

  // ---- lengths: S = new tokens, T = total (past + new), P = T - S
  const gqa = s.attention === 'gqa';
  const c0 = gqa ? '' : g.constInt64([0], []);
  const c1 = g.constInt64([1], []);
  const seqLen = g.op('Gather', [g.op('Shape', [inputIds]), c1], { axis: 0 });
  const totalLen = g.op('Gather', [g.op('Shape', [attentionMask]), c1], { axis: 0 });
  const pastLen = g.op('Sub', [totalLen, seqLen]);

  // (The standard graph's nodes are emitted in the same order as before the 'gqa' variant existed, so its files
  // stay byte-identical for a given seed; the 'gqa' graph makes none of the standard attention's constants.)
  let maskBool: string;
  let allowed = '';
  let maskedScore = '';
  let seqlensK = '';
  let totalLenI32 = '';
  if (gqa) {
    // GroupQueryAttention's lengths, derived from the mask as the genai model builder does.
    const ones = g.op('ReduceSum', [attentionMask, g.constInt64([1])], { keepdims: 0 }); // [B]
    seqlensK = g.op('Cast', [g.op('Sub', [ones, c1])], { to: DataType.INT32 });
    totalLenI32 = g.op('Cast', [totalLen], { to: DataType.INT32 });
    maskBool = s.positionIds ? '' : g.op('Cast', [attentionMask], { to: DataType.BOOL }); // [B, T]
  } else {
    // mask: allowed[b, 1, 1, i, j] = (j <= P + i) && attention_mask[b, j]  (rank 5 for the grouped scores)
    const keyIdx = g.op('Unsqueeze', [g.op('Range', [c0, totalLen, c1]), g.constInt64([0])]); // [1, T]
    const queryIdx = g.op('Unsqueeze', [g.op('Range', [pastLen, totalLen, c1]), g.constInt64([1])]); // [S, 1]
    const causal = g.op('LessOrEqual', [keyIdx, queryIdx]); // [S, T]
    maskBool = g.op('Cast', [attentionMask], { to: DataType.BOOL }); // [B, T]
    const padMask = g.op('Unsqueeze', [maskBool, g.constInt64([1, 2, 3])]); // [B, 1, 1, 1, T]
    allowed = g.op('And', [causal, padMask]); // [B, 1, 1, S, T]
    maskedScore = g.constFloat([MASKED_SCORE], []);
  }

  // ---- positions
  let positionIds: string;
  if (positionIdsIn) {
    positionIds = positionIdsIn;
  } else {
    // HF: position_ids = cumsum(mask) - 1, masked_fill(mask == 0, 1), then the last S columns.
    const cum = g.op('Sub', [g.op('CumSum', [attentionMask, c1]), g.constInt64([1], [])]);
    const filled = g.op('Where', [maskBool, cum, g.constInt64([1], [])]);
    positionIds = g.op('Slice', [
      filled,
      g.op('Unsqueeze', [pastLen, g.constInt64([0])]),
      g.op('Unsqueeze', [totalLen, g.constInt64([0])]),
      g.constInt64([1]),
    ]);
  }

  // ---- rotary tables: cos/sin [B, 1, S, D], emb = cat(freqs, freqs) as in HF's LlamaRotaryEmbedding
  const invFreq = new Float32Array(D / 2);
  for (let i = 0; i < D / 2; i++) invFreq[i] = 1 / Math.pow(s.ropeTheta, (2 * i) / D);
  const posF = g.op('Unsqueeze', [g.op('Cast', [positionIds], { to: DataType.FLOAT }), g.constInt64([2])]); // [B,S,1]
  const freqs = g.op('Mul', [posF, g.constFloat(invFreq)]); // [B, S, D/2]
  const emb = g.op('Concat', [freqs, freqs], { axis: -1 });
  let cos = g.op('Unsqueeze', [g.op('Cos', [emb]), g.constInt64([1])]);
  let sin = g.op('Unsqueeze', [g.op('Sin', [emb]), g.constInt64([1])]);
  if (halfCompute) {
    // HF: cos/sin computed in fp32, then .to(x.dtype); the rotation itself runs in fp16.
    cos = g.op('Cast', [cos], { to: DataType.FLOAT16 });
    sin = g.op('Cast', [sin], { to: DataType.FLOAT16 });
  }
  const halves = g.constInt64([D / 2, D / 2]);
  const rope = (x: string): string => {
    const [x1, x2] = g.node('Split', [x, halves], { axis: -1 }, 2) as [string, string];
    const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: -1 });
    return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotated, sin])]);
  };

  const eps = g.constFloat([s.rmsNormEps], []);
  const rmsNorm = (x: string, w: string): string => {
    if (halfCompute) {
      // LlamaRMSNorm: x.to(float32), mean of squares and scaling in fp32, .to(fp16), then weight * x.
      const xf = g.op('Cast', [x], { to: DataType.FLOAT });
      const meanSq = g.op('ReduceMean', [g.op('Mul', [xf, xf])], { axes: [-1], keepdims: 1 });
      const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSq, eps])])]);
      return g.op('Mul', [g.op('Cast', [g.op('Mul', [xf, inv])], { to: DataType.FLOAT16 }), w]);
    }
    const meanSq = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
    const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSq, eps])])]);
    return g.op('Mul', [g.op('Mul', [x, inv]), w]);
  };

  const headsShape = (n: number): string => g.constInt64([0, 0, n, D]);
  const toHeads = (x: string, n: number): string =>
    g.op('Transpose', [g.op('Reshape', [x, headsShape(n)])], { perm: [0, 2, 1, 3] }); // [B, n, S, D]
  const qkStd = QK_GAIN / Math.sqrt(H);
  const scale = gqa ? '' : halfCompute ? g.constFloat16([1 / Math.sqrt(D)], []) : g.constFloat([1 / Math.sqrt(D)], []);
  const groupedShape = gqa ? '' : g.constInt64([0, nKV, group, -1, D]);
  const mergedHeadsShape = gqa ? '' : g.constInt64([0, nH, -1, D]);
  const flatShape = g.constInt64([0, 0, nH * D]);
  const axis2 = gqa ? '' : g.constInt64([2]);

  /** [B, n, S, D] -> [B, S, n * D]. */
  const fromHeads = (t: string, shape: string): string =>
    g.op('Reshape', [g.op('Transpose', [t], { perm: [0, 2, 1, 3] }), shape]);

  /** Default-domain attention of layer i over q [B, nH, S, D], k/v [B, nKV, S, D]; returns [B, S, nH * D]. */
  const standardAttention = (i: number, q: string, k: string, v: string): string => {
    let keys: string;
    let values: string;
    const presentKey = `present.${i}.key`;
    const presentValue = `present.${i}.value`;
    if (halfCompute) {
      keys = g.op('Concat', [past[i]!.key, k], { axis: 2 }, presentKey);
      values = g.op('Concat', [past[i]!.value, v], { axis: 2 }, presentValue);
    } else if (kvType === DataType.FLOAT16) {
      g.op('Concat', [past[i]!.key, g.op('Cast', [k], { to: DataType.FLOAT16 })], { axis: 2 }, presentKey);
      g.op('Concat', [past[i]!.value, g.op('Cast', [v], { to: DataType.FLOAT16 })], { axis: 2 }, presentValue);
      keys = g.op('Cast', [presentKey], { to: DataType.FLOAT });
      values = g.op('Cast', [presentValue], { to: DataType.FLOAT });
    } else {
      keys = g.op('Concat', [past[i]!.key, k], { axis: 2 }, presentKey);
      values = g.op('Concat', [past[i]!.value, v], { axis: 2 }, presentValue);
    }
    // scores [B, nKV, group, S, T]
    const qg = g.op('Reshape', [g.op('Mul', [q, scale]), groupedShape]);
    const kT = g.op('Unsqueeze', [g.op('Transpose', [keys], { perm: [0, 1, 3, 2] }), axis2]); // [B, nKV, 1, D, T]
    let raw = g.op('MatMul', [qg, kT]);
    // fp16 compute: mask and softmax in fp32 (eager attention's softmax(dtype=float32)); -1e9 is not an fp16 value.
    if (halfCompute) raw = g.op('Cast', [raw], { to: DataType.FLOAT });
    const scores = g.op('Where', [allowed, raw, maskedScore]);
    let probs = g.op('Softmax', [scores], { axis: -1 });
    if (halfCompute) probs = g.op('Cast', [probs], { to: DataType.FLOAT16 });
    const ctx = g.op('MatMul', [probs, g.op('Unsqueeze', [values, axis2])]); // [B, nKV, group, S, D]
    return fromHeads(g.op('Reshape', [ctx, mergedHeadsShape]), flatShape); // [B, S, nH * D]
  };

  /**
   * com.microsoft GroupQueryAttention of layer i over q [B, nH, S, D] and k [B, nKV, S, D] (rotated here, so
   * do_rotary 0) and v [B, S, nKV * D]; returns [B, S, nH * D]. With a float16 cache the op runs in float16 (as
   * the genai builder's fp16 exports do) and its output is cast back to float32 (not with halfCompute: there its
   * inputs and output are fp16 already).
   */
  const groupQueryAttention = (i: number, q: string, k: string, v: string): string => {
    const half = kvType === DataType.FLOAT16 && !halfCompute;
    const io = (t: string): string => (half ? g.op('Cast', [t], { to: DataType.FLOAT16 }) : t);
    const out = `/model/layers.${i}/attn/GroupQueryAttention/output_0`;
    const inputs = [
      io(fromHeads(q, flatShape)),
      io(fromHeads(k, g.constInt64([0, 0, nKV * D]))),
      io(v),
      past[i]!.key,
      past[i]!.value,
      seqlensK,
      totalLenI32,
    ];
    g.node(
      'GroupQueryAttention',
      inputs,
      { num_heads: nH, kv_num_heads: nKV, do_rotary: 0 },
      [out, `present.${i}.key`, `present.${i}.value`],
      'com.microsoft',
    );
    return half ? g.op('Cast', [out], { to: DataType.FLOAT }) : out;
  };

  // ---- decoder
  // fp16 weights, fp32 compute: gather from the fp16 table, then Cast the rows (no fp32 copy of the whole table).
  let x: string;
  if (quant?.bits === 8) {
    const table = rng.fillUniform(new Float32Array(s.vocabSize * H), uniformBoundForStd(1));
    x = quantizedGather(g, 'model.embed_tokens.weight', table, s.vocabSize, H, quant.signed, inputIds);
  } else {
    const embedTokens = weight('model.embed_tokens.weight', [s.vocabSize, H], 1, false);
    x = g.op('Gather', [embedTokens, inputIds], { axis: 0 }); // [B, S, H]
  }
  if (halfWeights && !halfCompute) x = g.op('Cast', [x], { to: DataType.FLOAT });
  if (s.failAtLength !== undefined) {
    const width = g.op('Min', [g.op('Unsqueeze', [totalLen, g.constInt64([0])]), g.constInt64([s.failAtLength - 1])]);
    const rows = g.op('Reshape', [attentionMask, g.op('Concat', [g.constInt64([-1]), width], { axis: 0 })]);
    let zero = g.op('Mul', [
      g.op('Cast', [g.op('ReduceSum', [rows], { keepdims: 0 })], { to: DataType.FLOAT }),
      g.constFloat([0], []),
    ]);
    if (halfCompute) zero = g.op('Cast', [zero], { to: DataType.FLOAT16 });
    x = g.op('Add', [x, zero]);
  }

  for (let i = 0; i < s.numLayers; i++) {
    const p = `model.layers.${i}`;
    const h = rmsNorm(x, normWeight(`${p}.input_layernorm.weight`));
    const q = rope(toHeads(linear(h, `${p}.self_attn.q_proj.weight`, [H, nH * D], qkStd), nH));
    const k = rope(toHeads(linear(h, `${p}.self_attn.k_proj.weight`, [H, nKV * D], qkStd), nKV));
    const v = linear(h, `${p}.self_attn.v_proj.weight`, [H, nKV * D], 1 / Math.sqrt(H));
    const merged = gqa ? groupQueryAttention(i, q, k, v) : standardAttention(i, q, k, toHeads(v, nKV));
    const attnOut = linear(merged, `${p}.self_attn.o_proj.weight`, [nH * D, H], 1 / Math.sqrt(nH * D));
    x = g.op('Add', [x, attnOut]);

    const h2 = rmsNorm(x, normWeight(`${p}.post_attention_layernorm.weight`));
    const gate = linear(h2, `${p}.mlp.gate_proj.weight`, [H, s.intermediateSize], 1 / Math.sqrt(H));
    const up = linear(h2, `${p}.mlp.up_proj.weight`, [H, s.intermediateSize], 1 / Math.sqrt(H));
    const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]); // SiLU(gate) * up
    const down = linear(act, `${p}.mlp.down_proj.weight`, [s.intermediateSize, H], 1 / Math.sqrt(s.intermediateSize));
    x = g.op('Add', [x, down]);
  }

  const final = rmsNorm(x, normWeight('model.norm.weight'));
  const padded = s.paddingFrom !== undefined && s.paddingFrom < s.vocabSize;
  const cast = halfWeights && !halfCompute;
  let scores = linear(
    final,
    'lm_head.weight',
    [H, s.vocabSize],
    1 / Math.sqrt(H),
    padded || cast ? undefined : 'logits',
  );
  if (padded) {
    const bias = new Float32Array(s.vocabSize).fill(PADDING_SCORE, s.paddingFrom);
    scores = g.op('Add', [scores, store('lm_head.padding_bias', [s.vocabSize], bias)], {}, cast ? undefined : 'logits');
  }
  if (cast) g.op('Cast', [scores], { to: DataType.FLOAT16 }, 'logits');
}
