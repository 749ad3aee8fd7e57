/**
 * `tokmeter make-model`: writes a seeded random-weight model folder (src/modelgen) for tests, demos, benchmarks.
 * Without --tokenizer, tiny and demo get Llama 3's tokenizer and chat template (so chat works against them, as in
 * the demo); bench keeps its size's tokenizer.
 */
import type { Command } from 'commander';
import {
  MODEL_DTYPES,
  SIZES,
  TOKENIZERS,
  makeModel,
  type MakeModelOptions,
  type ModelDtype,
  type SizeName,
  type TokenizerName,
} from '../modelgen/index.js';
import { action, intArg } from './util.js';

/** The tokenizer when --tokenizer is not given. */
const DEFAULT_TOKENIZER: Record<SizeName, TokenizerName> = { tiny: 'llama3', demo: 'llama3', bench: 'llama2' };

interface MakeFlags {
  out: string;
  size: string;
  seed?: number;
  force?: boolean;
  tokenizer?: string;
  context?: number;
  dtype?: string;
  dtypes?: string;
  q4BlockSize?: number;
  q4ZeroPoints?: boolean;
  quiet?: boolean;
}

export function registerMakeModel(program: Command): void {
  program
    .command('make-model')
    .description('write a random-weight Llama-style model folder (tiny: tests, demo: npm start, bench: benchmarks)')
    .requiredOption('-o, --out <dir>', 'output folder')
    .option('-s, --size <size>', SIZES.join(' | '), 'tiny')
    .option('--seed <n>', 'weights seed (same seed, same bytes)', intArg(0))
    .option('--force', 'replace an existing folder')
    .option(
      '--tokenizer <name>',
      `${TOKENIZERS.join(' | ')} (default: ${Object.entries(DEFAULT_TOKENIZER)
        .map(([size, t]) => `${t} for ${size}`)
        .join(', ')})`,
    )
    .option('--context <n>', 'context length (max_position_embeddings)', intArg(2))
    .option('--dtype <list>', `ONNX files to write: ${MODEL_DTYPES.join(',')} (comma-separated; default fp32)`)
    .option('--dtypes <list>', 'the same as --dtype')
    .option('--q4-block-size <n>', '4-bit files: values per quantization block (32 or 128; default 32)', intArg(16))
    .option('--q4-zero-points', '4-bit files: asymmetric blocks with zero points (default: symmetric)')
    .option('-q, --quiet', 'no progress lines')
    .action(
      action('make-model', async (f: MakeFlags) => {
        if (!(SIZES as readonly string[]).includes(f.size))
          throw new Error(`expected --size ${SIZES.join('|')}, got ${JSON.stringify(f.size)}`);
        if (f.tokenizer !== undefined && !(TOKENIZERS as readonly string[]).includes(f.tokenizer)) {
          throw new Error(`expected --tokenizer ${TOKENIZERS.join('|')}, got ${JSON.stringify(f.tokenizer)}`);
        }
        if (f.dtype !== undefined && f.dtypes !== undefined) throw new Error('pass --dtype or --dtypes, not both');
        const list = f.dtype ?? f.dtypes ?? 'fp32';
        const dtypes = list.split(',');
        for (const d of dtypes) {
          if (!(MODEL_DTYPES as readonly string[]).includes(d))
            throw new Error(`expected --dtype to list ${MODEL_DTYPES.join('|')}, got ${JSON.stringify(list)}`);
        }
        const opts: MakeModelOptions = {
          out: f.out,
          size: f.size as SizeName,
          force: f.force ?? false,
          dtypes: dtypes as ModelDtype[],
          ...(f.seed !== undefined ? { seed: f.seed } : {}),
          tokenizer: (f.tokenizer as TokenizerName | undefined) ?? DEFAULT_TOKENIZER[f.size as SizeName],
          ...(f.context !== undefined ? { context: f.context } : {}),
          ...(f.q4BlockSize !== undefined ? { q4BlockSize: f.q4BlockSize } : {}),
          ...(f.q4ZeroPoints ? { q4ZeroPoints: true } : {}),
          ...(f.quiet ? {} : { log: (line: string) => process.stderr.write(`${line}\n`) }),
        };
        await makeModel(opts);
        process.stdout.write(`${f.out}\n`);
      }),
    );
}
