/**
 * ORT session knobs from the environment (native/engine/README.md): TOKMETER_ORT_SESSION_CONFIG entries reach the
 * session (intra-op spinning is off by default and can be turned back on), a malformed or refused entry fails the
 * load with a typed error, and the same greedy tokens come out either way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/model/index.js';
import { makeTestModel, tempDir } from './helpers.js';

let root: { dir: string; cleanup: () => void };
let tiny: string;

beforeAll(async () => {
  root = tempDir('knobs');
  tiny = await makeTestModel(root.dir, 'tiny');
});
afterAll(() => root?.cleanup());

async function greedyWith(config: string | undefined): Promise<number[]> {
  const before = process.env.TOKMETER_ORT_SESSION_CONFIG;
  if (config === undefined) delete process.env.TOKMETER_ORT_SESSION_CONFIG;
  else process.env.TOKMETER_ORT_SESSION_CONFIG = config;
  try {
    const model = await Model.load(tiny, { threads: 2 });
    try {
      const r = await model.generate('Hello world', { maxNewTokens: 12, temperature: 0, eosTokenIds: [] }).result;
      return Array.from(r.tokens);
    } finally {
      await model.dispose();
    }
  } finally {
    if (before === undefined) delete process.env.TOKMETER_ORT_SESSION_CONFIG;
    else process.env.TOKMETER_ORT_SESSION_CONFIG = before;
  }
}

describe('TOKMETER_ORT_SESSION_CONFIG', () => {
  it('spinning on, off or left at the default: the same greedy tokens', async () => {
    const base = await greedyWith(undefined);
    expect(base.length).toBe(12);
    expect(await greedyWith('session.intra_op.allow_spinning=1')).toEqual(base);
    expect(await greedyWith('session.intra_op.allow_spinning=0;;session.inter_op.allow_spinning=0')).toEqual(base);
  });

  it('a malformed entry fails the load with ERR_INVALID_ARGUMENT naming the variable', async () => {
    for (const config of ['allow_spinning', '=1']) {
      const err = await greedyWith(config).then(
        () => null,
        (e: Error & { code?: string }) => e,
      );
      expect(err?.code).toBe('ERR_INVALID_ARGUMENT');
      expect(err?.message).toMatch(/TOKMETER_ORT_SESSION_CONFIG/);
    }
  });
});
