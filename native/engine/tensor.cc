#include "tensor.h"

#include <limits>

namespace tokmeter::engine {
namespace {
struct DTypeEntry {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::kFloat32, "float32", 4}, {DType::kFloat16, "float16", 2}, {DType::kInt64, "int64", 8},
    {DType::kInt32, "int32", 4},     {DType::kBool, "bool", 1},       {DType::kInt8, "int8", 1},
    {DType::kUint8, "uint8", 1},     {DType::kFloat64, "float64", 8},
};
}  // namespace

const char* DTypeName(DType dtype) noexcept {
  for (const auto& e : kDTypes)
    if (e.dtype == dtype) return e.name;
  return "unsupported";
}

std::optional<DType> DTypeFromName(const std::string& name) noexcept {
  for (const auto& e : kDTypes)
    if (name == e.name) return e.dtype;
  return std::nullopt;
}

size_t DTypeSize(DType dtype) noexcept {
  for (const auto& e : kDTypes)
    if (e.dtype == dtype) return e.size;
  return 0;
}

std::optional<size_t> ElementCount(const std::vector<int64_t>& shape) noexcept {
  size_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    const auto ud = static_cast<size_t>(d);
    if (ud != 0 && count > std::numeric_limits<size_t>::max() / ud) return std::nullopt;
    count *= ud;
  }
  return count;
}

}  // namespace tokmeter::engine
