/**
 * Every error tokmeter throws carries a stable `code` that callers can branch on. Native errors arrive as plain Errors with a
 * `code` property; `toTokmeterError` maps them to the classes below in one place.
 */
export class TokmeterError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The ONNX Runtime library could not be found or loaded (ERR_RUNTIME_NOT_FOUND), or is too old (ERR_RUNTIME_VERSION). */
export class RuntimeLoadError extends TokmeterError {}
/** The native addon itself could not be loaded (ERR_ADDON_NOT_FOUND). */
export class AddonLoadError extends TokmeterError {}
/** A model file is missing (ERR_MODEL_NOT_FOUND) or not a valid ONNX model (ERR_MODEL_INVALID). */
export class ModelLoadError extends TokmeterError {}
/** Inputs that do not fit the graph: unknown or missing names, wrong dtype or shape (ERR_UNKNOWN_INPUT, ...). */
export class InvalidInputError extends TokmeterError {}
/** A method was called after close()/dispose() (ERR_SESSION_CLOSED, ERR_DISPOSED). */
export class ClosedError extends TokmeterError {}
/** ONNX Runtime failed while running a graph (ERR_INFERENCE). */
export class InferenceError extends TokmeterError {}

/** A TypeError with a stable code, for arguments of the wrong type or range (ERR_INVALID_ARGUMENT). */
export class TokmeterTypeError extends TypeError {
  readonly code: string;
  constructor(message: string, code = 'ERR_INVALID_ARGUMENT') {
    super(message);
    this.code = code;
    this.name = 'TypeError';
  }
}

type ErrorClass = new (code: string, message: string, options?: { cause?: unknown }) => TokmeterError;

const byCode = new Map<string, ErrorClass>([
  ['ERR_RUNTIME_NOT_FOUND', RuntimeLoadError],
  ['ERR_RUNTIME_VERSION', RuntimeLoadError],
  ['ERR_RUNTIME_NOT_LOADED', RuntimeLoadError],
  ['ERR_ADDON_NOT_FOUND', AddonLoadError],
  ['ERR_MODEL_NOT_FOUND', ModelLoadError],
  ['ERR_MODEL_INVALID', ModelLoadError],
  ['ERR_UNKNOWN_INPUT', InvalidInputError],
  ['ERR_MISSING_INPUT', InvalidInputError],
  ['ERR_UNKNOWN_OUTPUT', InvalidInputError],
  ['ERR_DTYPE_MISMATCH', InvalidInputError],
  ['ERR_SHAPE_MISMATCH', InvalidInputError],
  ['ERR_SESSION_CLOSED', ClosedError],
  ['ERR_DISPOSED', ClosedError],
  ['ERR_INFERENCE', InferenceError],
]);

/** Lets other parts register their codes (e.g. the tokenizer's) without editing the table above. */
export function registerErrorCode(code: string, cls: ErrorClass): void {
  byCode.set(code, cls);
}

/** Maps an error thrown by the native addon to tokmeter's class for its code; other values pass through. */
export function toTokmeterError(err: unknown): unknown {
  if (err instanceof TokmeterError || !(err instanceof Error)) return err;
  const code = (err as Error & { code?: unknown }).code;
  if (typeof code !== 'string') return err;
  if (code === 'ERR_INVALID_ARGUMENT' || err instanceof TypeError) return new TokmeterTypeError(err.message, code);
  const cls = byCode.get(code) ?? TokmeterError;
  return new cls(code, err.message, { cause: err });
}

/** Runs `fn`, rethrowing native errors as tokmeter's classes. */
export function mapNativeErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toTokmeterError(err);
  }
}

/** Awaits `promise`, rejecting with tokmeter's classes. */
export async function mapNativeRejection<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    throw toTokmeterError(err);
  }
}

// ---- Generation (src/model, native/engine) ----

/**
 * The prompt does not fit the model's context window (ERR_CONTEXT_LENGTH). Thrown before any compute; carries
 * both numbers.
 */
export class ContextLengthError extends TokmeterError {
  readonly promptTokens: number | undefined;
  readonly contextLength: number | undefined;
  /** Completion tokens the request asked for, where the check counted them (the Meter does; the Model does not). */
  readonly maxNewTokens: number | undefined;
  /** promptTokens + maxNewTokens, where maxNewTokens is known. */
  readonly requestedTokens: number | undefined;
  constructor(
    code: string,
    message: string,
    options?: { cause?: unknown; promptTokens?: number; contextLength?: number; maxNewTokens?: number },
  ) {
    super(code, message, options);
    this.promptTokens = options?.promptTokens;
    this.contextLength = options?.contextLength;
    this.maxNewTokens = options?.maxNewTokens;
    this.requestedTokens =
      options?.promptTokens !== undefined && options.maxNewTokens !== undefined
        ? options.promptTokens + options.maxNewTokens
        : undefined;
  }
}
registerErrorCode('ERR_CONTEXT_LENGTH', ContextLengthError);
/** The tokenizer's vocabulary does not fit the model's (ERR_VOCAB_MISMATCH). */
registerErrorCode('ERR_VOCAB_MISMATCH', ModelLoadError);

/**
 * A model was loaded with device 'cuda' but something it needs is missing (ERR_DEVICE_UNAVAILABLE): the CUDA plug-in
 * (not built: `TOKMETER_CUDA=1 npm run build`), the NVIDIA driver (libcuda.so.1), a GPU, the ONNX Runtime CUDA
 * provider libraries, or a CUDA 13 library they need (libcudart/libcublas/libcublasLt/libcurand). The message names
 * each missing piece and its fix; `cudaStatus()` (src/cuda) lists them all.
 */
export class DeviceUnavailableError extends TokmeterError {}
registerErrorCode('ERR_DEVICE_UNAVAILABLE', DeviceUnavailableError);

// ---- Structured outputs (native/grammar) ----

/**
 * A constraint spec the engine cannot compile: malformed (ERR_GRAMMAR_INVALID), asking for a keyword it cannot
 * enforce (ERR_GRAMMAR_UNSUPPORTED), or past a compile limit (ERR_GRAMMAR_TOO_LARGE). `pointer` is the JSON pointer of
 * the offending node inside the spec (e.g. '/schema/properties/a'), `keyword` the keyword at fault ('' when none).
 */
export class GrammarError extends TokmeterError {
  readonly pointer: string;
  readonly keyword: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    const cause = options?.cause as { pointer?: unknown; keyword?: unknown } | undefined;
    this.pointer = typeof cause?.pointer === 'string' ? cause.pointer : '';
    this.keyword = typeof cause?.keyword === 'string' ? cause.keyword : '';
  }
}
registerErrorCode('ERR_GRAMMAR_INVALID', GrammarError);
registerErrorCode('ERR_GRAMMAR_UNSUPPORTED', GrammarError);
registerErrorCode('ERR_GRAMMAR_TOO_LARGE', GrammarError);
