// Normalizer: one stage of text normalization (NFC, Lowercase, Replace, ...). Immutable and thread-safe.
// Apply() returns false when the text is unchanged (out untouched), true when out holds the new text.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/spec.h"

namespace tokmeter::tokenizer {

class RegexScratch;

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual bool Apply(std::string_view in, std::string& out, RegexScratch& rx) const = 0;
};

// Builds one stage; throws ERR_TOKENIZER_SPEC naming `field` for an invalid description.
std::unique_ptr<Normalizer> MakeNormalizer(const NormalizerSpec& spec, const std::string& field);

// A chain of stages. Normalize() returns a view of `in` itself when nothing changed, else of one of the buffers.
class NormalizerChain {
 public:
  explicit NormalizerChain(const std::vector<NormalizerSpec>& specs);
  bool empty() const { return stages_.empty(); }
  std::string_view Normalize(std::string_view in, std::string& buf_a, std::string& buf_b, RegexScratch& rx) const;

 private:
  std::vector<std::unique_ptr<Normalizer>> stages_;
};

}  // namespace tokmeter::tokenizer
