// BertNormalizer, in the reference's order: clean_text (drop U+0000, U+FFFD and the "other" characters of
// ref_chars.h, except \t \n \r; then every whitespace character becomes a space), handle_chinese_chars (a space on
// each side of every CJK ideograph), strip_accents (NFD, then drop the nonspacing marks), lowercase. strip_accents
// null follows lowercase. The character classes are the reference's (Unicode 8.0, NFD of Unicode 12: ref_chars.h),
// not the Unicode version of the rest of the pipeline.
#include <memory>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/normalizers/components.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer::normalizers {
namespace {

class Bert final : public Normalizer {
 public:
  Bert(bool clean_text, bool handle_chinese_chars, bool lowercase, bool strip_accents)
      : clean_(clean_text),
        chinese_(handle_chinese_chars),
        lower_(lowercase),
        strip_accents_(strip_accents),
        nfd_(UnicodeForm(Form::kNFD)) {}

  bool Apply(std::string_view in, std::string& out, RegexScratch& rx) const override {
    std::string a;
    a.reserve(in.size() + in.size() / 4);
    for (size_t i = 0; i < in.size();) {
      char32_t c = utf8::Next(in, i);
      if (clean_) {
        if (c == 0 || c == 0xFFFD || unicode::IsBertControl(c)) continue;
        if (unicode::IsWhitespace(c)) {
          a.push_back(' ');
          continue;
        }
      }
      if (chinese_ && unicode::IsChinese(c)) {
        a.push_back(' ');
        utf8::Append(a, c);
        a.push_back(' ');
        continue;
      }
      utf8::Append(a, c);
    }
    if (strip_accents_) StripAccents(a, rx);
    if (lower_) {
      out.clear();
      out.reserve(a.size());
      for (size_t i = 0; i < a.size();) unicode::AppendLower(out, utf8::Next(a, i));
    } else {
      out.swap(a);
    }
    return true;
  }

 private:
  // NFD (of the reference's Unicode version: normalizers/unicode_forms.cc), then the nonspacing marks dropped.
  void StripAccents(std::string& a, RegexScratch& rx) const {
    std::string d;
    if (nfd_->Apply(a, d, rx)) a.swap(d);
    std::string b;
    b.reserve(a.size());
    for (size_t i = 0; i < a.size();) {
      size_t s = i;
      if (!unicode::IsNonspacingMark(utf8::Next(a, i))) b.append(a, s, i - s);
    }
    a.swap(b);
  }

  bool clean_, chinese_, lower_, strip_accents_;
  std::unique_ptr<Normalizer> nfd_;
};

}  // namespace

std::unique_ptr<Normalizer> BertFromJson(const json::Value& o, const std::string& path) {
  const bool lowercase = json::Bool(o, "lowercase", path, true);
  // strip_accents: null (or absent) means "same as lowercase".
  const bool strip_accents = json::Bool(o, "strip_accents", path, lowercase);
  return std::make_unique<Bert>(json::Bool(o, "clean_text", path, true),
                                json::Bool(o, "handle_chinese_chars", path, true), lowercase, strip_accents);
}

}  // namespace tokmeter::tokenizer::normalizers
