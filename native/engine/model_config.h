// ModelConfig — what the engine needs from a model folder's config.json and generation_config.json, as a plain
// struct. Decision: the JSON files are parsed in TypeScript (src/model/config.ts), which already has a JSON parser
// and reports precise field errors; the addon copies the numbers into this struct on the JS thread.
// The engine cross-checks every number against the ONNX graph (graph_spec.h), so a config that disagrees with the
// graph is an error, not a silent guess.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tokmeter::engine {

struct ModelConfig {
  std::string modelType;              // config.json model_type (informative)
  int64_t numLayers = 0;              // num_hidden_layers (n_layer); 0: take from the graph
  int64_t numKvHeads = 0;             // num_key_value_heads (else num_attention_heads); 0: from the graph
  int64_t headDim = 0;                // head_dim (else hidden_size / num_attention_heads); 0: from the graph
  int64_t vocabSize = 0;              // vocab_size; 0: from the graph
  int64_t contextLength = 0;          // max_position_embeddings (n_positions); required
  std::vector<uint32_t> eosTokenIds;  // generation_config.json eos_token_id (else config.json), a list
};

}  // namespace tokmeter::engine
