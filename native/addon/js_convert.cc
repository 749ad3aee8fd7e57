#include "js_convert.h"

#include <cmath>

#include "js_errors.h"

namespace tokmeter::addon {

std::string ToString(const Napi::Value& value, const char* what) {
  if (!value.IsString()) ThrowTypeError(value.Env(), std::string("expected a string for ") + what);
  return value.As<Napi::String>().Utf8Value();
}

std::string ToPath(const Napi::Value& value, const char* what) {
  std::string path = ToString(value, what);
  if (path.find('\0') != std::string::npos)
    ThrowTypeError(value.Env(), std::string("expected a path without NUL bytes for ") + what);
  return path;
}

int64_t ToInteger(const Napi::Value& value, const char* what, int64_t min, int64_t max) {
  Napi::Env env = value.Env();
  if (!value.IsNumber()) ThrowTypeError(env, std::string("expected an integer for ") + what);
  const double d = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(min) || d > static_cast<double>(max)) {
    ThrowTypeError(env, std::string("expected an integer in [") + std::to_string(min) + ", " + std::to_string(max) +
                            "] for " + what);
  }
  return static_cast<int64_t>(d);
}

bool ToBool(const Napi::Value& value, const char* what) {
  if (!value.IsBoolean()) ThrowTypeError(value.Env(), std::string("expected a boolean for ") + what);
  return value.As<Napi::Boolean>().Value();
}

std::vector<int64_t> ToDims(const Napi::Value& value, const char* what) {
  if (!value.IsArray()) ThrowTypeError(value.Env(), std::string("expected an array of dimensions for ") + what);
  auto array = value.As<Napi::Array>();
  std::vector<int64_t> dims;
  dims.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    dims.push_back(ToInteger(array.Get(i), what, 0, int64_t{1} << 53));
  }
  return dims;
}

std::vector<std::string> ToStringArray(const Napi::Value& value, const char* what) {
  if (!value.IsArray()) ThrowTypeError(value.Env(), std::string("expected an array of strings for ") + what);
  auto array = value.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < array.Length(); ++i) out.push_back(ToString(array.Get(i), what));
  return out;
}

int64_t OptionalInteger(const Napi::Object& options, const char* key, int64_t fallback, int64_t min, int64_t max) {
  Napi::Value v = options.Get(key);
  if (v.IsUndefined()) return fallback;
  return ToInteger(v, key, min, max);
}

}  // namespace tokmeter::addon
