// GraphSpec — discovers how a decoder-only ONNX graph (Hugging Face / Optimum layout) takes its KV cache, from the
// graph's input and output names and shapes, checked against ModelConfig.
//
// Recognised inputs: input_ids (int64, required), attention_mask (int64, optional), position_ids (int64, optional),
// past_key_values.{i}.key / .value; outputs: logits, present.{i}.key / .value. KV tensors are
// [batch, kv_heads, sequence, head_dim] in float32 or float16 (all the same dtype). Anything else is an error that
// names the unexpected or missing tensor. Plain C++ over TensorInfo: no ORT calls, unit-tested without a model.
#pragma once

#include <string>
#include <vector>

#include "engine/model_config.h"
#include "engine/tensor.h"

namespace tokmeter::engine {

struct GraphSpec {
  int64_t numLayers = 0;
  int64_t numKvHeads = 0;
  int64_t headDim = 0;
  int64_t vocabSize = 0;
  DType kvDtype = DType::kFloat32;
  DType logitsDtype = DType::kFloat32;
  bool hasAttentionMask = false;
  bool hasPositionIds = false;
  std::vector<std::string> pastNames;       // 2 per layer: key, value
  std::vector<std::string> presentNames;    // 2 per layer: key, value
  size_t KvBytesPerToken() const noexcept;  // all layers, key and value, batch 1
};

// `file` names the graph in error messages.
GraphSpec DiscoverGraph(const std::vector<TensorInfo>& inputs, const std::vector<TensorInfo>& outputs,
                        const ModelConfig& config, const std::string& file);

}  // namespace tokmeter::engine
