#include "engine/graph_spec.h"

#include <map>
#include <regex>

#include "util/error.h"

namespace tokmeter::engine {
namespace {

[[noreturn]] void Invalid(const std::string& file, const std::string& what) {
  throw Error(codes::kModelInvalid, file + ": " + what);
}

const TensorInfo* Find(const std::vector<TensorInfo>& list, const std::string& name) {
  for (const auto& t : list)
    if (t.name == name) return &t;
  return nullptr;
}

// A dimension from the graph if fixed, checked against the config's value if both exist.
int64_t Resolve(const std::string& file, const std::string& what, int64_t graph, int64_t config) {
  if (graph > 0 && config > 0 && graph != config) {
    Invalid(file, "the graph has " + what + " = " + std::to_string(graph) + " but config.json says " +
                      std::to_string(config));
  }
  if (graph > 0) return graph;
  if (config > 0) return config;
  Invalid(file, what + " is neither fixed in the graph nor given in config.json");
}

}  // namespace

size_t GraphSpec::KvBytesPerToken() const noexcept {
  return static_cast<size_t>(numLayers * 2 * numKvHeads * headDim) * DTypeSize(kvDtype);
}

GraphSpec DiscoverGraph(const std::vector<TensorInfo>& inputs, const std::vector<TensorInfo>& outputs,
                        const ModelConfig& config, const std::string& file) {
  GraphSpec spec;
  static const std::regex kPast(R"(past_key_values\.(\d+)\.(key|value))");
  static const std::regex kPresent(R"(present\.(\d+)\.(key|value))");

  std::map<int64_t, int> past_layers;  // layer -> bitmask key=1 value=2
  for (const auto& in : inputs) {
    std::smatch m;
    if (in.name == "input_ids" || in.name == "attention_mask" || in.name == "position_ids") {
      if (in.dtype != DType::kInt64) Invalid(file, "input '" + in.name + "' is " + in.dtypeName + ", expected int64");
      if (in.shape.size() != 2) Invalid(file, "input '" + in.name + "' must have rank 2 [batch, sequence]");
      spec.hasAttentionMask |= in.name == "attention_mask";
      spec.hasPositionIds |= in.name == "position_ids";
    } else if (std::regex_match(in.name, m, kPast)) {
      past_layers[std::stoll(m[1])] |= m[2] == "key" ? 1 : 2;
    } else {
      Invalid(file, "unexpected input '" + in.name +
                        "'; tokmeter runs decoder graphs with inputs input_ids, attention_mask, position_ids and "
                        "past_key_values.{i}.key|value (a merged decoder with use_cache_branch is not supported)");
    }
  }
  if (!Find(inputs, "input_ids")) Invalid(file, "the graph has no 'input_ids' input");
  if (past_layers.empty()) {
    Invalid(file,
            "the graph has no past_key_values.{i}.key|value inputs; export it with a KV cache "
            "(Optimum: --task text-generation-with-past)");
  }
  const auto layers = static_cast<int64_t>(past_layers.size());
  for (int64_t i = 0; i < layers; ++i) {
    auto it = past_layers.find(i);
    if (it == past_layers.end() || it->second != 3) {
      Invalid(file, "missing input past_key_values." + std::to_string(i) +
                        (it == past_layers.end() || !(it->second & 1) ? ".key" : ".value"));
    }
  }
  spec.numLayers = Resolve(file, "the number of layers", layers, config.numLayers);

  const TensorInfo* logits = Find(outputs, "logits");
  if (!logits) Invalid(file, "the graph has no 'logits' output");
  if (logits->shape.size() != 3) Invalid(file, "output 'logits' must have rank 3 [batch, sequence, vocab]");
  if (logits->dtype != DType::kFloat32 && logits->dtype != DType::kFloat16) {
    Invalid(file, "output 'logits' is " + logits->dtypeName + ", expected float32 or float16");
  }
  spec.logitsDtype = logits->dtype;
  spec.vocabSize = Resolve(file, "the vocabulary size", logits->shape[2], config.vocabSize);

  const TensorInfo* first = Find(inputs, "past_key_values.0.key");
  if (first->shape.size() != 4)
    Invalid(file, "input 'past_key_values.0.key' must have rank 4 [batch, heads, sequence, head_dim]");
  spec.kvDtype = first->dtype;
  if (spec.kvDtype != DType::kFloat32 && spec.kvDtype != DType::kFloat16) {
    Invalid(file, "the KV cache is " + first->dtypeName + "; tokmeter supports float32 and float16");
  }
  spec.numKvHeads = Resolve(file, "the number of KV heads", first->shape[1], config.numKvHeads);
  spec.headDim = Resolve(file, "the head size", first->shape[3], config.headDim);

  for (int64_t i = 0; i < spec.numLayers; ++i) {
    for (const char* kind : {"key", "value"}) {
      const std::string past = "past_key_values." + std::to_string(i) + "." + kind;
      const std::string present = "present." + std::to_string(i) + "." + kind;
      const TensorInfo* p = Find(inputs, past);
      const TensorInfo* q = Find(outputs, present);
      if (!q) Invalid(file, "missing output '" + present + "' (the graph has input '" + past + "')");
      for (const TensorInfo* t : {p, q}) {
        if (t->dtype != spec.kvDtype)
          Invalid(file,
                  "'" + t->name + "' is " + t->dtypeName + " but past_key_values.0.key is " + DTypeName(spec.kvDtype));
        if (t->shape.size() != 4) Invalid(file, "'" + t->name + "' must have rank 4");
        if ((t->shape[1] > 0 && t->shape[1] != spec.numKvHeads) || (t->shape[3] > 0 && t->shape[3] != spec.headDim)) {
          Invalid(file, "'" + t->name + "' does not have " + std::to_string(spec.numKvHeads) + " heads of size " +
                            std::to_string(spec.headDim));
        }
      }
      spec.pastNames.push_back(past);
      spec.presentNames.push_back(present);
    }
  }
  if (config.contextLength <= 0) Invalid(file, "config.json gives no context length (max_position_embeddings)");
  return spec;
}

}  // namespace tokmeter::engine
