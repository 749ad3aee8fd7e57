// Synthetic tokenizers and timing for the native tokenizer tests (the harness itself: native/test/test_util.h).
#pragma once

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "test/test_util.h"
#include "tokenizer/decoders/decoder.h"
#include "tokenizer/spec.h"
#include "tokenizer/tokenizer.h"

namespace tt {
using namespace tmtest;  // tt::RunAll, tt::Ids
}  // namespace tt

namespace tt {
using namespace tokmeter::tokenizer;

// A byte-level BPE vocabulary: the 256 byte tokens (in the GPT-2 alphabet), then one token per merge.
struct ByteBpeBuilder {
  Spec spec;
  ByteBpeBuilder() {
    spec.model.kind = ModelSpec::Kind::kBPE;
    for (int b = 0; b < 256; ++b) {
      std::string s(1, static_cast<char>(b));
      spec.model.vocab.push_back(BytesToByteLevel(s));
      spec.model.present.push_back(true);
    }
    PreTokenizerSpec bl;
    bl.kind = PreTokenizerSpec::Kind::kByteLevel;
    bl.use_regex = true;
    spec.pre_tokenizers.push_back(bl);
    DecoderSpec d;
    d.kind = DecoderSpec::Kind::kByteLevel;
    spec.decoders.push_back(d);
    spec.has_decoder = true;
  }
  uint32_t Id(const std::string& bytes) const {
    std::string bl = BytesToByteLevel(bytes);
    for (uint32_t i = 0; i < spec.model.vocab.size(); ++i)
      if (spec.model.vocab[i] == bl) return i;
    std::abort();
  }
  // Adds the merge of two existing tokens (raw bytes); returns the new id.
  uint32_t Merge(const std::string& a, const std::string& b) {
    uint32_t ia = Id(a), ib = Id(b);
    spec.model.merges.emplace_back(ia, ib);
    spec.model.vocab.push_back(BytesToByteLevel(a + b));
    spec.model.present.push_back(true);
    return static_cast<uint32_t>(spec.model.vocab.size() - 1);
  }
};

inline double Seconds(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace tt
