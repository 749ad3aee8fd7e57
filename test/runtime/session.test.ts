import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClosedError,
  InvalidInputError,
  ModelLoadError,
  Session,
  tensor,
  versions,
  BUNDLED_ORT_VERSION,
} from '../../src/index.js';
import { addModel, busyModel, dtypesModel } from '../fixtures/session-models.js';

let dir: string;
let addPath: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-session-'));
  addPath = path.join(dir, 'add.onnx');
  fs.writeFileSync(addPath, addModel());
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<{ code: string; message: string; err: unknown }> {
  try {
    if (typeof p === 'function') p();
    else await p;
  } catch (err) {
    const e = err as Error & { code: string };
    return { code: e.code, message: e.message, err };
  }
  throw new Error('expected a failure');
}

describe('versions', () => {
  it('reports the addon, N-API and the loaded ONNX Runtime', () => {
    const v = versions();
    expect(v.tokmeter).toMatch(/^\d+\.\d+\.\d+/);
    expect(v.napi).toBeGreaterThanOrEqual(8);
    expect(v.onnxruntime).toBe(BUNDLED_ORT_VERSION);
    expect(v.onnxruntimePath).toMatch(/libtokmeter-ort\.so$/);
  });
});

describe('Session', () => {
  it('loads from a path, lists inputs and outputs, and runs', async () => {
    const s = await Session.load(addPath, { intraOpThreads: 1 });
    expect(s.inputs).toEqual([
      { name: 'a', type: 'float32', dims: ['batch', 3] },
      { name: 'b', type: 'float32', dims: ['batch', 3] },
    ]);
    expect(s.outputs).toEqual([{ name: 'sum', type: 'float32', dims: ['batch', 3] }]);
    const out = await s.run({
      a: tensor('float32', new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]),
      b: tensor('float32', new Float32Array([10, 20, 30, 40, 50, 60]), [2, 3]),
    });
    expect(out.sum!.dims).toEqual([2, 3]);
    expect(Array.from(out.sum!.data as Float32Array)).toEqual([11, 22, 33, 44, 55, 66]);
    await s.close();
  });

  it('loads from bytes', async () => {
    const s = await Session.load(addModel(), { interOpThreads: 1, graphOptimizationLevel: 'basic' });
    const out = await s.run({
      a: tensor('float32', new Float32Array([1, 1, 1]), [1, 3]),
      b: tensor('float32', new Float32Array([2, 2, 2]), [1, 3]),
    });
    expect(Array.from(out.sum!.data as Float32Array)).toEqual([3, 3, 3]);
    await s.close();
  });

  it('runs float16, int64, int32, bool and float32 tensors', async () => {
    const s = await Session.load(dtypesModel());
    // 1.5 and -2 as IEEE half: 0x3e00, 0xc000; doubled: 3 (0x4200) and -4 (0xc400)
    const out = await s.run({
      h: tensor('float16', new Uint16Array([0x3e00, 0xc000]), [2]),
      l: tensor('int64', new BigInt64Array([3n, -(2n ** 31n)]), [2]),
      i: tensor('int32', new Int32Array([7, -8]), [2]),
      flag: tensor('bool', new Uint8Array([1, 0]), [2]),
      f: tensor('float32', new Float32Array([-1.5, 2.5]), [2]),
    });
    expect(Array.from(out.h2!.data as Uint16Array)).toEqual([0x4200, 0xc400]);
    expect(Array.from(out.l2!.data as BigInt64Array)).toEqual([9n, 2n ** 62n]);
    expect(Array.from(out.i2!.data as Int32Array)).toEqual([14, -16]);
    expect(Array.from(out.notflag!.data as Uint8Array)).toEqual([0, 1]);
    expect(Array.from(out.relu!.data as Float32Array)).toEqual([0, 2.5]);
    const some = await s.run(
      {
        h: tensor('float16', new Uint16Array([0]), [1]),
        l: tensor('int64', new BigInt64Array([1n]), [1]),
        i: tensor('int32', new Int32Array([1]), [1]),
        flag: tensor('bool', new Uint8Array([0]), [1]),
        f: tensor('float32', new Float32Array([1]), [1]),
      },
      { outputs: ['relu'] },
    );
    expect(Object.keys(some)).toEqual(['relu']);
    await s.close();
  });

  it('accepts zero-length tensors', async () => {
    const s = await Session.load(addPath);
    const out = await s.run({
      a: tensor('float32', new Float32Array(0), [0, 3]),
      b: tensor('float32', new Float32Array(0), [0, 3]),
    });
    expect(out.sum!.dims).toEqual([0, 3]);
    await s.close();
  });

  it('runs concurrently without blocking the event loop', async () => {
    const s = await Session.load(busyModel(), { intraOpThreads: 1 });
    const x = new Float32Array(64 * 256).map((_, i) => i % 7);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const runs = await Promise.all([0, 1, 2, 3].map(() => s.run({ x: tensor('float32', x, [64, 256]) })));
    clearInterval(timer);
    for (const r of runs)
      expect(Array.from((r.y!.data as Float32Array).slice(0, 8))).toEqual(Array.from(x.slice(0, 8)));
    expect(ticks).toBeGreaterThan(0); // the JS thread kept turning while the runs computed
    await s.close();
  });
});

describe('Session errors', () => {
  it('a missing model file is ERR_MODEL_NOT_FOUND', async () => {
    const r = await codeOf(Session.load(path.join(dir, 'nope.onnx')));
    expect(r.code).toBe('ERR_MODEL_NOT_FOUND');
    expect(r.err).toBeInstanceOf(ModelLoadError);
    expect(r.message).toContain('nope.onnx');
  });

  it('a corrupt model file is ERR_MODEL_INVALID', async () => {
    const bad = path.join(dir, 'corrupt.onnx');
    fs.writeFileSync(bad, Buffer.from('this is not a protobuf model at all'));
    const r = await codeOf(Session.load(bad));
    expect(r.code).toBe('ERR_MODEL_INVALID');
    expect(r.err).toBeInstanceOf(ModelLoadError);
    const truncated = addModel().slice(0, 40);
    expect((await codeOf(Session.load(truncated))).code).toBe('ERR_MODEL_INVALID');
    expect((await codeOf(Session.load(new Uint8Array(0)))).code).toBe('ERR_MODEL_INVALID');
    expect((await codeOf(Session.load(dir))).code).toBe('ERR_MODEL_INVALID');
  });

  it('wrong argument types are TypeErrors with ERR_INVALID_ARGUMENT', async () => {
    for (const bad of [42, null, {}, new Float32Array(4)]) {
      const r = await codeOf(Session.load(bad as never));
      expect(r.code).toBe('ERR_INVALID_ARGUMENT');
      expect(r.err).toBeInstanceOf(TypeError);
    }
    const r = await codeOf(Session.load(addPath, { threads: 2 } as never));
    expect(r.message).toContain("unknown option 'threads'");
    const r2 = await codeOf(Session.load(addPath, { intraOpThreads: -1 }));
    expect(r2.message).toMatch(/intraOpThreads.*-1/);
  });

  it('unknown, missing and duplicate inputs; unknown outputs', async () => {
    const s = await Session.load(addPath);
    const a = tensor('float32', new Float32Array(3), [1, 3]);
    const unknown = await codeOf(s.run({ a, b: a, c: a }));
    expect(unknown.code).toBe('ERR_UNKNOWN_INPUT');
    expect(unknown.err).toBeInstanceOf(InvalidInputError);
    expect(unknown.message).toContain("'c'");
    const missing = await codeOf(s.run({ a }));
    expect(missing.code).toBe('ERR_MISSING_INPUT');
    expect(missing.message).toContain("'b'");
    const badOut = await codeOf(s.run({ a, b: a }, { outputs: ['nope'] }));
    expect(badOut.code).toBe('ERR_UNKNOWN_OUTPUT');
    await s.close();
  });

  it('wrong dtypes and shapes', async () => {
    const s = await Session.load(addPath);
    const a = tensor('float32', new Float32Array(3), [1, 3]);
    const dtype = await codeOf(s.run({ a, b: tensor('int32', new Int32Array(3), [1, 3]) }));
    expect(dtype.code).toBe('ERR_DTYPE_MISMATCH');
    expect(dtype.message).toContain('expects float32, got int32');
    const rank = await codeOf(s.run({ a, b: tensor('float32', new Float32Array(3), [3]) }));
    expect(rank.code).toBe('ERR_SHAPE_MISMATCH');
    const fixed = await codeOf(s.run({ a, b: tensor('float32', new Float32Array(4), [1, 4]) }));
    expect(fixed.code).toBe('ERR_SHAPE_MISMATCH');
    expect(fixed.message).toContain('[batch, 3]');
    const length = await codeOf(() => tensor('float32', new Float32Array(5), [2, 3]));
    expect(length.code).toBe('ERR_SHAPE_MISMATCH');
    const arrayType = await codeOf(
      s.run({ a, b: { type: 'float32', dims: [1, 3], data: new Float64Array(3) } as never }),
    );
    expect(arrayType.code).toBe('ERR_INVALID_ARGUMENT');
    const badType = await codeOf(
      s.run({ a, b: { type: 'complex', dims: [1, 3], data: new Float32Array(3) } as never }),
    );
    expect(badType.code).toBe('ERR_INVALID_ARGUMENT');
    // The session stays usable after every error.
    const ok = await s.run({ a, b: a });
    expect(ok.sum!.dims).toEqual([1, 3]);
    await s.close();
  });

  it('calling a closed session is ERR_SESSION_CLOSED; close is idempotent and waits for runs', async () => {
    const s = await Session.load(busyModel(), { intraOpThreads: 1 });
    const x = tensor('float32', new Float32Array(32 * 256).fill(1), [32, 256]);
    const inFlight = s.run({ x });
    await s.close();
    await s.close();
    expect(s.closed).toBe(true);
    // The run that was in flight finishes normally.
    expect((await inFlight).y!.dims).toEqual([32, 256]);
    const r = await codeOf(s.run({ x }));
    expect(r.code).toBe('ERR_SESSION_CLOSED');
    expect(r.err).toBeInstanceOf(ClosedError);
  });
});
