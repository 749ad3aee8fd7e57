/**
 * bench/generate/profile.ts — where a decode step goes inside ONNX Runtime's Run, op by op, from ORT's own profiler
 * (the engine turns it on with TOKMETER_ORT_PROFILE, native/engine/README.md "ORT session knobs").
 *
 *   npx tsx bench/generate/profile.ts --dtype q4                      # .models/bench-q4 (made if missing)
 *   npx tsx bench/generate/profile.ts --dtype int8 --prompt 16 --steps 64 --threads 2
 *   TOKMETER_ORT_SESSION_CONFIG=session.intra_op.allow_spinning=0 npx tsx bench/generate/profile.ts --dtype q4
 *
 * Runs one greedy generation (a --prompt-token prompt, --steps decode steps), then reads the profile ORT writes when
 * the model is disposed: the last --steps `model_run` events are the decode steps, and every kernel event inside one
 * of them is charged to its op type. Prints per op type the mean µs per step and the share of the step's Run time,
 * the groups "weight matmuls" (MatMulNBits, MatMulInteger and its quantize / dequantize neighbours, a MatMul whose
 * second input is a 2-D weight), "attention" (the attention's activation MatMuls, Softmax, Where, the KV Concat and
 * Transpose) and the rest, and Run time not inside any kernel (the executor, thread-pool hand-offs). The weight
 * group's effective bandwidth (bytes read per step / its time) is set against a one-thread memcpy of the machine:
 * a kernel well under the memcpy figure is not memory-bound. Shares are robust to machine load; absolute µs are not.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Model } from '../../src/model/index.js';
import { MODEL_DTYPES, makeModel, type ModelDtype } from '../../src/modelgen/index.js';
import { EMBEDDING_ELEMENT_BYTES } from './shared.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    dtype: { type: 'string', default: 'q4' },
    threads: { type: 'string', default: '2' },
    prompt: { type: 'string', default: '16' },
    steps: { type: 'string', default: '64' },
  },
});
const dtype = values.dtype as ModelDtype;
if (!(MODEL_DTYPES as readonly string[]).includes(dtype)) throw new Error(`expected --dtype ${MODEL_DTYPES.join('|')}`);
const dir = path.resolve(values.model ?? (dtype === 'fp32' ? '.models/bench' : `.models/bench-${dtype}`));
const steps = Number(values.steps);
const promptLength = Number(values.prompt);
if (!existsSync(path.join(dir, 'config.json'))) {
  console.error(`making the bench model in ${dir} ...`);
  await makeModel({ size: 'bench', out: dir, dtypes: [dtype], log: (l) => console.error(l) });
}

interface TraceEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string; input_type_shape?: Record<string, number[]>[] };
}

const work = mkdtempSync(path.join(os.tmpdir(), 'tokmeter-profile-'));
try {
  process.env.TOKMETER_ORT_PROFILE = path.join(work, 'ort');
  const model = await Model.load(dir, { threads: Number(values.threads), dtype });
  delete process.env.TOKMETER_ORT_PROFILE;
  const fileBytes = model.info.fileBytes;
  const prompt = Array.from({ length: promptLength }, (_, i) => 1 + ((i * 37) % 1000));
  const greedy = { temperature: 0, eosTokenIds: [] as number[] };
  // steps + 1 new tokens: the first comes from the prefill, each later one from a decode step (the last token
  // sampled is never fed back).
  await model.generate({ tokens: prompt }, { ...greedy, maxNewTokens: steps + 1 }).result;
  await model.dispose(); // ORT writes the profile when the session ends
  const events = await readProfile(work);

  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
  if (runs.length < steps + 1)
    throw new Error(`expected at least ${steps + 1} Runs in the profile, got ${runs.length}`);
  const decode = runs.slice(-steps);
  const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time')).sort((a, b) => a.ts - b.ts);
  // Per node: its op type, its group and its time in each decode step.
  const nodes = new Map<string, { op: string; group: Group; us: number[] }>();
  const outside: number[] = []; // per step: Run time in no kernel
  let k = 0;
  for (const run of decode) {
    while (k < kernels.length && kernels[k]!.ts < run.ts) k++;
    let inKernels = 0;
    for (; k < kernels.length && kernels[k]!.ts <= run.ts + run.dur; k++) {
      const e = kernels[k]!;
      inKernels += e.dur;
      const op = e.args?.op_name ?? '?';
      const shapes = (e.args?.input_type_shape ?? []).map((s) => Object.values(s)[0] ?? []);
      const node = nodes.get(e.name) ?? { op, group: classify(op, shapes), us: [] };
      node.us.push(e.dur);
      nodes.set(e.name, node);
    }
    outside.push(run.dur - inKernels);
  }
  // Two views: the mean step, and the least-disturbed one (each node's fastest time over the steps, plus the least
  // Run time outside kernels of any step): on a machine shared with other jobs a preempted thread stretches whatever
  // kernel it was in, and the minimum is the usual benchmark answer to that. Shares of the second are what to read
  // under load.
  type View = { run: number; byOp: Map<string, number>; groups: Record<Group, number>; kernels: number };
  const view = (pick: (us: number[]) => number): View => {
    const v: View = { run: 0, byOp: new Map(), groups: { weights: 0, attention: 0, rest: 0 }, kernels: 0 };
    for (const n of nodes.values()) {
      const us = pick(n.us);
      v.byOp.set(n.op, (v.byOp.get(n.op) ?? 0) + us);
      v.groups[n.group] += us;
      v.kernels += us;
    }
    v.run = v.kernels + pick(outside);
    return v;
  };
  const mean = view((us) => us.reduce((a, b) => a + b, 0) / us.length);
  const least = view((us) => Math.min(...us));

  const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, number>;
  const stepBytes = fileBytes - config.vocab_size! * config.hidden_size! * EMBEDDING_ELEMENT_BYTES[dtype];
  const bandwidth = JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'bandwidth-child.ts')], {
      encoding: 'utf8',
    }),
  ) as { gbPerS: number };
  const gbPerS = (v: View): number => stepBytes / (v.groups.weights / 1e6) / 1e9;

  console.log(
    `\nbench/generate/profile — ${path.basename(dir)}, ${values.threads} threads, prompt ${promptLength}, ` +
      `${steps} decode steps, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(2)}` +
      (process.env.TOKMETER_ORT_SESSION_CONFIG ? `, session config ${process.env.TOKMETER_ORT_SESSION_CONFIG}` : ''),
  );
  console.log(
    `Run per decode step (ORT's model_run events): mean ${(mean.run / 1000).toFixed(3)} ms, least-disturbed ` +
      `${(least.run / 1000).toFixed(3)} ms (fastest Run ${(Math.min(...decode.map((r) => r.dur)) / 1000).toFixed(3)} ms)\n`,
  );
  console.log(`${nodes.size} kernels per decode step\n`);
  const cell = (v: View, us: number): string =>
    `${us.toFixed(0).padStart(7)} ${(((us / v.run) * 100).toFixed(1) + '%').padStart(6)}`;
  console.log('op type                    mean µs  share | least-disturbed µs  share');
  for (const [op, us] of [...least.byOp].sort((a, b) => b[1] - a[1]))
    console.log(`${op.padEnd(26)} ${cell(mean, mean.byOp.get(op)!)} | ${cell(least, us)}`);
  const line = (name: string, a: number, b: number): void =>
    console.log(`${name.padEnd(26)} ${cell(mean, a)} | ${cell(least, b)}`);
  console.log('\ngroup                      mean µs  share | least-disturbed µs  share');
  line('weight matmuls', mean.groups.weights, least.groups.weights);
  line('attention + KV concat', mean.groups.attention, least.groups.attention);
  line('rest (norms, rope, ...)', mean.groups.rest, least.groups.rest);
  line('outside kernels', mean.run - mean.kernels, least.run - least.kernels);
  console.log(
    `\nweight matmuls read ${(stepBytes / 2 ** 20).toFixed(1)} MiB per step: ${gbPerS(mean).toFixed(1)} GB/s ` +
      `effective (mean), ${gbPerS(least).toFixed(1)} GB/s (least-disturbed), vs ${bandwidth.gbPerS.toFixed(1)} GB/s ` +
      `one-thread memcpy (read + write) => ${((gbPerS(least) / bandwidth.gbPerS) * 100).toFixed(0)}% of the memcpy ` +
      `rate; a memory-bound kernel would be near it`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}

/**
 * The profile ORT writes as the session ends: the engine releases its session on its own thread after dispose()
 * resolves, so the file is read once it is complete (a JSON array), for up to five minutes.
 */
async function readProfile(folder: string): Promise<TraceEvent[]> {
  for (let waited = 0; waited < 300_000; waited += 200) {
    const file = readdirSync(folder).find((f) => f.endsWith('.json'));
    const text = file ? readFileSync(path.join(folder, file), 'utf8').trimEnd() : '';
    if (text.endsWith(']')) return JSON.parse(text) as TraceEvent[];
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`ORT wrote no complete profile under ${folder}`);
}

type Group = 'weights' | 'attention' | 'rest';

/** Which part of a decoder layer a kernel belongs to, from its op type and input shapes. */
function classify(op: string, shapes: number[][]): Group {
  if (
    op === 'MatMulNBits' ||
    op === 'MatMulInteger' ||
    op === 'DynamicQuantizeLinear' ||
    op === 'DynamicQuantizeMatMul' ||
    op === 'MatMulIntegerToFloat'
  )
    return 'weights';
  // A weight MatMul multiplies by a 2-D initializer; the attention's MatMuls multiply two activations (5-D here).
  if (op === 'MatMul' || op === 'FusedMatMul') return shapes[1]?.length === 2 ? 'weights' : 'attention';
  if (
    op === 'Softmax' ||
    op === 'Where' ||
    op === 'Concat' ||
    op === 'Transpose' ||
    op === 'MultiHeadAttention' ||
    op === 'GroupQueryAttention'
  )
    return 'attention';
  return 'rest';
}
