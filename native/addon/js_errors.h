// The one place where C++ failures become JS errors.
//
// tokmeter::Error → a JS Error (TypeError for ERR_INVALID_ARGUMENT) whose `code` property is the stable code;
// the TypeScript layer (src/errors.ts) maps codes to Error subclasses. Any other std::exception becomes
// ERR_INTERNAL. JS thread only.
#pragma once

#include <napi.h>

#include <exception>
#include <string>

namespace tokmeter::addon {

Napi::Error MakeJsError(Napi::Env env, const std::string& code, const std::string& message);
Napi::Error ToJsError(Napi::Env env, const std::exception& error);

// A captured failure, for work that runs off the JS thread and reports back later.
struct CapturedError {
  bool failed = false;
  std::string code;
  std::string message;
  bool located = false;  // a grammar error: pointer and keyword below
  std::string pointer, keyword;
  void Capture(const std::exception& error);
  Napi::Error ToJs(Napi::Env env) const;
};

// Runs `body` on the JS thread and converts any C++ exception into a pending JS exception.
// Usage: return Guard(info.Env(), [&] { ...; return value; });
template <typename F>
auto Guard(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw ToJsError(env, e);
  }
}

[[noreturn]] void ThrowTypeError(Napi::Env env, const std::string& message);

}  // namespace tokmeter::addon
