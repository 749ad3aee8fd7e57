export { Session, tensor } from './session.js';
export type { SessionOptions, Tensor, TensorInfo, TensorType, TensorDataByType } from './session.js';
export { versions, runtimeCandidates, BUNDLED_ORT_VERSION } from './runtime.js';
export * from './errors.js';
export * from './usage/index.js';
export * from './tokenizer/index.js';
