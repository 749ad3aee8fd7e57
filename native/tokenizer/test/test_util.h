// Minimal test harness and synthetic tokenizers for the native tokenizer tests.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "tokenizer/decoders/decoder.h"
#include "tokenizer/spec.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace tt {
inline int failures = 0;
inline std::vector<std::pair<const char*, std::function<void()>>>& Registry() {
  static std::vector<std::pair<const char*, std::function<void()>>> r;
  return r;
}
struct Reg {
  Reg(const char* n, std::function<void()> f) { Registry().emplace_back(n, std::move(f)); }
};
inline int RunAll() {
  for (auto& [name, fn] : Registry()) {
    int before = failures;
    try {
      fn();
    } catch (const std::exception& e) {
      std::printf("  exception: %s\n", e.what());
      ++failures;
    }
    std::printf("%s %s\n", failures == before ? "ok  " : "FAIL", name);
  }
  std::printf("%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
inline std::string Ids(const std::vector<uint32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}
}  // namespace tt

#define TEST(name)                        \
  static void name();                     \
  static tt::Reg reg_##name(#name, name); \
  static void name()
#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::printf("  %s:%d: CHECK(%s)\n", __FILE__, __LINE__, #cond); \
      ++tt::failures;                                                 \
    }                                                                 \
  } while (0)
#define CHECK_EQ(a, b)                                                \
  do {                                                                \
    auto va = (a);                                                    \
    auto vb = (b);                                                    \
    if (!(va == vb)) {                                                \
      std::printf("  %s:%d: %s != %s\n", __FILE__, __LINE__, #a, #b); \
      ++tt::failures;                                                 \
    }                                                                 \
  } while (0)
#define CHECK_THROWS_CODE(expr, code_)                                                 \
  do {                                                                                 \
    bool thrown = false;                                                               \
    try {                                                                              \
      (void)(expr);                                                                    \
    } catch (const tokmeter::Error& e) {                                               \
      thrown = e.code() == (code_);                                                    \
      if (!thrown) std::printf("  code %s: %s\n", e.code().c_str(), e.what());         \
    }                                                                                  \
    if (!thrown) {                                                                     \
      std::printf("  %s:%d: %s did not throw %s\n", __FILE__, __LINE__, #expr, code_); \
      ++tt::failures;                                                                  \
    }                                                                                  \
  } while (0)

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
