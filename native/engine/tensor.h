// Plain tensor descriptions that cross between the addon and the engine. No N-API, no ORT types.
//
// TensorView borrows its bytes: the caller keeps them alive (the addon holds a reference to the JS buffer) until the
// call that received the view returns. OwnedTensor owns its bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tokmeter::engine {

enum class DType : int { kFloat32, kFloat16, kInt64, kInt32, kBool, kInt8, kUint8, kFloat64, kUnsupported };

const char* DTypeName(DType dtype) noexcept;
std::optional<DType> DTypeFromName(const std::string& name) noexcept;
size_t DTypeSize(DType dtype) noexcept;  // bytes per element; 0 for kUnsupported

// Metadata of a graph input or output. A dimension of -1 is dynamic; its symbolic name (if any) is in dimNames.
struct TensorInfo {
  std::string name;
  DType dtype = DType::kUnsupported;
  std::string dtypeName;  // ONNX's name for it, also for types tokmeter cannot feed (e.g. "string")
  std::vector<int64_t> shape;
  std::vector<std::string> dimNames;
};

struct TensorView {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t byteLength = 0;
};

struct OwnedTensor {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Product of dimensions, or nullopt if a dimension is negative or the product overflows size_t.
std::optional<size_t> ElementCount(const std::vector<int64_t>& shape) noexcept;

}  // namespace tokmeter::engine
