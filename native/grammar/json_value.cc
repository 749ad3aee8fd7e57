#include "grammar/json_value.h"

#include <cmath>
#include <cstdlib>

#include "grammar/errors.h"
#include "util/utf8.h"

namespace tokmeter::grammar::json {

namespace {

class Parser {
 public:
  Parser(std::string_view text, size_t maxDepth) : s_(text), max_depth_(maxDepth) {}

  Value Run() {
    Value v = ParseValue(0);
    SkipWs();
    if (pos_ != s_.size()) Fail("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void Fail(const std::string& what) const {
    throw GrammarError(kErrInvalid, "", "", "invalid JSON: " + what + " at byte " + std::to_string(pos_));
  }
  void SkipWs() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void Expect(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) Fail("unexpected character");
    pos_ += word.size();
  }

  Value ParseValue(size_t depth) {
    if (depth > max_depth_) {
      throw GrammarError(kErrTooLarge, "", "", "JSON nesting deeper than " + std::to_string(max_depth_) + " levels");
    }
    SkipWs();
    if (pos_ >= s_.size()) Fail("unexpected end of input");
    Value v;
    const char c = s_[pos_];
    if (c == '{') {
      ++pos_;
      v.kind = Kind::kObject;
      SkipWs();
      if (Eat('}')) return v;
      for (;;) {
        SkipWs();
        if (pos_ >= s_.size() || s_[pos_] != '"') Fail("expected a string key");
        std::string key = ParseString();
        SkipWs();
        if (!Eat(':')) Fail("expected ':'");
        v.members.emplace_back(std::move(key), ParseValue(depth + 1));
        SkipWs();
        if (Eat('}')) return v;
        if (!Eat(',')) Fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      ++pos_;
      v.kind = Kind::kArray;
      SkipWs();
      if (Eat(']')) return v;
      for (;;) {
        v.items.push_back(ParseValue(depth + 1));
        SkipWs();
        if (Eat(']')) return v;
        if (!Eat(',')) Fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v.kind = Kind::kString;
      v.text = ParseString();
      return v;
    }
    if (c == 't') {
      Expect("true");
      v.kind = Kind::kBool;
      v.boolean = true;
      return v;
    }
    if (c == 'f') {
      Expect("false");
      v.kind = Kind::kBool;
      return v;
    }
    if (c == 'n') {
      Expect("null");
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber();
    Fail("unexpected character");
  }

  Value ParseNumber() {
    const size_t begin = pos_;
    Eat('-');
    auto digits = [&] {
      size_t n = 0;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_, ++n;
      return n;
    };
    if (Eat('0')) {
    } else if (digits() == 0) {
      Fail("expected a digit");
    }
    if (Eat('.') && digits() == 0) Fail("expected a digit after '.'");
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (!Eat('+')) Eat('-');
      if (digits() == 0) Fail("expected an exponent digit");
    }
    Value v;
    v.kind = Kind::kNumber;
    v.text = std::string(s_.substr(begin, pos_ - begin));
    v.number = std::strtod(v.text.c_str(), nullptr);
    return v;
  }

  uint32_t Hex4() {
    if (pos_ + 4 > s_.size()) Fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = utf8::HexDigit(static_cast<unsigned char>(s_[pos_++]));
      if (h < 0) Fail("bad hex digit in \\u escape");
      v = (v << 4) | static_cast<uint32_t>(h);
    }
    return v;
  }

  std::string ParseString() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) Fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) Fail("control character in a string");
      if (c != '\\') {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= s_.size()) Fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = Hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(pos_, 2) == "\\u") {
            const size_t save = pos_;
            pos_ += 2;
            const uint32_t lo = Hex4();
            if (lo >= 0xDC00 && lo < 0xE000) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              pos_ = save;
              cp = 0xFFFD;
            }
          } else if (cp >= 0xD800 && cp < 0xE000) {
            cp = 0xFFFD;
          }
          utf8::Append(out, cp);
          break;
        }
        default: Fail("unknown escape");
      }
    }
  }

  std::string_view s_;
  size_t max_depth_;
  size_t pos_ = 0;
};

void SerializeTo(const Value& v, std::string& out) {
  switch (v.kind) {
    case Kind::kNull: out += "null"; break;
    case Kind::kBool: out += v.boolean ? "true" : "false"; break;
    case Kind::kNumber: out += v.text; break;
    case Kind::kString: out += Quote(v.text); break;
    case Kind::kArray:
      out += '[';
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i) out += ',';
        SerializeTo(v.items[i], out);
      }
      out += ']';
      break;
    case Kind::kObject:
      out += '{';
      for (size_t i = 0; i < v.members.size(); ++i) {
        if (i) out += ',';
        out += Quote(v.members[i].first);
        out += ':';
        SerializeTo(v.members[i].second, out);
      }
      out += '}';
      break;
  }
}

}  // namespace

const Value* Value::Find(std::string_view key) const noexcept {
  for (size_t i = members.size(); i-- > 0;) {
    if (members[i].first == key) return &members[i].second;
  }
  return nullptr;
}

bool Value::operator==(const Value& other) const {
  if (kind != other.kind) return false;
  switch (kind) {
    case Kind::kNull: return true;
    case Kind::kBool: return boolean == other.boolean;
    case Kind::kNumber: return number == other.number;
    case Kind::kString: return text == other.text;
    case Kind::kArray: return items == other.items;
    case Kind::kObject: {
      if (members.size() != other.members.size()) return false;
      for (const auto& [k, val] : members) {
        const Value* o = other.Find(k);
        if (o == nullptr || !(*o == val)) return false;
      }
      return true;
    }
  }
  return false;
}

Value Parse(std::string_view text, size_t maxDepth) { return Parser(text, maxDepth).Run(); }

std::string Serialize(const Value& value) {
  std::string out;
  SerializeTo(value, out);
  return out;
}

std::string Quote(std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  std::string out = "\"";
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string EscapePointerToken(std::string_view token) {
  std::string out;
  for (const char c : token) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

}  // namespace tokmeter::grammar::json
