// JsSession — the JS face of engine::Session (ONNX graph on CPU).
//
// JS surface (typed in src/native/session-contract.ts):
//   createSession(source: string | Uint8Array, options) → Promise<NativeSession>   (load on a worker thread)
//   session.inputs() / session.outputs() → TensorInfo[]
//   session.run(feeds, outputNames) → Promise<NativeTensor[]>                        (run on a worker thread)
//   session.close()                                                                  (idempotent)
// Ownership: the JS object holds a shared_ptr to the engine session; each run holds its own, plus references to the
// JS buffers it reads. close() drops the JS object's reference; the ORT session is freed when the last run ends.
#pragma once

#include <napi.h>

#include <memory>

#include "../engine/session.h"

namespace tokmeter::addon {

class JsSession : public Napi::ObjectWrap<JsSession> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit JsSession(const Napi::CallbackInfo& info);
  ~JsSession() override;

 private:
  static Napi::Value CreateSession(const Napi::CallbackInfo& info);
  Napi::Value Inputs(const Napi::CallbackInfo& info);
  Napi::Value Outputs(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::shared_ptr<engine::Session> Require(Napi::Env env) const;

  std::shared_ptr<engine::Session> session_;
  int64_t external_bytes_ = 0;
};

void InitSession(Napi::Env env, Napi::Object exports);

}  // namespace tokmeter::addon
