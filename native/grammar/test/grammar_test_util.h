// Helpers for the grammar tests: a small vocabulary with multi-byte and multi-terminal tokens, a brute-force mask
// (each token tried byte by byte on a copy of the matcher), random walks under the mask.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/matcher.h"
#include "grammar/vocabulary.h"
#include "test/test_util.h"

namespace gt {

using namespace tokmeter::grammar;

// Plain vocabulary: printable ASCII bytes, every byte 0x80-0xFF alone (byte fallback), and multi-byte tokens that
// span JSON terminals, split UTF-8 characters, and a special token. EOS is the last id.
inline std::shared_ptr<const Vocabulary> TestVocab(uint32_t* eosOut = nullptr) {
  VocabularyInput in;
  in.kind = VocabKind::kPlain;
  for (int c = 0x20; c < 0x7F; ++c) in.tokens.push_back(std::string(1, static_cast<char>(c)));
  in.tokens.push_back("\n");
  in.tokens.push_back("\t");
  for (int c = 0x80; c < 0x100; ++c) in.tokens.push_back(std::string(1, static_cast<char>(c)));
  for (const char* t : {"{\"",          "\"}",          "},{\"",
                        "\":",          "\": \"",       "\", \"",
                        "\":\"",        "\",\"",        "true",
                        "false",        "null",         "123",
                        "0.5",          "-1",           "\"a",
                        "abc",          " {",           "\n  ",
                        "\n",           "  ",           "[{",
                        "}]",           "]}",           "[]",
                        "{}",           "\"name\"",     "name",
                        "\":[",         "],",           "\xC3\xA9",
                        "\xE4\xBD\xA0", "\xE4\xBD",     "\xF0\x9F\x98\x80",
                        "\xF0\x9F",     "\x98\x80",     "\\n",
                        "\\\"",         "\\u00e9",      "e9",
                        "00",           "2024-",        "-01",
                        "T12",          ":00",          "Z\"",
                        "<tool_call>",  "</tool_call>", "\n<",
                        "f\"",          "\"f",          "arguments",
                        "\": {",        "}}",           "}\n"}) {
    in.tokens.push_back(t);
  }
  in.tokens.push_back("<|special|>");
  in.special.assign(in.tokens.size(), false);
  in.special.back() = true;
  in.tokens.push_back("<|eos|>");
  in.special.push_back(true);
  const uint32_t eos = static_cast<uint32_t>(in.tokens.size() - 1);
  in.eos = {eos};
  if (eosOut) *eosOut = eos;
  return Vocabulary::Build(in);
}

inline bool Bit(const std::vector<uint64_t>& m, uint32_t id) { return (m[id >> 6] >> (id & 63)) & 1; }

// The mask a byte-by-byte trial of every token gives.
inline std::vector<uint64_t> BruteMask(const Matcher& m) {
  const Vocabulary& v = m.grammar().vocabulary();
  std::vector<uint64_t> mask(m.grammar().maskWords(), 0);
  for (uint32_t id = 0; id < v.size(); ++id) {
    if (!v.usable(id)) continue;
    Matcher copy(m);
    if (copy.AcceptBytes(v.bytes(id))) mask[id >> 6] |= 1ull << (id & 63);
  }
  bool any = false;
  for (uint64_t w : mask) any = any || w;
  if (m.complete() || !any) {
    for (uint32_t e : v.eos()) mask[e >> 6] |= 1ull << (e & 63);
  }
  return mask;
}

struct WalkResult {
  std::string text;
  bool finished = false;  // ended with EOS
  bool masksMatched = true;
};

// Samples uniformly among allowed tokens; optionally checks each mask against the brute force.
inline WalkResult RandomWalk(const std::shared_ptr<const Grammar>& g, uint64_t seed, size_t maxTokens, bool brute) {
  std::mt19937_64 rng(seed);
  Matcher m(g);
  WalkResult r;
  std::vector<uint64_t> mask(g->maskWords());
  const Vocabulary& v = g->vocabulary();
  std::vector<uint32_t> allowed;
  for (size_t step = 0; step < maxTokens; ++step) {
    m.FillMask(mask);
    if (brute && BruteMask(m) != mask) {
      r.masksMatched = false;
      std::printf("  mask mismatch after '%s'\n", r.text.c_str());
      const auto b = BruteMask(m);
      for (uint32_t id = 0; id < v.size(); ++id) {
        if (Bit(b, id) != Bit(mask, id))
          std::printf("    id %u '%s' brute=%d mask=%d\n", id, std::string(v.bytes(id)).c_str(), Bit(b, id),
                      Bit(mask, id));
      }
      return r;
    }
    allowed.clear();
    for (uint32_t id = 0; id < v.size(); ++id) {
      if (Bit(mask, id)) allowed.push_back(id);
    }
    if (allowed.empty()) return r;
    const uint32_t tok = allowed[rng() % allowed.size()];
    if (!m.Accept(tok)) {
      std::printf("  Accept refused an allowed token %u after '%s'\n", tok, r.text.c_str());
      r.masksMatched = false;
      return r;
    }
    if (m.terminated()) {
      r.finished = true;
      return r;
    }
    r.text += v.bytes(tok);
  }
  return r;
}

inline std::shared_ptr<const Grammar> Compile(const std::string& spec) { return Grammar::Compile(spec, TestVocab()); }
inline std::shared_ptr<const Grammar> Schema(const std::string& schema) {
  return Compile(R"({"type":"json_schema","schema":)" + schema + "}");
}

// Whether the matcher (fresh) accepts exactly `text` as a complete document.
inline bool Accepts(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  Matcher m(g);
  return m.AcceptBytes(text) && m.complete();
}

}  // namespace gt
