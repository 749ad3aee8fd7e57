#include "engine/model_files.h"

#include <filesystem>
#include <utility>

#include "util/error.h"

namespace tokmeter::engine {
namespace {
const std::vector<std::pair<std::string, std::string>>& Table() {
  static const std::vector<std::pair<std::string, std::string>> table = {
      {"fp32", ""},         {"fp16", "_fp16"}, {"int8", "_int8"},   {"uint8", "_uint8"},
      {"q8", "_quantized"}, {"q4", "_q4"},     {"q4f16", "_q4f16"}, {"bnb4", "_bnb4"},
  };
  return table;
}
}  // namespace

const std::vector<std::string>& KnownModelDtypes() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [name, suffix] : Table()) out.push_back(name);
    return out;
  }();
  return names;
}

std::string ModelFileFor(const std::string& dtype) {
  for (const auto& [name, suffix] : Table())
    if (name == dtype) return "onnx/model" + suffix + ".onnx";
  std::string known;
  for (const auto& name : KnownModelDtypes()) known += (known.empty() ? "" : ", ") + name;
  throw Error(codes::kInvalidArgument, "unknown dtype '" + dtype + "'; expected one of " + known);
}

std::string ResolveModelFile(const std::string& dir, const std::string& dtype) {
  namespace fs = std::filesystem;
  const std::string relative = ModelFileFor(dtype);
  const fs::path path = fs::path(dir) / relative;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path.string();
  std::string available;
  for (const auto& name : KnownModelDtypes()) {
    if (fs::is_regular_file(fs::path(dir) / ModelFileFor(name), ec)) {
      available += (available.empty() ? "" : ", ") + name + " (" + ModelFileFor(name) + ")";
    }
  }
  throw Error(codes::kModelNotFound,
              "model file " + relative + " (dtype '" + dtype + "') not found in " + dir +
                  (available.empty() ? "; the folder has no onnx/model*.onnx file" : "; available: " + available));
}

}  // namespace tokmeter::engine
