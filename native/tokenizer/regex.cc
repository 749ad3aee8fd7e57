#include "tokenizer/regex.h"

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tokmeter::tokenizer {
namespace {
// White_Space property (Oniguruma's Unicode \s).
constexpr const char* kSpaceBody =
    "\\t\\n\\x0B\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";
// Oniguruma's Unicode \w: Letter | Mark | Decimal_Number | Connector_Punctuation.
const std::string& WordBody() {
  using namespace unicode;  // NOLINT(google-build-using-namespace)
  return ClassBody(kLetter | kMark | Bit(kNd) | Bit(kPc));
}
const std::string& DigitBody() { return unicode::ClassBody(unicode::Bit(unicode::kNd)); }

// \p{Name}, \P{Name} or \p{^Name} at p[i] (p[i] == '\\') naming a general category, a script, a binary property
// or a block: its length, and the class body of its code points (complemented when negated) from our tables (the
// reference's Unicode version and its engine's meaning: \p{Han} is the Script property, where PCRE2 would use
// Script_Extensions). 0 for any other name, which PCRE2 then reads itself.
size_t PropertyAt(std::string_view p, size_t i, const std::string*& body) {
  if (i + 3 >= p.size() || (p[i + 1] != 'p' && p[i + 1] != 'P') || p[i + 2] != '{') return 0;
  size_t close = p.find('}', i + 3);
  if (close == std::string_view::npos) return 0;
  std::string_view name = p.substr(i + 3, close - i - 3);
  bool negate = p[i + 1] == 'P';
  if (!name.empty() && name[0] == '^') {
    negate = !negate;
    name.remove_prefix(1);
  }
  if (unicode::GcSet set = unicode::CategoriesByName(name)) {
    if (negate) set = ~set & ((unicode::GcSet{1} << unicode::kGcCount) - 1);
    body = &unicode::ClassBody(set);
  } else {
    body = unicode::PropertyClassBody(name, negate);
    if (!body) return 0;
  }
  return close + 1 - i;
}
}  // namespace

std::string TranslateOnigPattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      // Unicode properties come from our own tables (the reference's Unicode version; PCRE2's may be older).
      const std::string* prop = nullptr;
      if (size_t len = PropertyAt(p, i, prop)) {
        if (in_class) {
          out += *prop;
        } else if (prop->empty()) {
          out += "(?!)";  // no code point (\p{Cs}: surrogates are not characters here; \P{Any})
        } else {
          out += '[';
          out += *prop;
          out += ']';
        }
        i += len - 1;
        continue;
      }
      char e = p[i + 1];
      const char* body = nullptr;
      bool negate = false;
      switch (e) {
        case 's': body = kSpaceBody; break;
        case 'S':
          body = kSpaceBody;
          negate = true;
          break;
        case 'w': body = WordBody().c_str(); break;
        case 'W':
          body = WordBody().c_str();
          negate = true;
          break;
        case 'd': body = DigitBody().c_str(); break;
        case 'D':
          body = DigitBody().c_str();
          negate = true;
          break;
        default: break;
      }
      if (body) {
        if (in_class && negate) {
          // A negated shorthand inside a class cannot be expanded into the class body.
          throw tokmeter::Error("ERR_TOKENIZER_SPEC",
                                std::string("unsupported regex construct \\") + e + " inside a character class");
        }
        if (in_class) {
          out += body;
        } else {
          out += negate ? "[^" : "[";
          out += body;
          out += "]";
        }
      } else {
        out.push_back(c);
        out.push_back(e);
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < p.size() && p[i + 1] == '^') {
        out.push_back('^');
        ++i;
      }
      if (i + 1 < p.size() && p[i + 1] == ']') {
        out += "\\]";
        ++i;
      }
      continue;
    }
    if (in_class && c == '[') {
      // Nested classes ([a-z&&[^aeiou]]) and POSIX classes are Oniguruma features we do not translate.
      if (i + 1 < p.size() && p[i + 1] == ':') {
        out.push_back(c);
        continue;
      }
      throw tokmeter::Error("ERR_TOKENIZER_SPEC", "unsupported regex construct: nested character class");
    }
    if (in_class && c == ']') in_class = false;
    out.push_back(c);
  }
  return out;
}

RegexScratch::RegexScratch() {
  match_data_ = pcre2_match_data_create(4, nullptr);
  match_context_ = pcre2_match_context_create(nullptr);
  jit_stack_ = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
  pcre2_jit_stack_assign(static_cast<pcre2_match_context*>(match_context_), nullptr, jit_stack_);
}

RegexScratch::~RegexScratch() {
  pcre2_match_data_free(static_cast<pcre2_match_data*>(match_data_));
  pcre2_match_context_free(static_cast<pcre2_match_context*>(match_context_));
  pcre2_jit_stack_free(static_cast<pcre2_jit_stack*>(jit_stack_));
}

Regex::Regex(std::string_view onig_pattern, std::string_view field) : field_(field) {
  try {
    source_ = TranslateOnigPattern(onig_pattern);
  } catch (const tokmeter::Error& e) {
    throw tokmeter::Error("ERR_TOKENIZER_SPEC", std::string(field) + ": " + e.what());
  }
  int err = 0;
  PCRE2_SIZE off = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source_.data()), source_.size(),
                        PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &off, nullptr);
  if (!code_) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    throw tokmeter::Error("ERR_TOKENIZER_SPEC", std::string(field) + ": regex does not compile at offset " +
                                                    std::to_string(off) + ": " + reinterpret_cast<char*>(buf));
  }
  // JIT is an optimisation: when unavailable, the interpreter gives the same results.
  jit_ = pcre2_jit_compile(static_cast<pcre2_code*>(code_), PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

bool Regex::ReplaceAll(std::string_view s, std::string_view content, std::string& out, RegexScratch& scratch) const {
  if (s.empty()) return false;
  out.clear();
  size_t prev = 0;
  bool changed = false;
  auto on_match = [&](size_t b, size_t e) {
    out.append(s.data() + prev, b - prev);
    out.append(content);
    prev = e;
    changed = true;
  };
  FindAll(s, scratch, on_match);
  if (!changed) return false;
  out.append(s.data() + prev, s.size() - prev);
  return true;
}

void Regex::FindAll(std::string_view s, RegexScratch& scratch, FnRef<void(size_t, size_t)> on_match) const {
  auto* code = static_cast<pcre2_code*>(code_);
  auto* md = static_cast<pcre2_match_data*>(scratch.match_data());
  auto* mc = static_cast<pcre2_match_context*>(scratch.match_context());
  auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t pos = 0;
  bool have_last = false;
  size_t last_end = 0;
  // The budget of one match attempt grows with the subject: linear patterns never reach it, exponential ones do.
  const uint64_t budget = kMatchBudgetBase + kMatchBudgetPerByte * static_cast<uint64_t>(s.size());
  const uint32_t limit = budget > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(budget);
  pcre2_set_match_limit(mc, limit);
  pcre2_set_depth_limit(mc, limit);
  while (pos <= s.size()) {
    // pcre2_jit_match: the same match as pcre2_match (which would call it), minus the option and UTF checks done
    // on every call (~3% of a count with cl100k's pattern, one call per piece).
    int rc = jit_ ? pcre2_jit_match(code, subject, s.size(), pos, 0, md, mc)
                  : pcre2_match(code, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, md, mc);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
        rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof buf);
      throw tokmeter::Error("ERR_TOKENIZER_REGEX_LIMIT", field_ + ": the regex exceeded its budget matching at byte " +
                                                             std::to_string(pos) + " of " + std::to_string(s.size()) +
                                                             " (" + reinterpret_cast<char*>(buf) +
                                                             "): it backtracks catastrophically on this input");
    }
    if (rc < 0) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof buf);
      throw tokmeter::Error("ERR_TOKENIZER_INTERNAL",
                            std::string("regex match failed: ") + reinterpret_cast<char*>(buf));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t b = ov[0], e = ov[1];
    if (b == e && have_last && last_end == e) {
      // Oniguruma's find_iter: no empty match right after the previous match; step one character.
      if (pos >= s.size()) return;
      pos += utf8::SeqLen(static_cast<unsigned char>(s[pos]));
      continue;
    }
    pos = e;
    have_last = true;
    last_end = e;
    on_match(b, e);
  }
}

}  // namespace tokmeter::tokenizer
