/** The `scripts/make-tiny-model.ts` command line: flags, exit codes, refusing to overwrite, atomic replace. */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeModel } from '../../src/modelgen/onnx-builder.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const script = join(repo, 'scripts', 'make-tiny-model.ts');

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', script, ...args], { cwd: repo }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tokmeter-modelgen-cli-'));
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('make-tiny-model CLI', () => {
  it('writes a model, refuses to overwrite without --force, replaces with --force', async () => {
    const out = join(root, 'm');
    const args = [
      '--out',
      out,
      '--seed',
      '5',
      '--layers',
      '1',
      '--hidden',
      '32',
      '--heads',
      '4',
      '--kv-heads',
      '1',
      '--kv-dtype',
      'float16',
      '--no-position-ids',
    ];
    const first = await cli(args);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`wrote ${join(out, 'onnx', 'model.onnx')}`);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      num_hidden_layers: 1,
      hidden_size: 32,
      num_attention_heads: 4,
      num_key_value_heads: 1,
      head_dim: 8,
      tokmeter_modelgen: { seed: 5, kv_dtype: 'float16', position_ids: false, size: 'custom' },
    });
    const again = await cli(args);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists');
    const forced = await cli([...args, '--force']);
    expect(forced.code).toBe(0);
    // Nothing left behind next to the output (temp or old folders).
    expect(readdirSync(root)).toEqual(['m']);
  });

  it('--attention gqa writes GroupQueryAttention nodes; a bad value is a usage error', async () => {
    const out = join(root, 'gqa');
    const made = await cli(['--out', out, '--layers', '1', '--attention', 'gqa']);
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
    expect(made.stdout).toContain('GroupQueryAttention');
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.tokmeter_modelgen.attention).toBe('gqa');
    const model = decodeModel(readFileSync(join(out, 'onnx', 'model.onnx')));
    expect(
      model.graph!.node!.filter((n) => n.opType === 'GroupQueryAttention' && n.domain === 'com.microsoft'),
    ).toHaveLength(1);
    rmSync(out, { recursive: true });
    const bad = await cli(['--out', join(root, 'z'), '--attention', 'flash']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected --attention standard|gqa, got flash');
  });

  it('--compute fp16 makes model_fp16.onnx compute in fp16; it needs an fp16 file, a bad value is a usage error', async () => {
    const out = join(root, 'c16');
    const made = await cli(['--out', out, '--layers', '1', '--dtype', 'fp16', '--compute', 'fp16']);
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
    expect(made.stdout).toContain('computes in fp16');
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.tokmeter_modelgen.compute).toBe('fp16');
    rmSync(out, { recursive: true });
    const noFile = await cli(['--out', join(root, 'z'), '--compute', 'fp16']);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain('--compute fp16 applies to model_fp16.onnx');
    const bad = await cli(['--out', join(root, 'z'), '--dtype', 'fp16', '--compute', 'bf16']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected --compute fp32|fp16, got bf16');
  });

  it('--dtypes writes quantized files with the 4-bit and 8-bit options; a bad block size is an error', async () => {
    const out = join(root, 'quant');
    const args = ['--out', out, '--layers', '1', '--dtypes', 'q4,int8', '--q4-block-size', '128', '--q4-zero-points'];
    const made = await cli([...args, '--int8-per-channel']);
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
    expect(readdirSync(join(out, 'onnx')).sort()).toEqual(['model_int8.onnx', 'model_q4.onnx']);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.tokmeter_modelgen.quantization).toEqual({
      q4: { block_size: 128, zero_points: true },
      int8: { per_channel: true },
    });
    const q4 = decodeModel(readFileSync(join(out, 'onnx', 'model_q4.onnx')));
    const head = q4.graph!.node!.find((n) => n.output![0] === 'logits')!;
    expect(head.input).toHaveLength(4); // with zero points
    rmSync(out, { recursive: true });
    const bad = await cli(['--out', join(root, 'z'), '--dtypes', 'q4', '--q4-block-size', '48']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('power of two');
  });

  it('rejects bad flags with a usage message and exit code 2, and bad shapes with exit code 1', async () => {
    const badSize = await cli(['--out', join(root, 'x'), '--size', 'huge']);
    expect(badSize.code).toBe(2);
    expect(badSize.stderr).toContain('expected --size tiny|demo|bench, got huge');
    const badShape = await cli(['--out', join(root, 'y'), '--heads', '4', '--kv-heads', '3']);
    expect(badShape.code).toBe(1);
    expect(badShape.stderr).toContain('must be a multiple of numKvHeads');
    expect(existsSync(join(root, 'y'))).toBe(false);
    expect(readdirSync(root).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});
