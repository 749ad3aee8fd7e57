/** Public surface of src/server. */
export { buildApp, type AppOptions } from './app.js';
export { startServer, openLedger, type StartOptions, type RunningServer } from './start.js';
export { KeyStore, parseKeysFile, hashKey, newApiKey, type KeysFile, type KeyEntry, type Caller } from './keys.js';
export { ServerMetrics } from './metrics.js';
export { asMeterable } from './model-adapter.js';
export {
  ApiError,
  MethodNotAllowedError,
  ERROR_TABLE,
  toHttpError,
  type OpenAIErrorBody,
  type HttpError,
} from '../http/errors.js';
export { FailureThrottle, clientKey, type ThrottleOptions } from '../http/throttle.js';
export type { HttpTimeouts } from './http.js';
export { DEFAULT_CHAT_LIMITS, type ChatLimits } from './requests.js';
