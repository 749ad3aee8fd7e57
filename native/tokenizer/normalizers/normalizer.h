// Normalizer: one stage of text normalization (NFC, Lowercase, Replace, ...). Immutable and thread-safe.
// Apply() returns false when the text is unchanged (out untouched), true when out holds the new text.
//
// Construction: NormalizerChain::FromJson reads tokenizer.json's "normalizer" value. It dispatches on "type" in one
// place (normalizer.cc, which also flattens Sequence); each component reads its own fields in its own file
// (components.h). Errors name the JSON path: ERR_TOKENIZER_SPEC for a malformed field, ERR_TOKENIZER_UNSUPPORTED
// for a type tokmeter does not implement.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tokmeter::tokenizer {

namespace json {
class Value;
}
class RegexScratch;

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual bool Apply(std::string_view in, std::string& out, RegexScratch& rx) const = 0;
};

// A chain of stages. Normalize() returns a view of `in` itself when nothing changed, else of one of the buffers.
class NormalizerChain {
 public:
  // `v` is tokenizer.json's "normalizer" (nullptr or null: no normalization), `path` its name in messages.
  static std::unique_ptr<NormalizerChain> FromJson(const json::Value* v, const std::string& path);
  bool empty() const { return stages_.empty(); }
  std::string_view Normalize(std::string_view in, std::string& buf_a, std::string& buf_b, RegexScratch& rx) const;

 private:
  NormalizerChain() = default;
  void Add(const json::Value& v, const std::string& path, int depth);
  std::vector<std::unique_ptr<Normalizer>> stages_;
};

}  // namespace tokmeter::tokenizer
