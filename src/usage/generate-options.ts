/**
 * The generation options, one table: each option's type, bounds and the name the OpenAI-compatible HTTP API gives it
 * (OpenAI's own fields, and vLLM's top-level extras top_k, min_p and repetition_penalty). `Model.generate`, the
 * Meter and the server all check options against this table, each in its own words: the library names options as
 * `Model.generate` does ("expected a number in [0, 2] for temperature, got 3"), the HTTP API as the request does
 * ("... for 'temperature' ..."). The engine checks the same bounds (native/engine/logits/chain.cc for sampling,
 * native/engine/engine.h for maxNewTokens, highWaterMark and stop; the addon's conversions use them too):
 * test/model/options-bounds.test.ts feeds each bound, just inside and just outside, to the engine directly, to
 * `Model.generate` and to the server, and expects the same decision from all three.
 *
 * `topLogprobs` has no single HTTP field: chat's `top_logprobs` takes 0-20 and legacy completions' `logprobs` 0-5
 * (src/server/requests.ts), both within this table's bounds.
 *
 * Sampling options reach the engine as float32 (`float32: true`): a value is checked as the engine will hold it,
 * so a topP of 1e-50 (0 in float32) is refused here rather than by the engine.
 */
import { TokmeterTypeError } from '../errors.js';
import { constraintProblem } from './constraint.js';

export interface NumberOption {
  kind: 'number' | 'integer';
  /** The HTTP API's field; none for options the API does not expose. */
  http?: string;
  min: number;
  max: number;
  /** The lower bound itself is outside the range. */
  minExclusive?: boolean;
  /** Checked as the engine holds it: rounded to float32. */
  float32?: boolean;
  /** What the option does, and its neutral value. */
  doc: string;
}

export interface StringsOption {
  kind: 'strings';
  http?: string;
  /** Most strings; each must be non-empty. A single string counts as one. */
  maxItems: number;
  doc: string;
}

export interface TokenBiasOption {
  kind: 'tokenBias';
  http?: string;
  /** Bias bounds of each entry (token id → bias). */
  min: number;
  max: number;
  /** Whether the engine has this sampler; when not, only an empty map is accepted. */
  engine: boolean;
  doc: string;
}

/** A structured-output constraint (src/usage/constraint.ts); the engine judges the schema's contents. */
export interface ConstraintOption {
  kind: 'constraint';
  http?: string;
  doc: string;
}

export type OptionSpec = NumberOption | StringsOption | TokenBiasOption | ConstraintOption;

const INT32_MAX = 2 ** 31 - 1;

/** Every option that shapes what a generation produces, by the name `Model.generate` gives it. */
export const GENERATE_OPTIONS = {
  maxNewTokens: { kind: 'integer', http: 'max_tokens', min: 1, max: INT32_MAX, doc: 'most tokens to sample' },
  temperature: {
    kind: 'number',
    http: 'temperature',
    min: 0,
    max: 2,
    float32: true,
    doc: 'softmax temperature; 0 = greedy',
  },
  topP: {
    kind: 'number',
    http: 'top_p',
    min: 0,
    minExclusive: true,
    max: 1,
    float32: true,
    doc: 'nucleus sampling mass; 1 = off',
  },
  topK: { kind: 'integer', http: 'top_k', min: 0, max: INT32_MAX, doc: 'sample among the k most likely; 0 = off' },
  minP: {
    kind: 'number',
    http: 'min_p',
    min: 0,
    max: 1,
    float32: true,
    doc: 'drop tokens below minP x the top probability; 0 = off',
  },
  repetitionPenalty: {
    kind: 'number',
    http: 'repetition_penalty',
    min: 0,
    minExclusive: true,
    max: 100,
    float32: true,
    doc: 'divides the logits of tokens already in the prompt or output (HF rule); 1 = off',
  },
  presencePenalty: {
    kind: 'number',
    http: 'presence_penalty',
    min: -2,
    max: 2,
    float32: true,
    doc: 'subtracted once from the logit of every token already sampled (OpenAI rule); 0 = off',
  },
  frequencyPenalty: {
    kind: 'number',
    http: 'frequency_penalty',
    min: -2,
    max: 2,
    float32: true,
    doc: 'subtracted per occurrence from the logit of tokens already sampled (OpenAI rule); 0 = off',
  },
  logitBias: {
    kind: 'tokenBias',
    http: 'logit_bias',
    min: -100,
    max: 100,
    engine: true,
    doc: 'token id → bias added to its raw logit before the other samplers; -100 bans, +100 forces',
  },
  topLogprobs: {
    kind: 'integer',
    min: 0,
    max: 20,
    doc: "alternatives listed per token: the most likely under the model's raw distribution; 0 = none",
  },
  seed: {
    kind: 'integer',
    http: 'seed',
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    doc: 'makes sampling reproducible',
  },
  stop: { kind: 'strings', http: 'stop', maxItems: 16, doc: 'stop strings; the text ends before the first one' },
  constraint: {
    kind: 'constraint',
    doc: 'what the output must be (JSON Schema, JSON object, regex, choice, tool-call formats); masked token by token',
  },
  highWaterMark: {
    kind: 'integer',
    min: 1,
    max: 2 ** 30,
    doc: 'tokens the engine may compute ahead of the consumer (backpressure window)',
  },
} as const satisfies Record<string, OptionSpec>;

export type GenerateOptionName = keyof typeof GENERATE_OPTIONS;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a string of length ${v.length}` : JSON.stringify(v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** "in [0, 2]", "in (0, 1]", ">= 0". */
function range(o: NumberOption): string {
  if (o.max === Number.MAX_SAFE_INTEGER) return `${o.minExclusive ? '>' : '>='} ${o.min}`;
  return `in ${o.minExclusive ? '(' : '['}${o.min}, ${o.max}]`;
}

function inRange(o: NumberOption, v: number): boolean {
  const x = o.float32 ? Math.fround(v) : v;
  return (o.minExclusive ? x > o.min : x >= o.min) && x <= o.max;
}

/** A refusal: the message, and the field it is about (an element of a list or map gets its own path). */
export interface OptionProblem {
  /** Path under the option's name, e.g. '[1]' for the second stop string; '' for the option itself. */
  path: string;
  message: (field: string) => string;
  /** The value is well-formed but the engine does not have the feature. */
  unsupported?: boolean;
}

/** What is wrong with `value` for option `o`, or undefined when it is accepted. `undefined` is never checked. */
export function optionProblem(o: OptionSpec, value: unknown): OptionProblem | undefined {
  switch (o.kind) {
    case 'number':
    case 'integer': {
      const ok =
        typeof value === 'number' &&
        Number.isFinite(value) &&
        (o.kind === 'number' || Number.isSafeInteger(value)) &&
        inRange(o, value);
      if (ok) return undefined;
      const what = o.kind === 'integer' ? 'an integer' : 'a number';
      return { path: '', message: (f) => `expected ${what} ${range(o)} for ${f}, got ${describe(value)}` };
    }
    case 'strings': {
      const list = typeof value === 'string' ? [value] : value;
      if (!Array.isArray(list)) {
        return {
          path: '',
          message: (f) =>
            `expected a string or an array of up to ${o.maxItems} strings for ${f}, got ${describe(value)}`,
        };
      }
      if (list.length > o.maxItems) {
        return { path: '', message: (f) => `expected at most ${o.maxItems} strings for ${f}, got ${list.length}` };
      }
      const bad = list.findIndex((s) => typeof s !== 'string' || s === '');
      if (bad < 0) return undefined;
      return {
        path: `[${bad}]`,
        message: (f) => `expected a non-empty string for ${f}, got ${describe(list[bad])}`,
      };
    }
    case 'tokenBias': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return { path: '', message: (f) => `expected an object of token id → bias for ${f}, got ${describe(value)}` };
      }
      const entries = Object.entries(value as Record<string, unknown>);
      for (const [id, bias] of entries) {
        if (!/^(0|[1-9]\d{0,9})$/.test(id) || Number(id) > 0xffffffff) {
          return { path: '', message: (f) => `expected token ids as keys of ${f}, got ${describe(id)}` };
        }
        if (typeof bias !== 'number' || !Number.isFinite(bias) || bias < o.min || bias > o.max) {
          return {
            path: `.${id}`,
            message: (f) => `expected a number in [${o.min}, ${o.max}] for ${f}, got ${describe(bias)}`,
          };
        }
      }
      if (entries.length > 0 && !o.engine) {
        return { path: '', unsupported: true, message: (f) => `${f} is not supported by this engine (got a bias)` };
      }
      return undefined;
    }
    case 'constraint': {
      const p = constraintProblem(value);
      if (!p) return undefined;
      return { path: p[0], message: (f) => `${f} ${p[1]}` };
    }
  }
}

/**
 * Checks every option of the table that `options` gives (not undefined), in the library's words; other keys are
 * left to the caller. Throws TokmeterTypeError (ERR_INVALID_ARGUMENT).
 */
export function checkGenerateOptions(options: Readonly<Record<string, unknown>>): void {
  for (const name of Object.keys(GENERATE_OPTIONS) as GenerateOptionName[]) {
    const v = options[name];
    if (v === undefined) continue;
    const p = optionProblem(GENERATE_OPTIONS[name], v);
    if (p) throw new TokmeterTypeError(p.message(`${name}${p.path}`));
  }
}
