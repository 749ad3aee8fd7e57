// PromiseWorker — bounded native work (load, run, batch count) on a worker thread, settling a JS Promise.
//
// Contract: the constructor runs on the JS thread and must copy everything Execute needs out of JS values into plain
// C++ members (worker threads never touch JS values), keeping a Napi::Reference to any borrowed buffer until the worker
// is destroyed. Work() runs on a libuv worker thread: no N-API calls there. Resolve() runs back on the JS thread. Any
// exception from Work() rejects the promise through ToJsError's mapping.
#pragma once

#include <napi.h>

#include "js_errors.h"

namespace tokmeter::addon {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env, const char* name)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  // Runs Work() and settles the promise right here on the JS thread, without queueing: for work smaller than the cost
  // of handing it to a thread. The caller owns (and deletes) a worker run this way.
  void RunHere() {
    Execute();
    OnOK();
  }

 protected:
  virtual void Work() = 0;                         // worker thread
  virtual Napi::Value Resolve(Napi::Env env) = 0;  // JS thread, after Work() succeeded

 private:
  void Execute() final {
    try {
      Work();
    } catch (const std::exception& e) {
      error_.Capture(e);
    }
  }
  // When the environment is shutting down (a worker_thread terminated with work in flight), N-API calls fail and
  // Napi throws; there is nobody left to tell, so settling is skipped instead of letting the exception escape a
  // libuv callback (which would abort the whole process).
  void OnOK() final {
    try {
      Napi::Env env = Env();
      Napi::HandleScope scope(env);
      if (error_.failed) {
        deferred_.Reject(error_.ToJs(env).Value());
        return;
      }
      try {
        deferred_.Resolve(Resolve(env));
      } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
      } catch (const std::exception& e) {
        deferred_.Reject(ToJsError(env, e).Value());
      }
    } catch (...) {
    }
  }
  void OnError(const Napi::Error& e) final {
    try {
      deferred_.Reject(e.Value());
    } catch (...) {
    }
  }

  Napi::Promise::Deferred deferred_;
  CapturedError error_;
};

}  // namespace tokmeter::addon
