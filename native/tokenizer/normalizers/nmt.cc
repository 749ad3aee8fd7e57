// Nmt: SentencePiece's nmt_nfkc clean-up without the NFKC, as the reference has it. Removed: the C0 controls
// U+0001-U+0008, U+000B, U+000E-U+001F, and U+007F, U+008F, U+009F (U+0000 stays). Replaced by a space: U+0009,
// U+000A, U+000C, U+000D, U+1680, U+200B-U+200F, U+2028, U+2029, U+2581, U+FEFF, U+FFFD.
#include <memory>
#include <string>

#include "tokenizer/normalizers/components.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer::normalizers {
namespace {

bool Removed(char32_t c) {
  return (c >= 0x01 && c <= 0x08) || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || c == 0x8F || c == 0x9F;
}
bool ToSpace(char32_t c) {
  return c == 0x09 || c == 0x0A || c == 0x0C || c == 0x0D || c == 0x1680 || (c >= 0x200B && c <= 0x200F) ||
         c == 0x2028 || c == 0x2029 || c == 0x2581 || c == 0xFEFF || c == 0xFFFD;
}

class Nmt final : public Normalizer {
 public:
  bool Apply(std::string_view in, std::string& out, RegexScratch&) const override {
    bool changed = false;
    for (size_t i = 0; i < in.size() && !changed;) {
      const char32_t c = utf8::Next(in, i);
      changed = Removed(c) || ToSpace(c);
    }
    if (!changed) return false;
    out.clear();
    out.reserve(in.size());
    for (size_t i = 0; i < in.size();) {
      const size_t at = i;
      const char32_t c = utf8::Next(in, i);
      if (Removed(c)) continue;
      if (ToSpace(c))
        out.push_back(' ');
      else
        out.append(in.data() + at, i - at);
    }
    return true;
  }
};

}  // namespace

std::unique_ptr<Normalizer> NmtFromJson(const json::Value&, const std::string&) { return std::make_unique<Nmt>(); }

}  // namespace tokmeter::tokenizer::normalizers
