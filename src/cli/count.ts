/**
 * `tokmeter count`: exact token counts of files, globs or stdin, batched through Tokenizer.countBatch (native
 * threads, off the event loop), with a progress bar on large inputs. Prints `tokens<TAB>path` per file and a total
 * (or JSON with --json). Special tokens (e.g. BOS) are not counted unless --special is given.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { glob, isDynamicPattern } from 'tinyglobby';
import { Tokenizer } from '../tokenizer/index.js';
import { action, intArg, readStdin } from './util.js';

interface CountFlags {
  model?: string;
  tokenizer?: string;
  encoding?: string;
  special?: boolean;
  json?: boolean;
  progress?: boolean;
  batchFiles: number;
  threads?: number;
}

/** Inputs at or above either bound get a progress bar (when stderr is a terminal, or with --progress). */
export const PROGRESS_MIN_FILES = 200;
export const PROGRESS_MIN_BYTES = 8 * 1024 * 1024;
/** A batch holds at most this many bytes of text, whatever --batch-files says. */
const BATCH_MAX_BYTES = 16 * 1024 * 1024;

async function loadTokenizer(f: CountFlags): Promise<Tokenizer> {
  const given = [f.model, f.tokenizer, f.encoding].filter((x) => x !== undefined).length;
  if (given !== 1) throw new Error('give exactly one of --model DIR, --tokenizer FILE or --encoding NAME');
  if (f.model !== undefined) return Tokenizer.fromPretrained(f.model);
  if (f.tokenizer !== undefined) return Tokenizer.fromFile(f.tokenizer);
  return Tokenizer.fromTiktoken(f.encoding!);
}

/** Expands files and glob patterns (tinyglobby), keeping the order given and dropping duplicates. */
export async function expandInputs(inputs: string[]): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const p of inputs) {
    let files: string[];
    if (existsSync(p) && !isDynamicPattern(p)) {
      if (statSync(p).isDirectory()) throw new Error(`${p} is a directory; give a glob such as '${p}/**/*.md'`);
      files = [p];
    } else if (isDynamicPattern(p)) {
      // Absolute patterns give absolute paths, relative ones relative paths (as typed).
      files = (await glob(p, { onlyFiles: true, expandDirectories: false, absolute: path.isAbsolute(p) })).sort();
      if (files.length === 0) throw new Error(`no files match ${p}`);
    } else {
      throw new Error(`no such file: ${p}`);
    }
    for (const file of files) {
      const key = path.resolve(file);
      if (!seen.has(key)) {
        seen.add(key);
        out.push(file);
      }
    }
  }
  return out;
}

export function registerCount(program: Command): void {
  program
    .command('count')
    .description('count tokens of files, globs or stdin (- or nothing) exactly, in native batches')
    .argument('[inputs...]', "files or glob patterns (quote globs: 'docs/**/*.md'); '-' or none = stdin")
    .option('-m, --model <dir>', "a model folder's tokenizer (tokenizer.json + tokenizer_config.json)")
    .option('--tokenizer <file>', 'a tokenizer.json file')
    .option('--encoding <name>', 'a tiktoken encoding (o200k_base, cl100k_base, ...)')
    .option('--special', "add the tokenizer's special tokens (e.g. BOS) to each count")
    .option('--json', 'print JSON: {files: [{path, bytes, tokens}], total}')
    .option('--progress', 'always show the progress bar (default: on large inputs when stderr is a terminal)')
    .option('--no-progress', 'never show the progress bar')
    .option('--batch-files <n>', 'files per countBatch call', intArg(1, 100_000), 256)
    .option('--threads <n>', 'native counting threads (default: all cores)', intArg(1, 256))
    .action(
      action('count', async (inputs: string[], f: CountFlags) => {
        const tok = await loadTokenizer(f);
        try {
          const opts = {
            addSpecialTokens: f.special ?? false,
            ...(f.threads !== undefined ? { threads: f.threads } : {}),
          };
          const rows: { path: string; bytes: number; tokens: number }[] = [];
          const useStdin = inputs.length === 0 || (inputs.length === 1 && inputs[0] === '-');
          if (useStdin) {
            const text = await readStdin();
            const [n] = await tok.countBatch([text], opts);
            rows.push({ path: '-', bytes: Buffer.byteLength(text), tokens: n! });
          } else {
            if (inputs.includes('-')) throw new Error("'-' (stdin) cannot be mixed with files");
            const files = await expandInputs(inputs);
            const sizes = files.map((p) => statSync(p).size);
            const totalBytes = sizes.reduce((a, b) => a + b, 0);
            const large = files.length >= PROGRESS_MIN_FILES || totalBytes >= PROGRESS_MIN_BYTES;
            const showBar =
              f.progress === true ? true : f.progress === false ? false : large && process.stderr.isTTY === true;
            const bar = showBar
              ? new SingleBar(
                  {
                    stream: process.stderr,
                    format: 'counting {bar} {value}/{total} files | {tokens} tokens',
                    noTTYOutput: true,
                    notTTYSchedule: 1000,
                  },
                  Presets.shades_classic,
                )
              : undefined;
            let running = 0;
            bar?.start(files.length, 0, { tokens: 0 });
            for (let i = 0; i < files.length;) {
              let j = i;
              let bytes = 0;
              while (j < files.length && j - i < f.batchFiles && (j === i || bytes + sizes[j]! <= BATCH_MAX_BYTES))
                bytes += sizes[j++]!;
              const batch = files.slice(i, j);
              const texts = await Promise.all(batch.map((p) => readFile(p, 'utf8')));
              const counts = await tok.countBatch(texts, opts);
              batch.forEach((p, k) => {
                rows.push({ path: p, bytes: Buffer.byteLength(texts[k]!), tokens: counts[k]! });
                running += counts[k]!;
              });
              i = j;
              bar?.update(i, { tokens: running });
            }
            bar?.stop();
          }
          const total = rows.reduce(
            (a, r) => ({ files: a.files + 1, bytes: a.bytes + r.bytes, tokens: a.tokens + r.tokens }),
            { files: 0, bytes: 0, tokens: 0 },
          );
          if (f.json) {
            process.stdout.write(`${JSON.stringify({ files: rows, total })}\n`);
          } else {
            const lines = rows.map((r) => `${r.tokens}\t${r.path}`);
            if (rows.length > 1 || !useStdin) lines.push(`${total.tokens}\ttotal`);
            process.stdout.write(`${lines.join('\n')}\n`);
          }
        } finally {
          tok.dispose();
        }
      }),
    );
}
