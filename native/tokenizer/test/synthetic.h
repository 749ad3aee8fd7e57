// Synthetic tokenizers and timing for the native tokenizer tests (the harness itself: native/test/test_util.h).
#pragma once

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "test/test_util.h"
#include "tokenizer/json_value.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tt {
using namespace tmtest;  // tt::RunAll, tt::Ids
}  // namespace tt

namespace tt {
using namespace tokmeter::tokenizer;

// `s` as a JSON string literal (UTF-8 kept as is; quotes, backslashes and control characters escaped).
inline std::string J(std::string_view s) { return tokmeter::tokenizer::json::Stringify(s); }

// One added_tokens entry.
inline std::string AddedJson(uint32_t id, std::string_view content, bool special, bool normalized = false,
                             bool lstrip = false, bool rstrip = false, bool single_word = false) {
  auto b = [](bool v) { return v ? "true" : "false"; };
  return "{\"id\":" + std::to_string(id) + ",\"content\":" + J(content) + ",\"special\":" + b(special) +
         ",\"normalized\":" + b(normalized) + ",\"lstrip\":" + b(lstrip) + ",\"rstrip\":" + b(rstrip) +
         ",\"single_word\":" + b(single_word) + "}";
}

// A JSON object token -> id over `tokens` (ids are the indices).
inline std::string VocabJson(const std::vector<std::string>& tokens) {
  std::string v = "{";
  for (size_t id = 0; id < tokens.size(); ++id) v += (id ? "," : "") + J(tokens[id]) + ":" + std::to_string(id);
  return v + "}";
}

// A tokenizer.json document assembled from the JSON text of its parts.
struct Doc {
  std::string model = "null", normalizer = "null", pre_tokenizer = "null", post_processor = "null", decoder = "null";
  std::vector<std::string> added;  // added_tokens entries
  std::string Text() const {
    std::string a = "[";
    for (size_t i = 0; i < added.size(); ++i) a += (i ? "," : "") + added[i];
    a += "]";
    return "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":" + a +
           ",\"normalizer\":" + normalizer + ",\"pre_tokenizer\":" + pre_tokenizer +
           ",\"post_processor\":" + post_processor + ",\"decoder\":" + decoder + ",\"model\":" + model + "}";
  }
  std::shared_ptr<const Tokenizer> Build(const LoadOptions& options = {}) const {
    return Tokenizer::FromJson(Text(), options);
  }
};

// A byte-level BPE vocabulary: the 256 byte tokens (in the GPT-2 alphabet), then one token per merge.
struct ByteBpeBuilder {
  std::vector<std::string> vocab;  // byte-level alphabet
  std::vector<std::pair<uint32_t, uint32_t>> merges;
  Doc doc;
  ByteBpeBuilder() {
    for (int b = 0; b < 256; ++b) vocab.push_back(BytesToByteLevel(std::string(1, static_cast<char>(b))));
    doc.pre_tokenizer = R"({"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true})";
    doc.decoder = R"({"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true})";
  }
  uint32_t Size() const { return static_cast<uint32_t>(vocab.size()); }
  uint32_t Id(const std::string& bytes) const {
    std::string bl = BytesToByteLevel(bytes);
    for (uint32_t i = 0; i < vocab.size(); ++i)
      if (vocab[i] == bl) return i;
    std::abort();
  }
  // Adds the merge of two existing tokens (raw bytes); returns the new id.
  uint32_t Merge(const std::string& a, const std::string& b) {
    merges.emplace_back(Id(a), Id(b));
    vocab.push_back(BytesToByteLevel(a + b));
    return Size() - 1;
  }
  // model JSON; merges as [left, right] pairs or (as_strings) "left right" strings.
  std::string Model(bool as_strings = false) const {
    std::string m = "[";
    for (size_t r = 0; r < merges.size(); ++r) {
      const std::string &a = vocab[merges[r].first], &b = vocab[merges[r].second];
      m += (r ? "," : "") + (as_strings ? J(a + " " + b) : "[" + J(a) + "," + J(b) + "]");
    }
    return "{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"vocab\":" + VocabJson(vocab) + ",\"merges\":" + m +
           "]}";
  }
  Doc Document() const {
    Doc d = doc;
    d.model = Model();
    return d;
  }
  std::shared_ptr<const Tokenizer> Build() const { return Document().Build(); }
};

inline double Seconds(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace tt
