#include "grammar/regex.h"

#include <algorithm>

#include "grammar/errors.h"
#include "util/utf8.h"

namespace tokmeter::grammar {

namespace {

constexpr uint32_t kMaxCp = 0x10FFFF;

void Normalize(CodeRanges& r) {
  std::sort(r.begin(), r.end());
  CodeRanges out;
  for (auto [lo, hi] : r) {
    if (lo > hi) continue;
    if (!out.empty() && lo <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, hi);
    } else {
      out.push_back({lo, hi});
    }
  }
  r = std::move(out);
}

CodeRanges Complement(CodeRanges r) {
  Normalize(r);
  CodeRanges out;
  uint32_t next = 0;
  for (auto [lo, hi] : r) {
    if (lo > next) out.push_back({next, lo - 1});
    next = hi + 1;
  }
  if (next <= kMaxCp) out.push_back({next, kMaxCp});
  return out;
}

void Remove(CodeRanges& r, uint32_t lo, uint32_t hi) {
  CodeRanges out;
  for (auto [a, b] : r) {
    if (b < lo || a > hi) {
      out.push_back({a, b});
      continue;
    }
    if (a < lo) out.push_back({a, lo - 1});
    if (b > hi) out.push_back({hi + 1, b});
  }
  r = std::move(out);
}

// UTF-8 byte-sequence ranges of code points [lo, hi] (same encoded length, no surrogates).
void SplitUtf8(ExprPool& pool, uint32_t lo, uint32_t hi, std::vector<ExprId>& alts) {
  static constexpr uint32_t kBounds[] = {0x7F, 0x7FF, 0xFFFF, kMaxCp};
  for (uint32_t b : kBounds) {
    if (lo <= b && hi > b) {
      SplitUtf8(pool, lo, b, alts);
      SplitUtf8(pool, b + 1, hi, alts);
      return;
    }
  }
  if (hi < 0x80) {
    alts.push_back(pool.Bytes({{static_cast<uint8_t>(lo), static_cast<uint8_t>(hi)}}));
    return;
  }
  const size_t n = utf8::Encode(lo).size();
  for (size_t i = 1; i < n; ++i) {
    const uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        SplitUtf8(pool, lo, lo | m, alts);
        SplitUtf8(pool, (lo | m) + 1, hi, alts);
        return;
      }
      if ((hi & m) != m) {
        SplitUtf8(pool, lo, (hi & ~m) - 1, alts);
        SplitUtf8(pool, hi & ~m, hi, alts);
        return;
      }
    }
  }
  const std::string a = utf8::Encode(lo), b = utf8::Encode(hi);
  std::vector<ExprId> seq;
  for (size_t k = 0; k < a.size(); ++k) {
    seq.push_back(pool.Bytes({{static_cast<uint8_t>(a[k]), static_cast<uint8_t>(b[k])}}));
  }
  alts.push_back(pool.Seq(std::move(seq)));
}

std::string JsonEscape(uint32_t cp) {
  static const char* kHex = "0123456789abcdef";
  switch (cp) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: break;
  }
  if (cp < 0x20) return std::string("\\u00") + kHex[cp >> 4] + kHex[cp & 15];
  return utf8::Encode(cp);
}

}  // namespace

bool CharClassExpr(ExprPool& pool, CodeRanges ranges, CharEncoding enc, ExprId& out) {
  Normalize(ranges);
  Remove(ranges, 0xD800, 0xDFFF);
  std::vector<ExprId> alts;
  if (enc == CharEncoding::kJsonString) {
    // Characters that a JSON string must escape become their escapes (only the few a schema would name).
    for (uint32_t special : {uint32_t{'"'}, uint32_t{'\\'}, uint32_t{'\n'}, uint32_t{'\t'}, uint32_t{'\r'},
                             uint32_t{'\b'}, uint32_t{'\f'}}) {
      for (auto [lo, hi] : ranges) {
        if (lo <= special && special <= hi) {
          alts.push_back(pool.Literal(JsonEscape(special)));
          break;
        }
      }
    }
    Remove(ranges, 0, 0x1F);
    Remove(ranges, '"', '"');
    Remove(ranges, '\\', '\\');
  }
  for (auto [lo, hi] : ranges) SplitUtf8(pool, lo, hi, alts);
  if (alts.empty()) return false;
  out = pool.Alt(std::move(alts));
  return true;
}

ExprId TextExpr(ExprPool& pool, std::string_view text, CharEncoding enc) {
  if (enc == CharEncoding::kRaw) return pool.Literal(text);
  std::string out;
  for (const char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == '"' || u == '\\') {
      out += JsonEscape(u);
    } else {
      out += c;
    }
  }
  return pool.Literal(out);
}

namespace {

class RegexParser {
 public:
  RegexParser(ExprPool& pool, std::string_view pattern, CharEncoding enc, const std::string& pointer,
              const std::string& keyword)
      : pool_(pool), enc_(enc), pointer_(pointer), keyword_(keyword) {
    size_t i = 0;
    while (i < pattern.size()) {
      uint32_t cp = 0;
      if (!utf8::NextChecked(pattern, i, cp)) Invalid("the pattern is not valid UTF-8");
      cps_.push_back(cp);
    }
  }

  RegexResult Run() {
    RegexResult r;
    if (!cps_.empty() && cps_[0] == '^') {
      r.anchoredStart = true;
      pos_ = 1;
    }
    size_t end = cps_.size();
    if (end > pos_ && cps_[end - 1] == '$' &&
        !(end >= 2 && cps_[end - 2] == '\\' && !EscapedBackslashBefore(end - 2))) {
      r.anchoredEnd = true;
      cps_.pop_back();
    }
    r.expr = ParseAlt(0);
    if (pos_ != cps_.size()) Invalid("unbalanced ')'");
    return r;
  }

 private:
  // Whether the backslash at `i` is itself escaped (odd run of backslashes before it).
  bool EscapedBackslashBefore(size_t i) const {
    size_t n = 0;
    while (i > 0 && cps_[i - 1] == '\\') --i, ++n;
    return n % 2 == 1;
  }
  [[noreturn]] void Invalid(const std::string& what) const {
    throw GrammarError(kErrInvalid, pointer_, keyword_, "invalid regular expression: " + what);
  }
  [[noreturn]] void Unsupported(const std::string& what) const {
    throw GrammarError(kErrUnsupported, pointer_, keyword_, "unsupported regular expression feature: " + what);
  }
  bool AtEnd() const { return pos_ >= cps_.size(); }
  uint32_t Peek() const { return cps_[pos_]; }

  ExprId ParseAlt(int depth) {
    if (depth > 64) Unsupported("groups nested deeper than 64");
    std::vector<ExprId> alts{ParseSeq(depth)};
    while (!AtEnd() && Peek() == '|') {
      ++pos_;
      alts.push_back(ParseSeq(depth));
    }
    return pool_.Alt(std::move(alts));
  }

  ExprId ParseSeq(int depth) {
    std::vector<ExprId> items;
    while (!AtEnd() && Peek() != '|' && Peek() != ')') {
      ExprId atom = ParseAtom(depth);
      items.push_back(ParseQuantifier(atom));
    }
    return pool_.Seq(std::move(items));
  }

  uint32_t ParseNumber() {
    uint64_t v = 0;
    size_t digits = 0;
    while (!AtEnd() && Peek() >= '0' && Peek() <= '9') {
      v = v * 10 + (Peek() - '0');
      if (v > 100000) v = 100000;
      ++pos_, ++digits;
    }
    if (digits == 0) Invalid("expected a number in a {} quantifier");
    return static_cast<uint32_t>(v);
  }

  ExprId ParseQuantifier(ExprId atom) {
    for (;;) {
      if (AtEnd()) return atom;
      uint32_t min = 0, max = 0;
      const uint32_t c = Peek();
      if (c == '*') {
        min = 0, max = kUnbounded, ++pos_;
      } else if (c == '+') {
        min = 1, max = kUnbounded, ++pos_;
      } else if (c == '?') {
        min = 0, max = 1, ++pos_;
      } else if (c == '{') {
        // `{` not followed by a valid quantifier is a literal in ECMA-262 (Annex B); in unicode mode it is an error.
        ++pos_;
        min = ParseNumber();
        max = min;
        if (!AtEnd() && Peek() == ',') {
          ++pos_;
          max = (!AtEnd() && Peek() == '}') ? kUnbounded : ParseNumber();
        }
        if (AtEnd() || Peek() != '}') Invalid("unterminated {} quantifier");
        ++pos_;
        if (max != kUnbounded && max < min) Invalid("{n,m} with m < n");
        if (min > 1000 || (max != kUnbounded && max > 1000)) {
          throw GrammarError(kErrTooLarge, pointer_, keyword_, "counted repetition above 1000 in a regular expression");
        }
      } else {
        return atom;
      }
      if (!AtEnd() && Peek() == '?') ++pos_;  // lazy: same language
      atom = pool_.Repeat(atom, min, max);
    }
  }

  uint32_t Hex(size_t n) {
    uint32_t v = 0;
    for (size_t k = 0; k < n; ++k) {
      if (AtEnd()) Invalid("truncated hex escape");
      const int h = utf8::HexDigit(Peek());
      ++pos_;
      if (h < 0) Invalid("bad hex digit");
      v = (v << 4) | static_cast<uint32_t>(h);
    }
    return v;
  }

  static CodeRanges Digits() { return {{'0', '9'}}; }
  static CodeRanges Word() { return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}; }
  static CodeRanges Space() {
    return {{'\t', '\r'},     {' ', ' '},       {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
            {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
  }

  // After a backslash: a class escape (returns true and fills `set`) or a single code point.
  bool ParseEscape(CodeRanges& set, uint32_t& cp, bool inClass) {
    if (AtEnd()) Invalid("trailing backslash");
    const uint32_t c = Peek();
    ++pos_;
    switch (c) {
      case 'd': set = Digits(); return true;
      case 'D': set = Complement(Digits()); return true;
      case 'w': set = Word(); return true;
      case 'W': set = Complement(Word()); return true;
      case 's': set = Space(); return true;
      case 'S': set = Complement(Space()); return true;
      case 't': cp = '\t'; return false;
      case 'n': cp = '\n'; return false;
      case 'r': cp = '\r'; return false;
      case 'f': cp = '\f'; return false;
      case 'v': cp = '\v'; return false;
      case '0': cp = 0; return false;
      case 'x': cp = Hex(2); return false;
      case 'u':
        if (!AtEnd() && Peek() == '{') {
          ++pos_;
          cp = 0;
          size_t n = 0;
          while (!AtEnd() && Peek() != '}') {
            cp = (cp << 4) | Hex(1);
            if (++n > 6) Invalid("\\u{...} too long");
          }
          if (AtEnd()) Invalid("unterminated \\u{");
          ++pos_;
          if (cp > kMaxCp) Invalid("code point out of range");
        } else {
          cp = Hex(4);
          // A surrogate pair spelled as two escapes.
          if (cp >= 0xD800 && cp < 0xDC00 && pos_ + 5 < cps_.size() + 0 && cps_[pos_] == '\\' &&
              cps_[pos_ + 1] == 'u') {
            const size_t save = pos_;
            pos_ += 2;
            const uint32_t lo = Hex(4);
            if (lo >= 0xDC00 && lo < 0xE000) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              pos_ = save;
            }
          }
        }
        return false;
      case 'b':
        if (inClass) {
          cp = '\b';
          return false;
        }
        Unsupported("word boundary \\b");
      case 'B': Unsupported("\\B");
      case 'p':
      case 'P': Unsupported("unicode property escapes");
      case 'c': Unsupported("control escapes \\c");
      case 'k': Unsupported("named backreferences");
      default:
        if (c >= '1' && c <= '9') Unsupported("backreferences");
        cp = c;
        return false;
    }
  }

  ExprId ClassExpr(const CodeRanges& set) {
    ExprId out = 0;
    if (!CharClassExpr(pool_, set, enc_, out)) {
      throw GrammarError(kErrUnsupported, pointer_, keyword_,
                         "the regular expression has a character class that matches nothing this engine can produce");
    }
    return out;
  }

  ExprId ParseClass() {
    bool negate = false;
    if (!AtEnd() && Peek() == '^') negate = true, ++pos_;
    CodeRanges set;
    bool first = true;
    while (true) {
      if (AtEnd()) Invalid("unterminated character class");
      uint32_t c = Peek();
      if (c == ']' && !first) break;
      if (c == ']' && first) break;  // `[]` matches nothing; `[^]` anything
      first = false;
      ++pos_;
      CodeRanges sub;
      uint32_t lo = c;
      bool isClass = false;
      if (c == '\\') isClass = ParseEscape(sub, lo, true);
      if (isClass) {
        set.insert(set.end(), sub.begin(), sub.end());
        continue;
      }
      if (!AtEnd() && Peek() == '-' && pos_ + 1 < cps_.size() && cps_[pos_ + 1] != ']') {
        ++pos_;
        uint32_t hi = Peek();
        ++pos_;
        if (hi == '\\') {
          CodeRanges s2;
          if (ParseEscape(s2, hi, true)) Invalid("a class escape cannot end a range");
        }
        if (hi < lo) Invalid("range out of order in character class");
        set.push_back({lo, hi});
      } else {
        set.push_back({lo, lo});
      }
    }
    ++pos_;  // ]
    if (negate) set = Complement(set);
    return ClassExpr(set);
  }

  ExprId ParseAtom(int depth) {
    const uint32_t c = Peek();
    ++pos_;
    switch (c) {
      case '(': {
        if (!AtEnd() && Peek() == '?') {
          ++pos_;
          if (AtEnd()) Invalid("unterminated group");
          const uint32_t k = Peek();
          if (k == ':') {
            ++pos_;
          } else if (k == '<' && pos_ + 1 < cps_.size() && cps_[pos_ + 1] != '=' && cps_[pos_ + 1] != '!') {
            while (!AtEnd() && Peek() != '>') ++pos_;
            if (AtEnd()) Invalid("unterminated group name");
            ++pos_;
          } else {
            Unsupported("lookaround assertions");
          }
        }
        ExprId inner = ParseAlt(depth + 1);
        if (AtEnd() || Peek() != ')') Invalid("missing ')'");
        ++pos_;
        return inner;
      }
      case ')': Invalid("unbalanced ')'");
      case '[': return ParseClass();
      case '.': return ClassExpr(Complement({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}));
      case '^': Unsupported("'^' anchor other than at the start");
      case '$': Unsupported("'$' anchor other than at the end");
      case '*':
      case '+':
      case '?': Invalid("nothing to repeat");
      case '{': Invalid("nothing to repeat");
      case '\\': {
        CodeRanges set;
        uint32_t cp = 0;
        if (ParseEscape(set, cp, false)) return ClassExpr(set);
        return ClassExpr({{cp, cp}});
      }
      default: return ClassExpr({{c, c}});
    }
  }

  ExprPool& pool_;
  CharEncoding enc_;
  const std::string& pointer_;
  const std::string& keyword_;
  std::vector<uint32_t> cps_;
  size_t pos_ = 0;
};

}  // namespace

RegexResult CompileRegex(ExprPool& pool, std::string_view pattern, CharEncoding enc, const std::string& pointer,
                         const std::string& keyword) {
  return RegexParser(pool, pattern, enc, pointer, keyword).Run();
}

}  // namespace tokmeter::grammar
