// Module registration: every part adds its JS surface here through Init<Part>(env, exports).
#include <napi.h>

#include "js_addon_data.h"
#include "js_runtime.h"
#include "js_session.h"
#if __has_include("js_tokenizer.h")
#include "js_tokenizer.h"
#define TOKMETER_HAS_TOKENIZER 1
#endif
#if __has_include("js_cuda.h")
#include "js_cuda.h"
#define TOKMETER_HAS_CUDA 1
#endif
#if __has_include("js_model.h")
#include "js_model.h"
#define TOKMETER_HAS_MODEL 1
#endif

namespace tokmeter::addon {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  InitRuntime(env, exports);
  InitSession(env, exports);
#ifdef TOKMETER_HAS_TOKENIZER
  InitTokenizer(env, exports);
#endif
#ifdef TOKMETER_HAS_MODEL
  InitModel(env, exports);
#endif
#ifdef TOKMETER_HAS_CUDA
  InitCuda(env, exports);
#endif
  return exports;
}

}  // namespace tokmeter::addon

static Napi::Object InitTokmeter(Napi::Env env, Napi::Object exports) { return tokmeter::addon::Init(env, exports); }

NODE_API_MODULE(tokmeter, InitTokmeter)
