#include "js_runtime.h"

#include "../engine/ort_runtime.h"
#include "js_convert.h"
#include "js_errors.h"

#ifndef TOKMETER_VERSION
#define TOKMETER_VERSION "0.0.0-dev"
#endif

namespace tokmeter::addon {
namespace {

Napi::Object RuntimeInfo(Napi::Env env) {
  auto& runtime = engine::OrtRuntime::Get();
  Napi::Object out = Napi::Object::New(env);
  out.Set("path", runtime.path());
  out.Set("version", runtime.version());
  out.Set("apiVersion", Napi::Number::New(env, engine::kRequiredOrtApiVersion));
  return out;
}

// Loading the shared library is a one-time cost of a few tens of milliseconds, paid before any model can exist;
// it is done synchronously so that every later call can rely on the runtime being there.
Napi::Value LoadRuntime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    engine::OrtRuntime::Load(ToPath(info[0], "the ONNX Runtime library path"));
    return RuntimeInfo(env);
  });
}

Napi::Value Versions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("addon", TOKMETER_VERSION);
  out.Set("napi", Napi::Number::New(env, NAPI_VERSION));
  out.Set("ortApi", Napi::Number::New(env, engine::kRequiredOrtApiVersion));
  out.Set("onnxruntime", engine::OrtRuntime::IsLoaded()
                             ? Napi::Value(Napi::String::New(env, engine::OrtRuntime::Get().version()))
                             : env.Null());
  return out;
}

}  // namespace

void InitRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("loadRuntime", Napi::Function::New<LoadRuntime>(env, "loadRuntime"));
  exports.Set("versions", Napi::Function::New<Versions>(env, "versions"));
}

}  // namespace tokmeter::addon
