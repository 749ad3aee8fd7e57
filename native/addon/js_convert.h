// Small, checked conversions from JS values to plain C++ on the JS thread. Each throws a TypeError
// (ERR_INVALID_ARGUMENT) that names the argument, so misuse of the raw binding is never a crash.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tokmeter::addon {

std::string ToString(const Napi::Value& value, const char* what);
// A file or folder path: a string without NUL bytes (the operating system would stop reading the path at one).
std::string ToPath(const Napi::Value& value, const char* what);
int64_t ToInteger(const Napi::Value& value, const char* what, int64_t min, int64_t max);
bool ToBool(const Napi::Value& value, const char* what);
std::vector<int64_t> ToDims(const Napi::Value& value, const char* what);
std::vector<std::string> ToStringArray(const Napi::Value& value, const char* what);
// Optional properties of an options object: returns `fallback` when absent or undefined.
int64_t OptionalInteger(const Napi::Object& options, const char* key, int64_t fallback, int64_t min, int64_t max);

}  // namespace tokmeter::addon
