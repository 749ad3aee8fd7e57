// BertNormalizer: control characters dropped, whitespace to spaces, CJK characters spaced, accents stripped, lowercased
// (each optional).
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
    a.reserve(in.size());
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
    if (strip_accents_) {
      std::string d;
      if (nfd_->Apply(a, d, rx)) a.swap(d);
      std::string b;
      b.reserve(a.size());
      for (size_t i = 0; i < a.size();) {
        char32_t c = utf8::Next(a, i);
        if (!unicode::IsNonspacingMark(c)) utf8::Append(b, c);
      }
      a.swap(b);
    }
    if (lower_) {
      out.clear();
      for (size_t i = 0; i < a.size();) unicode::AppendLower(out, utf8::Next(a, i));
    } else {
      out.swap(a);
    }
    return true;
  }

 private:
  bool clean_, chinese_, lower_, strip_accents_;
  std::unique_ptr<Normalizer> nfd_;
};

}  // namespace

std::unique_ptr<Normalizer> BertFromJson(const json::Value& o, const std::string& path) {
  const bool lowercase = json::Bool(o, "lowercase", path, true);
  // strip_accents: null means "same as lowercase".
  const bool strip_accents = json::Bool(o, "strip_accents", path, lowercase);
  return std::make_unique<Bert>(json::Bool(o, "clean_text", path, true),
                                json::Bool(o, "handle_chinese_chars", path, true), lowercase, strip_accents);
}

}  // namespace tokmeter::tokenizer::normalizers
