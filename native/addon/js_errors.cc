#include "js_errors.h"

#include "../grammar/errors.h"
#include "../util/error.h"

namespace tokmeter::addon {

Napi::Error MakeJsError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error =
      code == codes::kInvalidArgument ? Napi::TypeError::New(env, message) : Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

Napi::Error ToJsError(Napi::Env env, const std::exception& error) {
  if (dynamic_cast<const grammar::GrammarError*>(&error) != nullptr) {
    CapturedError captured;
    captured.Capture(error);
    return captured.ToJs(env);
  }
  if (const auto* own = dynamic_cast<const tokmeter::Error*>(&error)) {
    return MakeJsError(env, own->code(), own->what());
  }
  if (dynamic_cast<const std::bad_alloc*>(&error) != nullptr) {
    return MakeJsError(env, "ERR_OUT_OF_MEMORY", "native code ran out of memory");
  }
  return MakeJsError(env, codes::kInternal, std::string("internal error: ") + error.what());
}

void CapturedError::Capture(const std::exception& error) {
  failed = true;
  if (const auto* g = dynamic_cast<const grammar::GrammarError*>(&error)) {
    located = true;
    pointer = g->pointer();
    keyword = g->keyword();
  }
  if (const auto* own = dynamic_cast<const tokmeter::Error*>(&error)) {
    code = own->code();
  } else if (dynamic_cast<const std::bad_alloc*>(&error) != nullptr) {
    code = "ERR_OUT_OF_MEMORY";
  } else {
    code = codes::kInternal;
  }
  message = error.what();
}

Napi::Error CapturedError::ToJs(Napi::Env env) const {
  Napi::Error e = MakeJsError(env, code, message);
  if (located) {
    e.Set("pointer", Napi::String::New(env, pointer));
    e.Set("keyword", Napi::String::New(env, keyword));
  }
  return e;
}

void ThrowTypeError(Napi::Env env, const std::string& message) {
  throw MakeJsError(env, codes::kInvalidArgument, message);
}

}  // namespace tokmeter::addon
