/**
 * Weight quantization as ONNX Runtime's exporters write it, for the quantized model files (model_q4.onnx,
 * model_q4f16.onnx, model_int8.onnx, model_uint8.onnx, model_quantized.onnx).
 *
 * 4 bits (q4, q4f16): each linear layer (and the LM head) becomes one com.microsoft `MatMulNBits` node, as
 * onnxruntime's MatMulNBitsQuantizer (used by transformers.js's quantize script and Optimum) and onnxruntime-genai's
 * model builder write it:
 *   inputs   A [..., K] (float or float16), B uint8 [N, n_blocks, block_size / 2], scales [N * n_blocks] (the type
 *            of A), zero_points uint8 [N * ceil(n_blocks / 2)] (optional; absent means 8)
 *   attrs    K, N, bits 4, block_size, accuracy_level (only when set)
 * with n_blocks = ceil(K / block_size): column n of the [K, N] weight is cut into blocks along K (the last block
 * padded with zeros), each block has one scale (and zero point), and two 4-bit values share a byte, the even index
 * in the low nibble; zero points are packed the same way per column. Dequantized value: (q - zp) * scale.
 * Math (MLAS's MlasQuantizeBlockwise, which the quantizer calls): asymmetric (zero points): min = min(0, block min),
 * max = max(0, block max), scale = (max - min) / 15, zp = round(-min / scale) in [0, 15]; symmetric (no zero points,
 * the quantizer's default and the genai builder's): m = the block's value of largest magnitude, scale = m / -8,
 * zp = 8; q = clamp(round(v / scale + zp), 0, 15), round half away from zero. With fp16 scales (q4f16) the scale is
 * rounded to fp16 first and the values quantized against the rounded scale.
 *
 * 8 bits (int8, uint8): onnxruntime's quantize_dynamic (QuantizationMode.IntegerOps), weights int8 (QInt8,
 * symmetric: scale = max|w| / 127, zero point 0) or uint8 (QUInt8, asymmetric: scale = (max(0, max) - min(0, min)) /
 * 255, zp = round(-min / scale)), per tensor (its default) or per output column, round half to even (numpy's rint):
 *   DynamicQuantizeLinear(x) -> x_q uint8, x_scale, x_zero_point   (one per activation, shared by its MatMuls)
 *   MatMulInteger(x_q, W_q, x_zero_point, W_zero_point) -> int32;  Cast(to float);  Mul(., Mul(x_scale, W_scale))
 * and the embedding table as its GatherQuant writes it: Gather over the quantized table, then DequantizeLinear
 * (per tensor).
 */
import { DataType, type GraphBuilder } from './onnx-builder.js';
import { fromHalfBits, toHalfBits } from './half.js';

export interface Q4Spec {
  bits: 4;
  /** Values per block along K: a power of two >= 16 (exporters use 32, the default, or 128). */
  blockSize: number;
  /** With zero points (asymmetric) or without (symmetric, zero point 8). */
  zeroPoints: boolean;
  /** MatMulNBits accuracy_level (0-4); absent: not written (ONNX Runtime's default, 0). */
  accuracyLevel?: number;
}

export interface Q8Spec {
  bits: 8;
  /** int8 weights (symmetric) or uint8 (asymmetric). */
  signed: boolean;
  /** One scale (and zero point) per output column instead of per tensor. */
  perChannel: boolean;
}

export type QuantSpec = Q4Spec | Q8Spec;

export function validateQuantSpec(q: QuantSpec): void {
  if (q.bits === 4) {
    if (!Number.isSafeInteger(q.blockSize) || q.blockSize < 16 || (q.blockSize & (q.blockSize - 1)) !== 0) {
      throw new RangeError(`expected a power of two >= 16 for the 4-bit block size, got ${String(q.blockSize)}`);
    }
    if (q.accuracyLevel !== undefined && ![0, 1, 2, 3, 4].includes(q.accuracyLevel)) {
      throw new RangeError(`expected accuracy_level 0..4, got ${String(q.accuracyLevel)}`);
    }
  } else if (q.bits !== 8) {
    throw new TypeError(`expected 4 or 8 quantization bits, got ${String((q as { bits: unknown }).bits)}`);
  }
}

/** std::round: half away from zero. */
function roundAway(v: number): number {
  return Math.sign(v) * Math.round(Math.abs(v));
}

/** numpy.rint: half to even. */
function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

export interface Blockwise4 {
  /** [N, nBlocks, blockSize / 2] */
  packed: Uint8Array;
  /** [N * nBlocks]; fp32 values (already rounded to fp16 when halfScales). */
  scales: Float32Array;
  /** [N * ceil(nBlocks / 2)], absent when symmetric. */
  zeroPoints?: Uint8Array;
  nBlocks: number;
}

/** Block-wise 4-bit quantization of w ([K, N] row-major, as MatMul's B) for MatMulNBits. */
export function quantize4(w: Float32Array, K: number, N: number, q: Q4Spec, halfScales = false): Blockwise4 {
  const bs = q.blockSize;
  const nBlocks = Math.ceil(K / bs);
  const blob = bs / 2;
  const zpStride = Math.ceil(nBlocks / 2);
  const packed = new Uint8Array(N * nBlocks * blob);
  const scales = new Float32Array(N * nBlocks);
  const zeroPoints = q.zeroPoints ? new Uint8Array(N * zpStride) : undefined;
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < nBlocks; b++) {
      const k0 = b * bs;
      const k1 = Math.min(K, k0 + bs);
      let mn = 0;
      let mx = 0;
      let big = 0;
      for (let k = k0; k < k1; k++) {
        const v = w[k * N + n]!;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
        if (Math.abs(v) > Math.abs(big)) big = v;
      }
      let scale = q.zeroPoints ? (mx - mn) / 15 : big / -8;
      scale = halfScales ? fromHalfBits(toHalfBits(scale)) : Math.fround(scale);
      const recip = scale !== 0 ? 1 / scale : 0;
      const zp = q.zeroPoints ? clamp(roundAway(-mn * recip), 0, 15) : 8;
      scales[n * nBlocks + b] = scale;
      if (zeroPoints) zeroPoints[n * zpStride + (b >> 1)]! |= zp << ((b & 1) * 4);
      const base = (n * nBlocks + b) * blob;
      for (let k = k0; k < k1; k++) {
        const j = k - k0;
        const v = clamp(roundAway(w[k * N + n]! * recip + zp), 0, 15);
        packed[base + (j >> 1)]! |= v << ((j & 1) * 4);
      }
      // Padding past K quantizes 0: zp.
      for (let j = k1 - k0; j < bs; j++) packed[base + (j >> 1)]! |= zp << ((j & 1) * 4);
    }
  }
  return { packed, scales, ...(zeroPoints ? { zeroPoints } : {}), nBlocks };
}

/** The [K, N] weight MatMulNBits computes with: (q - zp) * scale. */
export function dequantize4(qw: Blockwise4, K: number, N: number, blockSize: number): Float32Array {
  const out = new Float32Array(K * N);
  const blob = blockSize / 2;
  const zpStride = Math.ceil(qw.nBlocks / 2);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const b = Math.floor(k / blockSize);
      const j = k - b * blockSize;
      const v = (qw.packed[(n * qw.nBlocks + b) * blob + (j >> 1)]! >> ((j & 1) * 4)) & 15;
      const zp = qw.zeroPoints ? (qw.zeroPoints[n * zpStride + (b >> 1)]! >> ((b & 1) * 4)) & 15 : 8;
      out[k * N + n] = (v - zp) * qw.scales[n * qw.nBlocks + b]!;
    }
  }
  return out;
}

export interface Linear8 {
  /** [K, N] */
  values: Int8Array | Uint8Array;
  /** [1] per tensor or [N] per column */
  scales: Float32Array;
  zeroPoints: Int8Array | Uint8Array;
}

/** 8-bit linear quantization of w ([rows, cols] row-major) per tensor or per column, as quantize_dynamic. */
export function quantize8(w: Float32Array, rows: number, cols: number, signed: boolean, perColumn: boolean): Linear8 {
  const groups = perColumn ? cols : 1;
  const values = signed ? new Int8Array(rows * cols) : new Uint8Array(rows * cols);
  const scales = new Float32Array(groups);
  const zeroPoints = signed ? new Int8Array(groups) : new Uint8Array(groups);
  const [qmin, qmax] = signed ? [-127, 127] : [0, 255];
  for (let c = 0; c < groups; c++) {
    let mn = 0;
    let mx = 0;
    for (let i = perColumn ? c : 0; i < w.length; i += perColumn ? cols : 1) {
      const v = w[i]!;
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    if (signed) {
      const absmax = Math.max(-mn, mx);
      mn = -absmax;
      mx = absmax;
    }
    let scale = Math.fround((mx - mn) / (qmax - qmin));
    let zp = signed ? 0 : clamp(roundEven(qmin - mn / scale), qmin, qmax);
    if (!(scale > 0)) {
      scale = 1;
      zp = 0;
    }
    scales[c] = scale;
    zeroPoints[c] = zp;
    for (let i = perColumn ? c : 0; i < w.length; i += perColumn ? cols : 1) {
      values[i] = clamp(roundEven(Math.fround(w[i]! / scale)) + zp, qmin, qmax);
    }
  }
  return { values, scales, zeroPoints };
}

/** The weight an 8-bit tensor stands for: (q - zp) * scale. */
export function dequantize8(q: Linear8, cols: number): Float32Array {
  const perColumn = q.scales.length > 1;
  return Float32Array.from(q.values, (v, i) => {
    const c = perColumn ? i % cols : 0;
    return (v - q.zeroPoints[c]!) * q.scales[c]!;
  });
}

/**
 * Emits the quantized form of `x @ w` (w: [K, N] fp32, the same draws as the float file's weight) and returns the
 * output's name (`output` when given). `half`: A and the output are fp16 (q4f16). `shared` caches each activation's
 * DynamicQuantizeLinear, as quantize_dynamic shares it among the MatMuls that read the same tensor.
 */
export function quantizedMatMul(
  g: GraphBuilder,
  x: string,
  name: string,
  w: Float32Array,
  K: number,
  N: number,
  q: QuantSpec,
  half: boolean,
  shared: Map<string, string[]>,
  output?: string,
): string {
  g.parameterCount += K * N;
  const outputs = output === undefined ? 1 : [output];
  if (q.bits === 4) {
    const qw = quantize4(w, K, N, q, half);
    const blob = q.blockSize / 2;
    const inputs = [
      x,
      g.initializer(`${name}_Q4`, DataType.UINT8, [N, qw.nBlocks, blob], qw.packed),
      half
        ? g.initializer(`${name}_scales`, DataType.FLOAT16, [N * qw.nBlocks], Uint16Array.from(qw.scales, toHalfBits))
        : g.initializer(`${name}_scales`, DataType.FLOAT, [N * qw.nBlocks], qw.scales),
    ];
    if (qw.zeroPoints) {
      inputs.push(g.initializer(`${name}_zero_points`, DataType.UINT8, [qw.zeroPoints.length], qw.zeroPoints));
    }
    const attrs = {
      K,
      N,
      bits: 4,
      block_size: q.blockSize,
      ...(q.accuracyLevel !== undefined ? { accuracy_level: q.accuracyLevel } : {}),
    };
    return g.node('MatMulNBits', inputs, attrs, outputs, 'com.microsoft')[0]!;
  }
  if (half) throw new RangeError('8-bit quantized MatMuls take fp32 activations');
  let xq = shared.get(x);
  if (!xq) {
    xq = g.node('DynamicQuantizeLinear', [x], {}, 3);
    shared.set(x, xq);
  }
  const qw = quantize8(w, K, N, q.signed, q.perChannel);
  const type = q.signed ? DataType.INT8 : DataType.UINT8;
  const dims = q.perChannel ? [N] : [];
  const wq = g.initializer(`${name}_quantized`, type, [K, N], qw.values);
  const ws = g.initializer(`${name}_scale`, DataType.FLOAT, dims, qw.scales);
  const wzp = g.initializer(`${name}_zero_point`, type, dims, qw.zeroPoints);
  const scale = g.op('Mul', [xq[1]!, ws]);
  const int32 = g.op('MatMulInteger', [xq[0]!, wq, xq[2]!, wzp]);
  return g.op('Mul', [g.op('Cast', [int32], { to: DataType.FLOAT }), scale], {}, output);
}

/** The embedding lookup over an 8-bit table ([V, H], per tensor): Gather, then DequantizeLinear to fp32. */
export function quantizedGather(
  g: GraphBuilder,
  name: string,
  table: Float32Array,
  V: number,
  H: number,
  signed: boolean,
  ids: string,
): string {
  g.parameterCount += V * H;
  const qt = quantize8(table, V, H, signed, false);
  const type = signed ? DataType.INT8 : DataType.UINT8;
  const data = g.initializer(`${name}_quantized`, type, [V, H], qt.values);
  const scale = g.initializer(`${name}_scale`, DataType.FLOAT, [], qt.scales);
  const zp = g.initializer(`${name}_zero_point`, type, [], qt.zeroPoints);
  return g.op('DequantizeLinear', [g.op('Gather', [data, ids], { axis: 0 }), scale, zp]);
}
