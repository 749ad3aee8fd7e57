/**
 * Reads a model folder's config.json and generation_config.json into the plain numbers the engine needs
 * (NativeModelConfig). Decision: JSON is parsed here, not in C++ — TypeScript already has a parser and reports
 * field errors precisely; the engine cross-checks every number against the ONNX graph (native/engine/graph_spec.h).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelLoadError } from '../errors.js';
import type { NativeModelConfig } from '../native/model-contract.js';

/**
 * Sampling defaults from generation_config.json, applied by generate() to the options the caller leaves out (as
 * transformers.js does). Only read when `do_sample` is present: true → sample with these temperature/top_p/top_k;
 * false → greedy. Decision: a file without `do_sample` keeps tokmeter's own defaults (temperature 1, no top-k/top-p),
 * where transformers.js would decode greedily — changing the default of every such folder is not this file's call.
 */
export interface SamplingDefaults {
  doSample: boolean;
  temperature?: number;
  topP?: number;
  topK?: number;
}

export interface ModelFolderConfig {
  native: NativeModelConfig;
  /** `_name_or_path` from config.json, else the folder name. */
  name: string;
  bosTokenId?: number;
  sampling?: SamplingDefaults;
}

async function readJson(file: string, required: boolean): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelLoadError('ERR_MODEL_NOT_FOUND', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ModelLoadError('ERR_MODEL_INVALID', `${file} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ModelLoadError('ERR_MODEL_INVALID', `${file}: expected a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * Ceilings of config.json's numbers: far above any real model, low enough that no product of them (KV bytes per
 * token x context length) overflows or sizes a budget in terabytes before the graph is even read.
 */
export const CONFIG_LIMITS = {
  contextLength: 2 ** 24,
  layers: 2 ** 12,
  heads: 2 ** 12,
  headDim: 2 ** 14,
  hidden: 2 ** 18,
  vocabSize: 2 ** 31 - 1,
  /** Token ids (eos_token_id, bos_token_id) are below this. */
  tokenId: 2 ** 31,
} as const;

function int(
  file: string,
  obj: Record<string, unknown>,
  keys: string[],
  min = 0,
  max: number = Number.MAX_SAFE_INTEGER,
): number | undefined {
  for (const key of keys) {
    const v = obj[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new ModelLoadError(
        'ERR_MODEL_INVALID',
        `${file}: expected an integer in [${min}, ${max}] for ${key}, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  }
  return undefined;
}

function ids(file: string, key: string, v: unknown): number[] | undefined {
  if (v === undefined || v === null) return undefined;
  const list = Array.isArray(v) ? v : [v];
  if (list.length > 1024) {
    throw new ModelLoadError('ERR_MODEL_INVALID', `${file}: expected at most 1024 ids for ${key}, got ${list.length}`);
  }
  for (const id of list) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= CONFIG_LIMITS.tokenId) {
      throw new ModelLoadError(
        'ERR_MODEL_INVALID',
        `${file}: expected a token id (an integer in [0, ${CONFIG_LIMITS.tokenId - 1}]) or a list of them for ` +
          `${key}, got ${JSON.stringify(id)}`,
      );
    }
  }
  return list as number[];
}

function num(file: string, obj: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new ModelLoadError(
      'ERR_MODEL_INVALID',
      `${file}: expected a number in [${min}, ${max}] for ${key}, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function samplingDefaults(file: string, gen: Record<string, unknown>): SamplingDefaults | undefined {
  const doSample = gen.do_sample;
  if (doSample === undefined || doSample === null) return undefined;
  if (typeof doSample !== 'boolean') {
    throw new ModelLoadError(
      'ERR_MODEL_INVALID',
      `${file}: expected a boolean for do_sample, got ${JSON.stringify(doSample)}`,
    );
  }
  const out: SamplingDefaults = { doSample };
  const temperature = num(file, gen, 'temperature', 0, 100);
  const topP = num(file, gen, 'top_p', 0, 1);
  const topK = int(file, gen, ['top_k'], 0, 2 ** 31 - 1);
  if (temperature !== undefined) out.temperature = temperature;
  if (topP !== undefined && topP > 0) out.topP = topP;
  if (topK !== undefined) out.topK = topK;
  return out;
}

export async function readModelConfig(dir: string): Promise<ModelFolderConfig> {
  const configFile = path.join(dir, 'config.json');
  const config = (await readJson(configFile, true))!;
  const genFile = path.join(dir, 'generation_config.json');
  const gen = (await readJson(genFile, false)) ?? {};
  const L = CONFIG_LIMITS;
  const heads = int(configFile, config, ['num_attention_heads', 'n_head'], 1, L.heads);
  const hidden = int(configFile, config, ['hidden_size', 'n_embd'], 1, L.hidden);
  const headDim = int(configFile, config, ['head_dim'], 1, L.headDim) ?? (heads && hidden ? hidden / heads : undefined);
  const contextLength = int(
    configFile,
    config,
    ['max_position_embeddings', 'n_positions', 'n_ctx', 'max_sequence_length'],
    1,
    L.contextLength,
  );
  if (!contextLength) {
    throw new ModelLoadError(
      'ERR_MODEL_INVALID',
      `${configFile}: no context length (max_position_embeddings or n_positions)`,
    );
  }
  // Both files are checked, though generation_config.json's ids win.
  const configEos = ids(configFile, 'eos_token_id', config.eos_token_id);
  const eos = ids(genFile, 'eos_token_id', gen.eos_token_id) ?? configEos ?? [];
  const native: NativeModelConfig = {
    modelType: typeof config.model_type === 'string' ? config.model_type : '',
    numLayers: int(configFile, config, ['num_hidden_layers', 'n_layer'], 1, L.layers) ?? 0,
    numKvHeads: int(configFile, config, ['num_key_value_heads'], 1, L.heads) ?? heads ?? 0,
    headDim: Number.isInteger(headDim) && (headDim as number) <= L.headDim ? (headDim as number) : 0,
    vocabSize: int(configFile, config, ['vocab_size'], 1, L.vocabSize) ?? 0,
    contextLength,
    eosTokenIds: eos,
  };
  const name =
    typeof config._name_or_path === 'string' && config._name_or_path
      ? config._name_or_path
      : path.basename(path.resolve(dir));
  const configBos = ids(configFile, 'bos_token_id', config.bos_token_id)?.[0];
  const bos = ids(genFile, 'bos_token_id', gen.bos_token_id)?.[0] ?? configBos;
  const sampling = samplingDefaults(genFile, gen);
  return { native, name, ...(bos !== undefined ? { bosTokenId: bos } : {}), ...(sampling ? { sampling } : {}) };
}
