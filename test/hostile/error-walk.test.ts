/**
 * Walks the public API's error paths with bad arguments (wrong types, out-of-range numbers, unknown options, use after
 * dispose, hostile files) and checks that every error thrown or rejected is one of tokmeter's, with a string `code`:
 * callers branch on codes, never on messages.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lenmlFile } from '../../scripts/tokenizer-parity.js';
import {
  Meter,
  Model,
  PriceTable,
  Session,
  SqliteLedger,
  Tokenizer,
  TokmeterError,
  TokmeterTypeError,
  formatPico,
  parsePico,
  requireCuda,
  tensor,
  validateRecord,
} from '../../src/index.js';
import { KeyStore, parseKeysFile } from '../../src/server/index.js';
import { makeTestModel, tempDir } from '../model/helpers.js';

let root: { dir: string; cleanup: () => void };
let modelDir: string;
let model: Model;
let tokenizer: Tokenizer;
let session: Session;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'tm-walk-'));

beforeAll(async () => {
  root = tempDir('walk');
  modelDir = await makeTestModel(root.dir, 'm', { layers: 1, hidden: 64, heads: 2, intermediate: 128 });
  model = await Model.load(modelDir, { threads: 1 });
  tokenizer = await Tokenizer.fromFile(lenmlFile('gpt2'));
  session = await Session.load(path.join(modelDir, 'onnx', 'model.onnx'), { intraOpThreads: 1 });
});
afterAll(async () => {
  await model?.dispose();
  tokenizer?.dispose();
  await session?.close();
  root?.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

/** Runs `fn`; it must throw or reject, with a tokmeter error carrying a string code. */
async function expectCoded(label: string, fn: () => unknown): Promise<void> {
  let err: unknown;
  let threw = false;
  try {
    await fn();
  } catch (e) {
    err = e;
    threw = true;
  }
  expect(threw, `${label}: expected an error`).toBe(true);
  const coded = err instanceof TokmeterError || err instanceof TokmeterTypeError;
  expect(coded, `${label}: ${String(err)} is not a tokmeter error`).toBe(true);
  expect(typeof (err as { code?: unknown }).code, `${label}: no string code on ${String(err)}`).toBe('string');
}

const any = (v: unknown): never => v as never;
const file = (name: string, text: string): string => {
  const f = path.join(scratch, name);
  writeFileSync(f, text);
  return f;
};

describe('every error of the public API has a code', () => {
  it('Tokenizer', async () => {
    const cases: [string, () => unknown][] = [
      ['fromFile(42)', () => Tokenizer.fromFile(any(42))],
      ['fromFile(missing)', () => Tokenizer.fromFile(path.join(scratch, 'missing.json'))],
      ['fromFile(not JSON)', () => Tokenizer.fromFile(file('bad.json', '{'))],
      ['fromFile(NUL)', () => Tokenizer.fromFile('/etc/hostname\0.json')],
      ['fromPretrained(missing)', () => Tokenizer.fromPretrained(path.join(scratch, 'nope'))],
      ['fromPretrained(null)', () => Tokenizer.fromPretrained(any(null))],
      ['fromJSON(42)', () => Tokenizer.fromJSON(42)],
      ['fromJSON(null)', () => Tokenizer.fromJSON(null)],
      ['fromJSON([])', () => Tokenizer.fromJSON([])],
      ['fromJSON("{")', () => Tokenizer.fromJSON('{')],
      ['fromJSON(unknown model)', () => Tokenizer.fromJSON({ model: { type: 'Nope' } })],
      ['fromJSON(deep)', () => Tokenizer.fromJSON(JSON.parse(`${'['.repeat(20000)}${']'.repeat(20000)}`))],
      ['fromTiktoken(unknown)', () => Tokenizer.fromTiktoken('no-such-encoding')],
      ['fromTiktoken(42)', () => Tokenizer.fromTiktoken(any(42))],
      ['encode(42)', () => tokenizer.encode(any(42))],
      ['encode(opts 42)', () => tokenizer.encode('x', any(42))],
      ['encode(addSpecialTokens "yes")', () => tokenizer.encode('x', any({ addSpecialTokens: 'yes' }))],
      ['count(null)', () => tokenizer.count(any(null))],
      ['decode("x")', () => tokenizer.decode(any('x'))],
      ['decode([-1])', () => tokenizer.decode([-1])],
      ['decode([1e9])', () => tokenizer.decode([1e9])],
      ['decode([1.5])', () => tokenizer.decode([1.5])],
      ['encodeBatch("x")', () => tokenizer.encodeBatch(any('x'))],
      ['countBatch([1])', () => tokenizer.countBatch(any([1]))],
      ['countBatch(threads 0)', () => tokenizer.countBatch(['x'], any({ threads: 0 }))],
      ['decodeStream().step(-1)', () => tokenizer.decodeStream().step(-1)],
      ['decodeStream().step(1e9)', () => tokenizer.decodeStream().step(1e9)],
      ['tokenToId(42)', () => tokenizer.tokenToId(any(42))],
      ['applyChatTemplate(no template)', () => tokenizer.applyChatTemplate([{ role: 'user', content: 'x' }])],
      ['applyChatTemplate(42)', () => tokenizer.applyChatTemplate(any(42))],
    ];
    for (const [label, fn] of cases) await expectCoded(`Tokenizer.${label}`, fn);
    const t = await Tokenizer.fromFile(lenmlFile('gpt2'));
    t.dispose();
    for (const [label, fn] of [
      ['encode', () => t.encode('x')],
      ['count', () => t.count('x')],
      ['decode', () => t.decode([1])],
      ['countBatch', () => t.countBatch(['x'])],
      ['idToToken', () => t.idToToken(1)],
    ] as [string, () => unknown][])
      await expectCoded(`disposed Tokenizer.${label}`, fn);
  });

  it('Model and Generation', async () => {
    const cases: [string, () => unknown][] = [
      ['load(42)', () => Model.load(any(42))],
      ['load(missing)', () => Model.load(path.join(scratch, 'no-model'))],
      ['load(NUL)', () => Model.load(`${modelDir}\0x`)],
      ['load(unknown option)', () => Model.load(modelDir, any({ nope: 1 }))],
      ['load(threads 0)', () => Model.load(modelDir, { threads: 0 })],
      ['load(dtype)', () => Model.load(modelDir, any({ dtype: 'fp64' }))],
      ['load(device)', () => Model.load(modelDir, any({ device: 'tpu' }))],
      ['load(deviceId without cuda)', () => Model.load(modelDir, { deviceId: 1 })],
      ['load(maxBatch 0)', () => Model.load(modelDir, { maxBatch: 0 })],
      ['load(kvCacheBytes -1)', () => Model.load(modelDir, { kvCacheBytes: -1 })],
      ['generate(42)', () => model.generate(any(42))],
      ['generate(tokens [])', () => model.generate({ tokens: [] })],
      ['generate(tokens [-1])', () => model.generate({ tokens: [-1] })],
      ['generate(tokens [1e9])', () => model.generate({ tokens: [1e9] })],
      ['generate(messages 42)', () => model.generate(any({ messages: 42 }))],
      ['generate(unknown option)', () => model.generate('x', any({ nope: 1 }))],
      ['generate(temperature -1)', () => model.generate('x', { temperature: -1 })],
      ['generate(topP 2)', () => model.generate('x', { topP: 2 })],
      ['generate(topK 1.5)', () => model.generate('x', { topK: 1.5 })],
      ['generate(maxNewTokens 0)', () => model.generate('x', { maxNewTokens: 0 })],
      ['generate(stop [""])', () => model.generate('x', { stop: [''] })],
      ['generate(signal 42)', () => model.generate('x', any({ signal: 42 }))],
      ['generate(eosTokenIds "x")', () => model.generate('x', any({ eosTokenIds: 'x' }))],
      ['generate(seed -1)', () => model.generate('x', { seed: -1 })],
      ['generate(too long)', () => model.generate({ tokens: new Uint32Array(model.contextLength + 1).fill(1) })],
      ['encodePrompt(null)', () => model.encodePrompt(any(null))],
      ['countPrompt({})', () => model.countPrompt(any({}))],
    ];
    for (const [label, fn] of cases) await expectCoded(`Model.${label}`, fn);
    const run = model.generate('Hello', { maxNewTokens: 1, temperature: 0 });
    for await (const c of run) void c;
    await expectCoded('Generation iterated twice', () => run[Symbol.asyncIterator]());
    const other = await Model.load(modelDir, { threads: 1 });
    await other.dispose();
    for (const [label, fn] of [
      ['generate', () => other.generate('x')],
      ['stats', () => other.stats()],
      ['timings', () => other.timings()],
      ['countPrompt', () => other.countPrompt('x')],
    ] as [string, () => unknown][])
      await expectCoded(`disposed Model.${label}`, fn);
  });

  it('Session and tensor', async () => {
    const cases: [string, () => unknown][] = [
      ['Session.load(42)', () => Session.load(any(42))],
      ['Session.load(missing)', () => Session.load(path.join(scratch, 'missing.onnx'))],
      ['Session.load(garbage bytes)', () => Session.load(new Uint8Array([1, 2, 3]))],
      ['Session.load(unknown option)', () => Session.load(new Uint8Array([1]), any({ nope: 1 }))],
      ['tensor(bad type)', () => tensor(any('complex'), any(new Float32Array(1)), [1])],
      ['tensor(bad dims)', () => tensor('float32', new Float32Array(2), [3])],
      ['tensor(negative dim)', () => tensor('float32', new Float32Array(0), [-1])],
      ['run(42)', () => session.run(any(42))],
      ['run(unknown input)', () => session.run({ nope: tensor('float32', new Float32Array(1), [1]) })],
      ['run({})', () => session.run({})],
    ];
    for (const [label, fn] of cases) await expectCoded(label, fn);
  });

  it('metering, keys and prices', async () => {
    const cases: [string, () => unknown][] = [
      ['PriceTable.fromFile(missing)', () => PriceTable.fromFile(path.join(scratch, 'no-prices.json'))],
      ['PriceTable.fromFile(not JSON)', () => PriceTable.fromFile(file('p.json', '{'))],
      ['PriceTable.fromFile(42)', () => PriceTable.fromFile(any(42))],
      ['KeyStore.fromFile(missing)', () => KeyStore.fromFile(path.join(scratch, 'no-keys.json'))],
      ['KeyStore.fromFile(42)', () => KeyStore.fromFile(any(42))],
      ['parseKeysFile(42)', () => parseKeysFile(42)],
      ['parsePico("x")', () => parsePico('x', 'price')],
      ['parsePico(-1)', () => parsePico(any({}), 'price')],
      ['formatPico(1)', () => formatPico(any(1))],
      ['validateRecord(42)', () => validateRecord(42)],
      ['validateRecord({})', () => validateRecord({})],
      ['new Meter(42)', () => new Meter(any(42))],
      ['new SqliteLedger(42)', () => new SqliteLedger(any(42))],
      ['new SqliteLedger(NUL)', () => new SqliteLedger('/tmp/x\0y.db')],
      ['requireCuda({deviceId: -1})', () => requireCuda({ deviceId: -1 })],
    ];
    for (const [label, fn] of cases) await expectCoded(label, fn);
  });
});
