/**
 * A NUL byte in a path argument: the operating system reads a C string only up to the NUL, so
 * "secret.txt\0.json" used to open secret.txt (and the tokenizer's error echoed its first bytes). Every public
 * function that takes a path refuses it with ERR_INVALID_ARGUMENT, and the native functions behind them refuse it
 * again when called directly.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Session } from '../../src/index.js';
import { Model } from '../../src/model/index.js';
import { ensureRuntime } from '../../src/runtime.js';
import { KeyStore } from '../../src/server/keys.js';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { tokenizerAddon } from '../../src/tokenizer/native.js';
import { PriceTable } from '../../src/usage/prices.js';
import { SqliteLedger } from '../../src/usage/sqlite-ledger.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tm-nul-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const secret = path.join(dir, 'secret.txt');
writeFileSync(secret, 'TOP-SECRET-CONTENT');
const hostile = `${secret}\u0000.json`;

function expectInvalid(fn: () => unknown): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(Error);
  expect((thrown as { code?: unknown }).code).toBe('ERR_INVALID_ARGUMENT');
  expect((thrown as Error).message).not.toContain('TOP-SECRET');
}

async function expectRejectsInvalid(p: Promise<unknown>): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  expect((err as { code?: unknown }).code).toBe('ERR_INVALID_ARGUMENT');
  expect((err as Error).message).toMatch(/NUL/);
  expect((err as Error).message).not.toContain('TOP-SECRET');
}

describe('a NUL byte in a path is refused', () => {
  it('by the tokenizer loaders', async () => {
    await expectRejectsInvalid(Tokenizer.fromFile(hostile));
    await expectRejectsInvalid(Tokenizer.fromPretrained(`${dir}\u0000/x`));
    await expectRejectsInvalid(Tokenizer.fromTiktoken(hostile));
  });

  it('by Model.load and Session.load', async () => {
    await expectRejectsInvalid(Model.load(`${dir}\u0000/model`));
    await expectRejectsInvalid(Session.load(hostile));
  });

  it('by the key, price and ledger files', () => {
    expectInvalid(() => KeyStore.fromFile(hostile));
    expectInvalid(() => PriceTable.fromFile(hostile));
    expectInvalid(() => new SqliteLedger(hostile));
    expectInvalid(() => new SqliteLedger(path.join(dir, 'usage.db'), { spoolDir: `${dir}\u0000x` }));
  });

  it('by the native functions themselves', () => {
    expectInvalid(() => tokenizerAddon().readFileBig(hostile));
    const { addon } = ensureRuntime();
    const native = addon as unknown as {
      createSession(source: unknown, options: unknown): Promise<unknown>;
      loadModel(options: unknown): Promise<unknown>;
    };
    expectInvalid(() => native.createSession(hostile, {}));
    expectInvalid(() => native.loadModel({ dir: `${dir}\u0000/m`, config: { contextLength: 8 } }));
  });
});
