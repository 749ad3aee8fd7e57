/**
 * Decode-step overhead of a constrained generation against an unconstrained one, same model, same prompt, same
 * process, interleaved rounds (so load on a shared machine hits both alike).
 *
 *   npx tsx bench/structured/decode-overhead.ts [--model DIR] [--tokens 160] [--rounds 5] [--threads 1]
 *
 * --model defaults to the demo model (`make-model --size demo`: Llama 3's 128,256-token vocabulary), written to
 * .models/demo when missing. Each round runs the unconstrained generation and then each constraint spec, greedy, with
 * no EOS for the unconstrained one (so it always makes --tokens tokens). A decode step is measured two ways:
 *   - wall: the time between the first and the last streamed token over the tokens between them (what a client sees);
 *   - engine: the engine's own decode counters (the ONNX Runtime Run plus the gap to the next step, which holds the
 *     constraint's mask computation and its application to the logits).
 * The first round of a spec compiles it and fills its mask cache (cold); later rounds reuse the compiled grammar
 * (warm, what a server sees for a repeated schema). Prints a table and the ratios constrained / unconstrained, plus
 * the overhead outside Run: (constrained − unconstrained) engine time per step outside ONNX Runtime's Run, over the
 * unconstrained step. A constraint does not change what Run computes, and on a shared machine Run's own time swings
 * with the load, so that last column is the steadier measure of what the constraint adds.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Model, type ConstraintSpec } from '../../src/model/index.js';
import { makeModel } from '../../src/modelgen/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? (process.argv[i + 1] ?? fallback) : fallback;
}
const modelDir = path.resolve(arg('model', path.join(root, '.models', 'demo')));
const maxNewTokens = Number(arg('tokens', '160'));
const rounds = Number(arg('rounds', '5'));
const threads = Number(arg('threads', '1'));

if (!fs.existsSync(path.join(modelDir, 'config.json'))) {
  process.stderr.write(`writing the demo model to ${modelDir}\n`);
  await makeModel({ out: modelDir, size: 'demo' });
}

const specs: Array<{ name: string; spec: ConstraintSpec }> = [
  {
    name: 'schema: object of arrays of records',
    spec: {
      type: 'json_schema',
      schema: {
        type: 'object',
        properties: {
          items: {
            type: 'array',
            minItems: 30,
            items: {
              type: 'object',
              properties: {
                name: { type: 'string', maxLength: 40 },
                qty: { type: 'integer', minimum: 0, maximum: 1000 },
                tags: { type: 'array', items: { enum: ['a', 'b', 'c'] }, maxItems: 3 },
              },
              required: ['name', 'qty', 'tags'],
              additionalProperties: false,
            },
          },
        },
        required: ['items'],
      },
    },
  },
  {
    name: 'schema: 40+ free strings',
    spec: { type: 'json_schema', schema: { type: 'array', items: { type: 'string' }, minItems: 40 } },
  },
  { name: 'regex [a-z ]{1000}', spec: { type: 'regex', pattern: '[a-z ]{1000}' } },
];

const model = await Model.load(modelDir, { threads });
const prompt = { tokens: Array.from(model.tokenizer.encode('Write the inventory as JSON:')) };
const now = (): number => performance.now();

interface Step {
  tokens: number;
  wallMs: number; // per decode step
  engineMs: number; // per decode step
  runMs: number; // per decode step, inside ONNX Runtime's Run
}

async function once(constraint: ConstraintSpec | undefined): Promise<Step> {
  const before = model.timings();
  const times: number[] = [];
  const run = model.generate(prompt, {
    temperature: 0,
    maxNewTokens,
    highWaterMark: 1 << 20,
    ...(constraint ? { constraint } : { eosTokenIds: [] }),
  });
  for await (const chunk of run) {
    const t = now();
    for (let i = 0; i < chunk.tokens.length; i++) times.push(t);
  }
  await run.result;
  const after = model.timings();
  const steps = after.decodeForwards - before.decodeForwards;
  return {
    tokens: times.length,
    wallMs: (times[times.length - 1]! - times[0]!) / Math.max(1, times.length - 1),
    engineMs:
      (after.decodeForwardMs - before.decodeForwardMs + after.decodeGapMs - before.decodeGapMs) / Math.max(1, steps),
    runMs: (after.decodeRunMs - before.decodeRunMs) / Math.max(1, steps),
  };
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};

await once(undefined); // warm-up: ONNX Runtime's first Runs
const base: Step[] = [];
const cold = new Map<string, Step>();
const warm = new Map<string, Step[]>(specs.map((s) => [s.name, []]));
for (let r = 0; r < rounds; r++) {
  base.push(await once(undefined));
  for (const { name, spec } of specs) {
    const step = await once(spec);
    if (r === 0) cold.set(name, step);
    else warm.get(name)!.push(step);
  }
}

const b = {
  wall: median(base.map((s) => s.wallMs)),
  engine: median(base.map((s) => s.engineMs)),
  outside: median(base.map((s) => s.engineMs - s.runMs)),
};
const rows = [
  [
    'generation',
    'tokens',
    'wall ms/step',
    'engine ms/step',
    'in Run ms/step',
    'wall ratio',
    'engine ratio',
    'overhead outside Run',
  ],
  [
    'unconstrained',
    String(median(base.map((s) => s.tokens))),
    b.wall.toFixed(3),
    b.engine.toFixed(3),
    median(base.map((s) => s.runMs)).toFixed(3),
    '1.000',
    '1.000',
    '0.0%',
  ],
];
for (const { name } of specs) {
  for (const [label, steps] of [
    ['cold', [cold.get(name)!]],
    ['warm', warm.get(name)!],
  ] as const) {
    if (steps.length === 0) continue;
    const wall = median(steps.map((s) => s.wallMs));
    const engine = median(steps.map((s) => s.engineMs));
    rows.push([
      `${name} (${label})`,
      String(median(steps.map((s) => s.tokens))),
      wall.toFixed(3),
      engine.toFixed(3),
      median(steps.map((s) => s.runMs)).toFixed(3),
      (wall / b.wall).toFixed(3),
      (engine / b.engine).toFixed(3),
      `${((100 * (median(steps.map((s) => s.engineMs - s.runMs)) - b.outside)) / b.engine).toFixed(1)}%`,
    ]);
  }
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
process.stdout.write(
  `model ${path.basename(modelDir)} (${model.info.vocabSize} ids), ${threads} thread(s), ${rounds} rounds, ` +
    `up to ${maxNewTokens} new tokens; medians\n`,
);
for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('  ') + '\n');
await model.dispose();
