/**
 * An independent, naive Llama forward pass in plain TypeScript (loops over arrays), written from the HF
 * `modeling_llama.py` equations, not from the ONNX graph. It reads the weights out of a generated model.onnx by
 * their HF names, so a test can check that the graph computes RMSNorm, rotary embeddings (rotate_half), grouped-
 * query attention (query head h uses KV head floor(h / group)), SwiGLU and the LM head as Llama does.
 * Single sequence, no padding, positions 0..n-1.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHalfBits } from '../../src/modelgen/half.js';
import { decodeModel } from '../../src/modelgen/onnx-builder.js';

interface Cfg {
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  intermediate_size: number;
  vocab_size: number;
  rms_norm_eps: number;
  rope_theta: number;
}

/** Inline float32 / float16 initializers of a model file, as float32. */
export function loadWeights(file: string): Map<string, Float32Array> {
  const model = decodeModel(readFileSync(file));
  const weights = new Map<string, Float32Array>();
  for (const t of model.graph!.initializer!) {
    if (!t.name || !t.rawData || t.rawData.length === 0) continue;
    const copy = new Uint8Array(t.rawData.length);
    copy.set(t.rawData);
    if (t.dataType === 1) weights.set(t.name, new Float32Array(copy.buffer));
    if (t.dataType === 10) weights.set(t.name, Float32Array.from(new Uint16Array(copy.buffer), fromHalfBits));
  }
  return weights;
}

/** Logits [n, vocab] for one token sequence. */
export function referenceForward(dir: string, ids: number[], fileName = 'model.onnx'): Float32Array[] {
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Cfg;
  const w = loadWeights(join(dir, 'onnx', fileName));
  const get = (name: string): Float32Array => {
    const t = w.get(name);
    if (!t) throw new Error(`weight ${name} not found inline in model.onnx`);
    return t;
  };
  const H = cfg.hidden_size;
  const D = cfg.head_dim;
  const nH = cfg.num_attention_heads;
  const nKV = cfg.num_key_value_heads;
  const I = cfg.intermediate_size;

  // y[out] = sum_in x[in] * W[in, out]  (weights are stored [in, out])
  const matvec = (x: Float32Array, W: Float32Array, inDim: number, outDim: number): Float32Array => {
    const y = new Float64Array(outDim);
    for (let i = 0; i < inDim; i++) {
      const xi = x[i]!;
      const base = i * outDim;
      for (let o = 0; o < outDim; o++) y[o]! += xi * W[base + o]!;
    }
    return Float32Array.from(y);
  };
  const rmsNorm = (x: Float32Array, weight: Float32Array): Float32Array => {
    let ss = 0;
    for (const v of x) ss += v * v;
    const inv = 1 / Math.sqrt(ss / x.length + cfg.rms_norm_eps);
    return x.map((v, i) => v * inv * weight[i]!);
  };
  const ropeAt = (vec: Float32Array, pos: number): Float32Array => {
    // HF: q * cos + rotate_half(q) * sin, emb = cat(freqs, freqs), rotate_half(x) = cat(-x2, x1)
    const out = new Float32Array(D);
    const half = D / 2;
    for (let i = 0; i < D; i++) {
      const f = pos / Math.pow(cfg.rope_theta, (2 * (i % half)) / D);
      const rotated = i < half ? -vec[i + half]! : vec[i - half]!;
      out[i] = vec[i]! * Math.cos(f) + rotated * Math.sin(f);
    }
    return out;
  };

  const emb = get('model.embed_tokens.weight');
  let xs = ids.map((id) => emb.slice(id * H, (id + 1) * H));
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const hs = xs.map((x) => rmsNorm(x, get(`${p}.input_layernorm.weight`)));
    const q = hs.map((h) => matvec(h, get(`${p}.self_attn.q_proj.weight`), H, nH * D));
    const k = hs.map((h) => matvec(h, get(`${p}.self_attn.k_proj.weight`), H, nKV * D));
    const v = hs.map((h) => matvec(h, get(`${p}.self_attn.v_proj.weight`), H, nKV * D));
    const qr = q.map((vec, t) => Array.from({ length: nH }, (_, h) => ropeAt(vec.subarray(h * D, (h + 1) * D), t)));
    const kr = k.map((vec, t) => Array.from({ length: nKV }, (_, h) => ropeAt(vec.subarray(h * D, (h + 1) * D), t)));
    const group = nH / nKV;
    const attn = xs.map((_, t) => {
      const out = new Float32Array(nH * D);
      for (let h = 0; h < nH; h++) {
        const kvh = Math.floor(h / group);
        const scores: number[] = [];
        for (let j = 0; j <= t; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += qr[t]![h]![d]! * kr[j]![kvh]![d]!;
          scores.push(s / Math.sqrt(D));
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= t; j++) {
          for (let d = 0; d < D; d++) out[h * D + d]! += (e[j]! / z) * v[j]![kvh * D + d]!;
        }
      }
      return out;
    });
    xs = xs.map((x, t) => {
      const o = matvec(attn[t]!, get(`${p}.self_attn.o_proj.weight`), nH * D, H);
      return x.map((val, i) => val + o[i]!);
    });
    xs = xs.map((x) => {
      const h = rmsNorm(x, get(`${p}.post_attention_layernorm.weight`));
      const gate = matvec(h, get(`${p}.mlp.gate_proj.weight`), H, I);
      const up = matvec(h, get(`${p}.mlp.up_proj.weight`), H, I);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
      const down = matvec(act, get(`${p}.mlp.down_proj.weight`), I, H);
      return x.map((val, i) => val + down[i]!);
    });
  }
  return xs.map((x) => matvec(rmsNorm(x, get('model.norm.weight')), get('lm_head.weight'), H, cfg.vocab_size));
}
