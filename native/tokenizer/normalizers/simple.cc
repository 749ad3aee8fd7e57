// Lowercase, Replace, Prepend, Strip, BertNormalizer, and the chain/factory.
#include <memory>

#include "tokenizer/normalizers/normalizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tokmeter::tokenizer {

std::unique_ptr<Normalizer> MakeUnicodeForm(NormalizerSpec::Kind kind);

namespace {

class Lowercase final : public Normalizer {
 public:
  bool Apply(std::string_view in, std::string& out, RegexScratch&) const override {
    out.clear();
    out.reserve(in.size());
    for (size_t i = 0; i < in.size();) unicode::AppendLower(out, utf8::Next(in, i));
    return true;
  }
};

class Replace final : public Normalizer {
 public:
  Replace(const NormalizerSpec& s, const std::string& field) : pattern_(s.pattern), content_(s.content) {
    if (s.is_regex)
      regex_ = std::make_unique<Regex>(s.pattern, field + ".pattern.Regex");
    else if (s.pattern.empty())
      throw tokmeter::Error("ERR_TOKENIZER_SPEC", field + ".pattern.String: must not be empty");
  }
  bool Apply(std::string_view in, std::string& out, RegexScratch& rx) const override {
    out.clear();
    size_t prev = 0;
    bool changed = false;
    auto on_match = [&](size_t b, size_t e) {
      if (b == e) return;
      out.append(in.data() + prev, b - prev);
      out += content_;
      prev = e;
      changed = true;
    };
    if (regex_) {
      regex_->FindAll(in, rx, on_match);
    } else {
      for (size_t pos = in.find(pattern_); pos != std::string_view::npos;
           pos = in.find(pattern_, pos + pattern_.size()))
        on_match(pos, pos + pattern_.size());
    }
    if (!changed) return false;
    out.append(in.data() + prev, in.size() - prev);
    return true;
  }

 private:
  std::string pattern_, content_;
  std::unique_ptr<Regex> regex_;
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string p) : prefix_(std::move(p)) {}
  bool Apply(std::string_view in, std::string& out, RegexScratch&) const override {
    if (in.empty()) return false;
    out.assign(prefix_);
    out.append(in);
    return true;
  }

 private:
  std::string prefix_;
};

class Strip final : public Normalizer {
 public:
  Strip(bool l, bool r) : left_(l), right_(r) {}
  bool Apply(std::string_view in, std::string& out, RegexScratch&) const override {
    size_t b = 0, e = in.size();
    if (left_) {
      while (b < e) {
        size_t i = b;
        if (!unicode::IsWhitespace(utf8::Next(in, i))) break;
        b = i;
      }
    }
    if (right_) {
      while (e > b) {
        size_t s = e - 1;
        while (s > b && (static_cast<unsigned char>(in[s]) & 0xC0) == 0x80) --s;
        size_t i = s;
        if (!unicode::IsWhitespace(utf8::Next(in, i))) break;
        e = s;
      }
    }
    if (b == 0 && e == in.size()) return false;
    out.assign(in.substr(b, e - b));
    return true;
  }

 private:
  bool left_, right_;
};

class Bert final : public Normalizer {
 public:
  explicit Bert(const NormalizerSpec& s)
      : clean_(s.clean_text),
        chinese_(s.handle_chinese_chars),
        lower_(s.lowercase),
        strip_accents_(s.strip_accents.value_or(s.lowercase)),
        nfd_(MakeUnicodeForm(NormalizerSpec::Kind::kNFD)) {}
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

std::unique_ptr<Normalizer> MakeNormalizer(const NormalizerSpec& s, const std::string& field) {
  using K = NormalizerSpec::Kind;
  switch (s.kind) {
    case K::kNFC:
    case K::kNFD:
    case K::kNFKC:
    case K::kNFKD: return MakeUnicodeForm(s.kind);
    case K::kLowercase: return std::make_unique<Lowercase>();
    case K::kReplace: return std::make_unique<Replace>(s, field);
    case K::kPrepend: return std::make_unique<Prepend>(s.content);
    case K::kStrip: return std::make_unique<Strip>(s.left, s.right);
    case K::kBert: return std::make_unique<Bert>(s);
  }
  throw tokmeter::Error("ERR_TOKENIZER_SPEC", field + ": unknown normalizer kind");
}

NormalizerChain::NormalizerChain(const std::vector<NormalizerSpec>& specs) {
  for (size_t i = 0; i < specs.size(); ++i)
    stages_.push_back(MakeNormalizer(specs[i], "normalizer[" + std::to_string(i) + "]"));
}

std::string_view NormalizerChain::Normalize(std::string_view in, std::string& a, std::string& b,
                                            RegexScratch& rx) const {
  std::string_view cur = in;
  std::string* next = &a;
  for (const auto& st : stages_) {
    if (st->Apply(cur, *next, rx)) {
      cur = *next;
      next = (next == &a) ? &b : &a;
    }
  }
  return cur;
}

}  // namespace tokmeter::tokenizer
