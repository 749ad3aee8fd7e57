/** The Session slice of the native addon's contract (native/addon/js_session.h). Only src/session.ts uses it. */

declare const sessionBrand: unique symbol;

export type NativeTensorType = 'float32' | 'float16' | 'int64' | 'int32' | 'bool' | 'int8' | 'uint8' | 'float64';

export interface NativeTensorInfo {
  name: string;
  /** ONNX element type; types tokmeter cannot feed appear by ONNX's name (e.g. 'string'). */
  type: string;
  /** A number for a fixed dimension, the symbolic name or null for a dynamic one. */
  dims: Array<number | string | null>;
}

export interface NativeFeed {
  name: string;
  type: NativeTensorType;
  dims: number[];
  data: ArrayBufferView;
}

export interface NativeTensor {
  name: string;
  type: NativeTensorType;
  dims: number[];
  data: ArrayBuffer;
}

export interface NativeSessionOptions {
  intraOpThreads?: number;
  interOpThreads?: number;
  graphOptimizationLevel?: number;
}

/** A branded handle: only createSession() makes one. */
export interface NativeSession {
  readonly [sessionBrand]: true;
  inputs(): NativeTensorInfo[];
  outputs(): NativeTensorInfo[];
  run(feeds: NativeFeed[], outputNames?: string[]): Promise<NativeTensor[]>;
  close(): void;
}

export interface NativeSessionApi {
  createSession(source: string | Uint8Array, options?: NativeSessionOptions): Promise<NativeSession>;
}

export interface NativeRuntimeInfo {
  path: string;
  version: string;
  apiVersion: number;
}

export interface NativeRuntimeApi {
  loadRuntime(libraryPath: string): NativeRuntimeInfo;
  versions(): { addon: string; napi: number; ortApi: number; onnxruntime: string | null };
}
