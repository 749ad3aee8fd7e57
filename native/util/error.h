// tokmeter::Error — the one exception type thrown by the plain C++ layers (engine, tokenizer, util).
//
// Contract: `code` is a stable string ("ERR_...") that the addon copies onto the JS Error (native/addon/js_errors.cc)
// and the TypeScript layer maps to an Error subclass (src/errors.ts). Messages name the problem and, where one exists,
// the fix. Nothing below native/addon knows about N-API; nothing above it throws anything else across the boundary.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace tokmeter {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

// Stable codes shared by several parts. Parts may add their own (src/errors.ts maps each to its class).
namespace codes {
inline constexpr const char* kInvalidArgument = "ERR_INVALID_ARGUMENT";
inline constexpr const char* kRuntimeNotFound = "ERR_RUNTIME_NOT_FOUND";
inline constexpr const char* kRuntimeVersion = "ERR_RUNTIME_VERSION";
inline constexpr const char* kRuntimeNotLoaded = "ERR_RUNTIME_NOT_LOADED";
inline constexpr const char* kModelNotFound = "ERR_MODEL_NOT_FOUND";
inline constexpr const char* kModelInvalid = "ERR_MODEL_INVALID";
inline constexpr const char* kUnknownInput = "ERR_UNKNOWN_INPUT";
inline constexpr const char* kMissingInput = "ERR_MISSING_INPUT";
inline constexpr const char* kUnknownOutput = "ERR_UNKNOWN_OUTPUT";
inline constexpr const char* kDtypeMismatch = "ERR_DTYPE_MISMATCH";
inline constexpr const char* kShapeMismatch = "ERR_SHAPE_MISMATCH";
inline constexpr const char* kSessionClosed = "ERR_SESSION_CLOSED";
inline constexpr const char* kInference = "ERR_INFERENCE";
inline constexpr const char* kInternal = "ERR_INTERNAL";
}  // namespace codes

}  // namespace tokmeter
