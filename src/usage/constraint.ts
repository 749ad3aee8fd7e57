/**
 * Constraint specs: what a structured generation must produce. The engine compiles a spec over the model's
 * vocabulary (native/grammar) and masks every token that would leave it, so a generation that finishes with 'stop'
 * is a complete document of the spec. The forms compose: JSON Schema, vLLM-style guided decoding (regex, choice) and
 * tool-call formats (sequence / any_of / repeat around JSON schemas) all go through one engine.
 */

/** A JSON Schema (the supported keywords and refusals: native/grammar/README.md). */
export type JsonSchema = boolean | { [keyword: string]: unknown };

export type ConstraintSpec =
  /** A JSON document valid under `schema`. */
  | { type: 'json_schema'; schema: JsonSchema; name?: string; strict?: boolean; description?: string }
  /** Any JSON value whose top level is an object. */
  | { type: 'json_object' }
  /** The whole output matches the ECMA-262 pattern (a subset: no lookaround or backreferences). */
  | { type: 'regex'; pattern: string }
  /** Exactly one of the strings. */
  | { type: 'choice'; choices: string[] }
  /** Exactly this text. */
  | { type: 'literal'; text: string }
  /** The specs one after another. */
  | { type: 'sequence'; items: ConstraintSpec[] }
  /** One of the specs. */
  | { type: 'any_of'; items: ConstraintSpec[] }
  /** `item` repeated min..max times (max absent: unbounded). */
  | { type: 'repeat'; item: ConstraintSpec; min?: number; max?: number };

const FIELDS: Record<ConstraintSpec['type'], readonly string[]> = {
  json_schema: ['type', 'schema', 'name', 'strict', 'description'],
  json_object: ['type'],
  regex: ['type', 'pattern'],
  choice: ['type', 'choices'],
  literal: ['type', 'text'],
  sequence: ['type', 'items'],
  any_of: ['type', 'items'],
  repeat: ['type', 'item', 'min', 'max'],
};

/**
 * The first structural problem of `value` as a ConstraintSpec: [path, message], or undefined. Only the shape is
 * checked here; the schema's and the pattern's contents are the engine's to judge (typed GrammarErrors).
 */
export function constraintProblem(value: unknown, path = '', depth = 0): [string, string] | undefined {
  if (depth > 64) return [path, 'is nested deeper than 64 levels'];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [path, 'must be an object'];
  const v = value as Record<string, unknown>;
  const type = v.type;
  if (typeof type !== 'string' || !(type in FIELDS)) {
    return [`${path}.type`, `must be one of ${Object.keys(FIELDS).join(', ')}`];
  }
  const t = type as ConstraintSpec['type'];
  const extra = Object.keys(v).find((k) => !FIELDS[t].includes(k));
  if (extra !== undefined) return [`${path}.${extra}`, `is not a field of a '${t}' constraint`];
  switch (t) {
    case 'json_schema':
      return typeof v.schema === 'boolean' ||
        (typeof v.schema === 'object' && v.schema !== null && !Array.isArray(v.schema))
        ? undefined
        : [`${path}.schema`, 'must be a JSON Schema (an object or a boolean)'];
    case 'json_object':
      return undefined;
    case 'regex':
      return typeof v.pattern === 'string' ? undefined : [`${path}.pattern`, 'must be a string'];
    case 'literal':
      return typeof v.text === 'string' ? undefined : [`${path}.text`, 'must be a string'];
    case 'choice':
      return Array.isArray(v.choices) && v.choices.length > 0 && v.choices.every((c) => typeof c === 'string')
        ? undefined
        : [`${path}.choices`, 'must be a non-empty array of strings'];
    case 'sequence':
    case 'any_of': {
      if (!Array.isArray(v.items) || v.items.length === 0) return [`${path}.items`, 'must be a non-empty array'];
      for (let i = 0; i < v.items.length; i++) {
        const p = constraintProblem(v.items[i], `${path}.items[${i}]`, depth + 1);
        if (p) return p;
      }
      return undefined;
    }
    case 'repeat': {
      for (const k of ['min', 'max'] as const) {
        const n = v[k];
        if (n !== undefined && (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > 10_000)) {
          return [`${path}.${k}`, 'must be an integer in [0, 10000]'];
        }
      }
      if (typeof v.min === 'number' && typeof v.max === 'number' && v.max < v.min)
        return [`${path}.max`, 'is below min'];
      return constraintProblem(v.item, `${path}.item`, depth + 1);
    }
  }
}
