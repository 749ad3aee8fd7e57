/**
 * Session: one ONNX graph run by ONNX Runtime on CPU, asynchronously (load and run happen on worker threads).
 * A low-level building block; `Model` (src/model) is the generation API built on the engine.
 */
import { ClosedError, InvalidInputError, mapNativeErrors, mapNativeRejection, TokmeterTypeError } from './errors.js';
import type { NativeFeed, NativeSession, NativeTensor, NativeTensorType } from './native/session-contract.js';
import { ensureRuntime } from './runtime.js';
import {
  describe,
  expectInteger,
  expectKnownKeys,
  expectObject,
  expectOptionalInteger,
  expectPath,
} from './validate.js';

export type TensorType = NativeTensorType;

/** The typed array each tensor type is carried in. float16 travels as raw IEEE half bits in a Uint16Array. */
export interface TensorDataByType {
  float32: Float32Array;
  float16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
  bool: Uint8Array;
  int8: Int8Array;
  uint8: Uint8Array;
  float64: Float64Array;
}

export interface Tensor<T extends TensorType = TensorType> {
  type: T;
  dims: readonly number[];
  data: TensorDataByType[T];
}

export interface TensorInfo {
  name: string;
  /** ONNX element type ('float32', 'int64', ...; types tokmeter cannot feed keep ONNX's name, e.g. 'string'). */
  type: string;
  /** Fixed size, symbolic name (e.g. 'batch_size') or null for each dimension. */
  dims: ReadonlyArray<number | string | null>;
}

export interface SessionOptions {
  /** Threads used inside one operator (ONNX Runtime's intra-op pool). Default: ONNX Runtime's choice. */
  intraOpThreads?: number;
  /** Threads used across independent operators. Default: ONNX Runtime's choice. */
  interOpThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
}

const ARRAY_TYPES: { [K in TensorType]: new (buffer: ArrayBuffer) => TensorDataByType[K] } = {
  float32: Float32Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  bool: Uint8Array,
  int8: Int8Array,
  uint8: Uint8Array,
  float64: Float64Array,
};
const OPT_LEVELS = { disabled: 0, basic: 1, extended: 2, all: 99 } as const;

/** Builds a tensor, checking that the data's length fits the dims. */
export function tensor<T extends TensorType>(type: T, data: TensorDataByType[T], dims: readonly number[]): Tensor<T> {
  const t = { type, data, dims };
  checkTensor('tensor', t);
  return t;
}

function checkTensor(name: string, value: unknown): asserts value is Tensor {
  const t = expectObject(name, value);
  const type = t.type;
  if (typeof type !== 'string' || !(type in ARRAY_TYPES)) {
    throw new TokmeterTypeError(
      `expected ${name}.type to be one of ${Object.keys(ARRAY_TYPES).join(', ')}, got ${describe(type)}`,
    );
  }
  if (!Array.isArray(t.dims))
    throw new TokmeterTypeError(`expected an array for ${name}.dims, got ${describe(t.dims)}`);
  t.dims.forEach((d, i) => expectInteger(`${name}.dims[${i}]`, d, 0));
  const ctor = ARRAY_TYPES[type as TensorType];
  if (!(t.data instanceof ctor)) {
    throw new TokmeterTypeError(`expected a ${ctor.name} for ${name}.data (type ${type}), got ${describe(t.data)}`);
  }
  const expected = (t.dims as number[]).reduce((a, b) => a * b, 1);
  const length = (t.data as ArrayLike<unknown>).length;
  if (length !== expected) {
    throw new InvalidInputError(
      'ERR_SHAPE_MISMATCH',
      `${name} has ${length} elements but dims [${(t.dims as number[]).join(', ')}] need ${expected}`,
    );
  }
}

function fromNative(t: NativeTensor): Tensor {
  const ctor = ARRAY_TYPES[t.type];
  return { type: t.type, dims: t.dims, data: new ctor(t.data) } as Tensor;
}

export class Session {
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  #native: NativeSession | null;
  readonly #inFlight = new Set<Promise<unknown>>();

  private constructor(native: NativeSession) {
    this.#native = native;
    this.inputs = Object.freeze(native.inputs());
    this.outputs = Object.freeze(native.outputs());
  }

  /** Loads an ONNX model from a file path or from its bytes, off the JS thread. */
  static async load(source: string | Uint8Array, options: SessionOptions = {}): Promise<Session> {
    if (typeof source !== 'string' && !(source instanceof Uint8Array)) {
      throw new TokmeterTypeError(`expected a file path or a Uint8Array for the model, got ${describe(source)}`);
    }
    if (typeof source === 'string') expectPath('the model path', source);
    const o = expectObject('options', options);
    expectKnownKeys('session options', o, ['intraOpThreads', 'interOpThreads', 'graphOptimizationLevel']);
    const level = options.graphOptimizationLevel ?? 'all';
    if (!(level in OPT_LEVELS)) {
      throw new TokmeterTypeError(
        `expected graphOptimizationLevel to be one of ${Object.keys(OPT_LEVELS).join(', ')}, got ${describe(level)}`,
      );
    }
    const nativeOptions = {
      intraOpThreads: expectOptionalInteger('intraOpThreads', options.intraOpThreads, 0, 1024) ?? 0,
      interOpThreads: expectOptionalInteger('interOpThreads', options.interOpThreads, 0, 1024) ?? 0,
      graphOptimizationLevel: OPT_LEVELS[level],
    };
    const { addon } = mapNativeErrors(() => ensureRuntime());
    const native = await mapNativeRejection(addon.createSession(source, nativeOptions));
    return new Session(native);
  }

  get closed(): boolean {
    return this.#native === null;
  }

  /**
   * Runs the graph. `feeds` maps every input name to a tensor; `outputs` picks outputs by name (default: all).
   * Resolves to the outputs by name.
   */
  async run(feeds: Record<string, Tensor>, options: { outputs?: string[] } = {}): Promise<Record<string, Tensor>> {
    const native = this.#native;
    if (!native) throw new ClosedError('ERR_SESSION_CLOSED', 'the session is closed');
    const f = expectObject('feeds', feeds);
    const list: NativeFeed[] = [];
    for (const [name, value] of Object.entries(f)) {
      checkTensor(`feeds['${name}']`, value);
      list.push({ name, type: value.type, dims: [...value.dims], data: value.data });
    }
    const names = options.outputs;
    if (names !== undefined && (!Array.isArray(names) || names.some((n) => typeof n !== 'string'))) {
      throw new TokmeterTypeError(`expected an array of output names for options.outputs, got ${describe(names)}`);
    }
    const pending = mapNativeRejection(mapNativeErrors(() => native.run(list, names)));
    this.#inFlight.add(pending);
    try {
      const results = await pending;
      const out: Record<string, Tensor> = {};
      for (const r of results) out[r.name] = fromNative(r);
      return out;
    } finally {
      this.#inFlight.delete(pending);
    }
  }

  /** Releases the model. Idempotent; waits for runs in flight, which finish normally. */
  async close(): Promise<void> {
    const native = this.#native;
    this.#native = null;
    native?.close();
    await Promise.allSettled([...this.#inFlight]);
  }
}
