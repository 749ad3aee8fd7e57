/**
 * `tokmeter generate`: streams a completion to the terminal and prints its usage (stderr). With --ledger the run
 * goes through a Meter, so it is priced and recorded like a server request. Ctrl-C aborts the generation; the usage
 * of what was processed is still printed (and recorded).
 */
import type { Command } from 'commander';
import { Model } from '../model/index.js';
import { asMeterable, openLedger } from '../server/index.js';
import {
  Meter,
  PriceTable,
  formatPico,
  type MeterableChunk,
  type MeterablePromptInput,
  type Usage,
} from '../usage/index.js';
import { action, collect, deviceArg, intArg, numberArg, readStdin } from './util.js';

interface GenerateFlags {
  model: string;
  chat?: boolean;
  system?: string;
  maxTokens: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
  threads?: number;
  device?: 'cpu' | 'cuda';
  deviceId?: number;
  ledger?: string;
  prices?: string;
  key: string;
  json?: boolean;
}

function usageLine(u: Usage, finishReason: string): string {
  return (
    `usage: prompt ${u.promptTokens}, completion ${u.completionTokens}, total ${u.promptTokens + u.completionTokens}` +
    ` (cached ${u.cachedTokens}), finish ${finishReason}`
  );
}

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('generate text from a prompt (arguments or stdin), streamed to stdout; usage goes to stderr')
    .argument('[prompt...]', 'the prompt (default: read stdin)')
    .requiredOption('-m, --model <dir>', 'model folder')
    .option('--chat', "send the prompt as a user message through the model's chat template")
    .option('--system <text>', 'system message (with --chat)')
    .option('-n, --max-tokens <n>', 'most tokens to generate', intArg(1), 128)
    .option('-t, --temperature <x>', 'sampling temperature (0 = greedy)', numberArg(0, 100))
    .option('--top-p <x>', 'nucleus sampling', numberArg(Number.MIN_VALUE, 1))
    .option('--seed <n>', 'sampling seed', intArg(0))
    .option('--stop <text>', 'stop string (repeatable)', collect)
    .option('--threads <n>', 'ONNX Runtime threads', intArg(1, 1024))
    .option('--device <device>', "'cpu' (default) or 'cuda'", deviceArg)
    .option('--device-id <n>', 'CUDA device index (with --device cuda)', intArg(0, 1024))
    .option('--ledger <spec>', 'record the usage: sqlite:PATH or postgres://...')
    .option('--prices <file>', 'price table JSON (with --ledger; default: price 0)')
    .option('--key <tenant>', 'tenant the usage is recorded for (with --ledger)', 'cli')
    .option('--json', 'print one JSON object {text, finishReason, usage} instead of streaming')
    .action(
      action('generate', async (words: string[], f: GenerateFlags) => {
        if (f.system !== undefined && !f.chat) throw new Error('--system needs --chat');
        if (f.prices !== undefined && f.ledger === undefined) throw new Error('--prices needs --ledger');
        const text = words.length > 0 ? words.join(' ') : await readStdin();
        if (text === '') throw new Error('empty prompt: give it as arguments or on stdin');
        const input: MeterablePromptInput = f.chat
          ? {
              messages: [
                ...(f.system !== undefined ? [{ role: 'system', content: f.system }] : []),
                { role: 'user', content: text },
              ],
            }
          : text;
        const model = await Model.load(f.model, {
          device: f.device ?? 'cpu',
          ...(f.deviceId !== undefined ? { deviceId: f.deviceId } : {}),
          ...(f.threads !== undefined ? { threads: f.threads } : {}),
        });
        const ac = new AbortController();
        const onSigint = (): void => ac.abort();
        process.once('SIGINT', onSigint);
        let meter: Meter | undefined;
        try {
          const options = {
            maxNewTokens: f.maxTokens,
            signal: ac.signal,
            ...(f.temperature !== undefined ? { temperature: f.temperature } : {}),
            ...(f.topP !== undefined ? { topP: f.topP } : {}),
            ...(f.seed !== undefined ? { seed: f.seed } : {}),
            ...(f.stop ? { stop: f.stop } : {}),
          };
          let chunks: AsyncIterable<MeterableChunk>;
          let result: Promise<{ text: string; finishReason: string; usage: Usage; cost?: string }>;
          if (f.ledger !== undefined) {
            const prices =
              f.prices !== undefined
                ? PriceTable.fromFile(f.prices)
                : PriceTable.fromJSON({
                    version: 'unpriced',
                    models: { [model.name]: { inputPer1M: 0, outputPer1M: 0 } },
                  });
            meter = new Meter({
              prices,
              ledger: openLedger(f.ledger),
              cache: false,
              limits: { maxInputTokens: model.contextLength },
            });
            const run = meter.wrap(asMeterable(model)).generate(input, { ...options, key: f.key });
            chunks = run;
            result = run.result.then((r) => ({ ...r, cost: `${formatPico(r.record.cost)} ${r.record.currency}` }));
          } else {
            const run = asMeterable(model).generate(input, options);
            chunks = run;
            result = run.result;
          }
          if (!f.json) for await (const c of chunks) process.stdout.write(c.text);
          else for await (const _ of chunks);
          const r = await result;
          if (f.json) {
            process.stdout.write(
              `${JSON.stringify({ text: r.text, finishReason: r.finishReason, usage: r.usage, ...(r.cost ? { cost: r.cost } : {}) })}\n`,
            );
          } else {
            process.stdout.write('\n');
            process.stderr.write(`${usageLine(r.usage, r.finishReason)}${r.cost ? `, cost ${r.cost}` : ''}\n`);
          }
        } finally {
          process.off('SIGINT', onSigint);
          await meter?.close();
          await model.dispose();
        }
      }),
    );
}
