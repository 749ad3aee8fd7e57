// StripAccents: every combining mark dropped, as the reference's filter does it (no decomposition of its own: files
// put an NFD or NFKD before it). The marks are the reference's (all of M in its unicode-normalization tables,
// ref_chars.h), not BertNormalizer's nonspacing marks.
#include <memory>
#include <string>

#include "tokenizer/normalizers/components.h"
#include "tokenizer/ref_chars.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer::normalizers {
namespace {

class StripAccents final : public Normalizer {
 public:
  bool Apply(std::string_view in, std::string& out, RegexScratch&) const override {
    size_t i = 0;
    while (i < in.size() && static_cast<unsigned char>(in[i]) < 0xCC) ++i;  // U+0300 is the first mark: CC 80
    if (i == in.size()) return false;
    out.assign(in.data(), i);
    while (i < in.size()) {
      const size_t at = i;
      if (!unicode::IsStripAccentsMark(utf8::Next(in, i))) out.append(in.data() + at, i - at);
    }
    return true;
  }
};

}  // namespace

std::unique_ptr<Normalizer> StripAccentsFromJson(const json::Value&, const std::string&) {
  return std::make_unique<StripAccents>();
}

}  // namespace tokmeter::tokenizer::normalizers
