/**
 * A small ONNX graph builder over `onnx-proto` (the protobufjs-generated ONNX schema).
 *
 * Contract:
 * - Names are unique: `node()` and `constant()` mint fresh output names from a counter; initializer and graph I/O
 *   names are the caller's and must not collide (checked).
 * - Initializer data is written as little-endian `raw_data`, either inline in the ModelProto or, when the builder
 *   was created with an external-data file, appended to that file at once (aligned, as `onnx.external_data_helper`
 *   does) so a large model never holds all its weights in memory. Tensors under `externalThreshold` bytes stay
 *   inline, as Optimum and onnx's own converter do.
 * - Ownership: the builder owns the external-data file descriptor from construction until `finish()` (or `abort()`).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import onnxProto from 'onnx-proto';
import { toHalfArray } from './half.js';

const { onnx } = onnxProto;

export type OnnxModelProto = InstanceType<typeof onnx.ModelProto>;

/** ONNX element types this builder writes. Values are `onnx.TensorProto.DataType`. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
} as const;
export type DataTypeValue = (typeof DataType)[keyof typeof DataType];

/** A dimension: a fixed size or a symbolic name such as `batch_size`. */
export type Dim = number | string;

export type AttributeValue = number | number[] | string | { int: number } | { ints: number[] } | { float: number };

export interface ExternalDataTarget {
  /** Absolute path of the data file to write. */
  path: string;
  /** Location recorded in the model, relative to the model file (e.g. `model.onnx_data`). */
  location: string;
  /** Tensors smaller than this many bytes stay inline. Default 1024 (onnx's own default). */
  threshold?: number;
  /** Offset alignment inside the data file. Default 4096 (a page, so ONNX Runtime can map tensors directly). */
  alignment?: number;
}

type InitData = Float32Array | BigInt64Array | Int32Array | Uint16Array | Uint8Array | Int8Array;

export class GraphBuilder {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly names = new Set<string>();
  private readonly constCache = new Map<string, string>();
  /** Non-default operator domains used by nodes (each gets an opset import at version 1). */
  private readonly domains = new Set<string>();
  private counter = 0;
  private externalFd: number | null = null;
  private externalOffset = 0;
  /** Number of scalar parameters in float initializers (weights), for reporting. */
  parameterCount = 0;
  /** Bytes of initializer data written (inline or external). */
  initializerBytes = 0;

  constructor(
    private readonly graphName: string,
    private readonly external: ExternalDataTarget | null = null,
  ) {
    if (endianness() !== 'LE') throw new Error('the ONNX model writer needs a little-endian machine');
    if (external) this.externalFd = openSync(external.path, 'wx');
  }

  /** Declares a graph input. */
  input(name: string, elemType: DataTypeValue, dims: Dim[]): string {
    this.claim(name);
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declares a graph output; `name` must be produced by some node. */
  output(name: string, elemType: DataTypeValue, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** Adds an initializer and returns its name. `parameter` marks trainable weights (counted in `parameterCount`). */
  initializer(name: string, elemType: DataTypeValue, dims: number[], data: InitData, parameter = false): string {
    this.claim(name);
    const count = dims.reduce((a, b) => a * b, 1);
    if (data.length !== count) {
      throw new Error(`initializer ${name}: ${data.length} values for dims [${dims.join(', ')}]`);
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const tensor = new onnx.TensorProto({ name, dataType: elemType, dims });
    const ext = this.external;
    if (ext && this.externalFd !== null && bytes.byteLength >= (ext.threshold ?? 1024)) {
      const align = ext.alignment ?? 4096;
      const offset = Math.ceil(this.externalOffset / align) * align;
      if (offset > this.externalOffset) {
        writeSync(this.externalFd, new Uint8Array(offset - this.externalOffset));
      }
      let written = 0;
      while (written < bytes.byteLength) {
        written += writeSync(this.externalFd, bytes, written, bytes.byteLength - written);
      }
      this.externalOffset = offset + bytes.byteLength;
      tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      tensor.externalData = [
        new onnx.StringStringEntryProto({ key: 'location', value: ext.location }),
        new onnx.StringStringEntryProto({ key: 'offset', value: String(offset) }),
        new onnx.StringStringEntryProto({ key: 'length', value: String(bytes.byteLength) }),
      ];
    } else {
      // Copy: the caller may reuse its buffer, and protobufjs keeps a reference until encoding.
      tensor.rawData = bytes.slice();
    }
    this.initializers.push(tensor);
    this.initializerBytes += bytes.byteLength;
    if (parameter) this.parameterCount += count;
    return name;
  }

  /** A float32 tensor constant (initializer), deduplicated by value. */
  constFloat(values: number[] | Float32Array, dims: number[] = [values.length]): string {
    return this.cachedConst('f', dims, Array.from(values), () =>
      this.initializer(this.unusedName('const_f'), DataType.FLOAT, dims, Float32Array.from(values)),
    );
  }

  /** A float16 tensor constant (initializer, rounded to nearest even), deduplicated by value. */
  constFloat16(values: number[] | Float32Array, dims: number[] = [values.length]): string {
    return this.cachedConst('h', dims, Array.from(values), () =>
      this.initializer(this.unusedName('const_f16'), DataType.FLOAT16, dims, toHalfArray(Float32Array.from(values))),
    );
  }

  /** An int64 tensor constant (initializer), deduplicated by value. Pass `[]` dims for a scalar. */
  constInt64(values: number[], dims: number[] = [values.length]): string {
    return this.cachedConst('i', dims, values, () =>
      this.initializer(this.unusedName('const_i64'), DataType.INT64, dims, BigInt64Array.from(values.map(BigInt))),
    );
  }

  /**
   * Adds a node. Returns its output names: `outputs` may be a number (that many fresh names) or explicit names.
   * `domain` is the operator set ('' = ONNX; e.g. 'com.microsoft' for ONNX Runtime's contrib ops, imported at
   * version 1 by `finish()`).
   */
  node(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttributeValue> = {},
    outputs: number | string[] = 1,
    domain = '',
  ): string[] {
    const outNames = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(opType)) : outputs;
    if (typeof outputs !== 'number') for (const o of outNames) this.claim(o);
    const attribute = Object.entries(attrs).map(([k, v]) => attributeProto(k, v));
    if (domain !== '') this.domains.add(domain);
    this.nodes.push(
      new onnx.NodeProto({
        opType,
        input: inputs,
        output: outNames,
        name: `${opType}_${this.counter++}`,
        attribute,
        ...(domain !== '' ? { domain } : {}),
      }),
    );
    return outNames;
  }

  /** Shorthand for a single-output node. */
  op(opType: string, inputs: string[], attrs: Record<string, AttributeValue> = {}, output?: string): string {
    return this.node(opType, inputs, attrs, output === undefined ? 1 : [output])[0]!;
  }

  /** Builds the ModelProto. Closes the external-data file. */
  finish(opts: {
    opset: number;
    irVersion: number;
    producer: string;
    docString?: string;
    metadata?: Record<string, string>;
  }): OnnxModelProto {
    this.closeExternal();
    const graph = new onnx.GraphProto({
      name: this.graphName,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
    });
    return new onnx.ModelProto({
      irVersion: opts.irVersion,
      producerName: opts.producer,
      producerVersion: '1',
      docString: opts.docString ?? '',
      opsetImport: [
        new onnx.OperatorSetIdProto({ domain: '', version: opts.opset }),
        ...[...this.domains].sort().map((domain) => new onnx.OperatorSetIdProto({ domain, version: 1 })),
      ],
      metadataProps: Object.entries(opts.metadata ?? {}).map(
        ([key, value]) => new onnx.StringStringEntryProto({ key, value }),
      ),
      graph,
    });
  }

  /** Closes the external-data file without building (on error paths). Idempotent. */
  abort(): void {
    this.closeExternal();
  }

  private closeExternal(): void {
    if (this.externalFd !== null) {
      closeSync(this.externalFd);
      this.externalFd = null;
    }
  }

  private cachedConst(kind: string, dims: number[], values: number[], make: () => string): string {
    const key = `${kind}|${dims.join(',')}|${values.join(',')}`;
    let name = this.constCache.get(key);
    if (name === undefined) {
      name = make();
      this.constCache.set(key, name);
    }
    return name;
  }

  /** A name not used yet (not claimed). */
  private unusedName(prefix: string): string {
    let name: string;
    do name = `/${prefix}_${this.counter++}`;
    while (this.names.has(name));
    return name;
  }

  /** A fresh name, claimed. */
  private fresh(prefix: string): string {
    const name = this.unusedName(prefix);
    this.names.add(name);
    return name;
  }

  private claim(name: string): void {
    if (this.names.has(name)) throw new Error(`duplicate ONNX value name: ${name}`);
    this.names.add(name);
  }
}

/** Serializes a model to bytes. */
export function encodeModel(model: OnnxModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** Parses model bytes (used by tests and tools to inspect what was written). */
export function decodeModel(bytes: Uint8Array): OnnxModelProto {
  return onnx.ModelProto.decode(bytes);
}

function valueInfo(name: string, elemType: DataTypeValue, dims: Dim[]): InstanceType<typeof onnx.ValueInfoProto> {
  return new onnx.ValueInfoProto({
    name,
    type: new onnx.TypeProto({
      tensorType: new onnx.TypeProto.Tensor({
        elemType,
        shape: new onnx.TensorShapeProto({
          dim: dims.map((d) =>
            typeof d === 'number'
              ? new onnx.TensorShapeProto.Dimension({ dimValue: d })
              : new onnx.TensorShapeProto.Dimension({ dimParam: d }),
          ),
        }),
      }),
    }),
  });
}

function attributeProto(name: string, v: AttributeValue): InstanceType<typeof onnx.AttributeProto> {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return new onnx.AttributeProto({ name, type: T.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return new onnx.AttributeProto({ name, type: T.INTS, ints: v });
  if (typeof v === 'number') {
    // Plain numbers are ints; floats must be spelled { float: x } so 1.0 is never mistaken for an int.
    if (!Number.isInteger(v)) throw new TypeError(`attribute ${name}: use { float: ${v} } for a float attribute`);
    return new onnx.AttributeProto({ name, type: T.INT, i: v });
  }
  if ('float' in v) return new onnx.AttributeProto({ name, type: T.FLOAT, f: v.float });
  if ('ints' in v) return new onnx.AttributeProto({ name, type: T.INTS, ints: v.ints });
  return new onnx.AttributeProto({ name, type: T.INT, i: v.int });
}
