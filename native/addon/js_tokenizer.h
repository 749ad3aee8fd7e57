// JS surface of the tokenizer (native/tokenizer): createTokenizer(source) -> Promise<NativeTokenizer> (a
// tokenizer.json or tiktoken file, or its bytes, read by native code itself), readFileBig(path) -> Promise<Buffer>,
// and the NativeTokenizer / NativeDecodeStream classes. Thin: converts types, schedules work, maps errors.
//
// Lifetime: a NativeTokenizer holds a std::shared_ptr<const tokenizer::Tokenizer>; dispose() drops it (idempotent;
// later calls throw ERR_DISPOSED). Batch workers and decode streams hold their own shared_ptr, so disposing while
// they run is safe. JS thread only, except the work of createTokenizer (reading the file, or the bytes the worker
// keeps referenced until it ends, and building the tokenizer), readFileBig, and batches, which run on a libuv
// worker (batches fan out to the persistent helper pool of tokenizer/parallel.h) and never touch N-API values.
#pragma once

#include <napi.h>

#include <memory>

#include "tokenizer/tokenizer.h"

namespace tokmeter::addon {

void InitTokenizer(Napi::Env env, Napi::Object exports);

// The tokenizer behind a NativeTokenizer object (for other parts of the addon, e.g. the model's generation loop).
// Throws a JS TypeError when `v` is not a NativeTokenizer, ClosedError (ERR_DISPOSED) when it was disposed.
std::shared_ptr<const tokmeter::tokenizer::Tokenizer> UnwrapTokenizer(Napi::Value v);

}  // namespace tokmeter::addon
