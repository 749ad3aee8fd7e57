#include "tokenizer/json_scan.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "tokenizer/json_value.h"
#include "tokenizer/models/model.h"
#include "util/error.h"

namespace tokmeter::tokenizer::json {
namespace {

constexpr int kMaxDepth = 512;

[[noreturn]] void Fail(std::string_view field, const std::string& problem, size_t at) {
  throw tokmeter::Error("ERR_TOKENIZER_SPEC",
                        "invalid tokenizer: " + std::string(field) + ": " + problem + " at byte " + std::to_string(at));
}

// `s` quoted for a message, like JSON.stringify (quotes, backslashes, control characters), cut after 60 bytes.
std::string Quote(std::string_view s) {
  if (s.size() <= 60) return Stringify(s);
  std::string q = Stringify(s.substr(0, 60));
  q.insert(q.size() - 1, "...");
  return q;
}

inline bool IsWs(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Bytes that end a run of plain string content: '"', '\\' and the control characters JSON forbids unescaped.
struct StopTable {
  bool t[256];
  constexpr StopTable() : t{} {
    for (int i = 0; i < 0x20; ++i) t[i] = true;
    t[static_cast<unsigned char>('"')] = true;
    t[static_cast<unsigned char>('\\')] = true;
  }
};
constexpr StopTable kStop;

template <class Str>
void AppendUtf8(Str& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Reader {
 public:
  Reader(std::string_view s, std::string_view field) : s_(s), field_(field) {}
  size_t pos = 0;
  // keep_surrogates: a lone surrogate escape is written as its own 3-byte sequence (ED A0..BF xx, as WTF-8 does)
  // instead of U+FFFD, so that keys JSON.parse tells apart ("\ud800" vs "\udbff") stay apart; lone_surrogate is
  // set when one was written.
  bool keep_surrogates = false;
  bool lone_surrogate = false;

  bool AtEnd() const { return pos >= s_.size(); }
  char Peek() const { return pos < s_.size() ? s_[pos] : '\0'; }
  void SkipWs() {
    while (pos < s_.size() && IsWs(s_[pos])) ++pos;
  }
  void Expect(char c, const char* what) {
    if (AtEnd() || s_[pos] != c) Error(std::string("expected ") + what);
    ++pos;
  }
  [[noreturn]] void Error(const std::string& problem) const {
    Fail(field_, AtEnd() ? problem + " (the text ends)" : problem, pos);
  }

  // A string literal at pos, decoded and appended to `out` (Decode) or only checked (!Decode).
  template <bool Decode, class Str = std::string>
  void String(Str* out) {
    if (Peek() != '"') Error("expected a string");
    ++pos;
    const size_t n = s_.size();
    for (;;) {
      size_t start = pos;
      while (pos < n && !kStop.t[static_cast<unsigned char>(s_[pos])]) ++pos;
      if constexpr (Decode) out->append(s_.data() + start, pos - start);
      if (pos >= n) Error("unterminated string");
      char c = s_[pos];
      if (c == '"') {
        ++pos;
        return;
      }
      if (c != '\\') Error("unescaped control character in a string");
      ++pos;
      if (pos >= n) Error("unterminated string");
      char e = s_[pos++];
      char plain = 0;
      switch (e) {
        case '"': plain = '"'; break;
        case '\\': plain = '\\'; break;
        case '/': plain = '/'; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': {
          int u = Hex4(pos);
          if (u < 0) Error("invalid \\u escape");
          pos += 4;
          uint32_t cp = static_cast<uint32_t>(u);
          if (u >= 0xD800 && u <= 0xDBFF) {
            // A high surrogate pairs with an immediately following low-surrogate escape; alone it is U+FFFD
            // (JSON.parse keeps the lone surrogate; encoding it as UTF-8 gives U+FFFD).
            int lo = pos + 6 <= n && s_[pos] == '\\' && s_[pos + 1] == 'u' ? Hex4(pos + 2) : -1;
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + static_cast<uint32_t>(lo - 0xDC00);
              pos += 6;
            } else {
              lone_surrogate = true;
              if (!keep_surrogates) cp = 0xFFFD;
            }
          } else if (u >= 0xDC00 && u <= 0xDFFF) {
            lone_surrogate = true;
            if (!keep_surrogates) cp = 0xFFFD;
          }
          if constexpr (Decode) AppendUtf8(*out, cp);
          continue;
        }
        default: --pos; Error("invalid escape \\" + std::string(1, e));
      }
      if constexpr (Decode) out->push_back(plain);
    }
  }

  // A number (JSON grammar); returns its text.
  std::string_view Number() {
    size_t b = pos;
    if (Peek() == '-') ++pos;
    if (!IsDigit(Peek())) Error("invalid number");
    if (Peek() == '0') {
      ++pos;
    } else {
      while (IsDigit(Peek())) ++pos;
    }
    if (Peek() == '.') {
      ++pos;
      if (!IsDigit(Peek())) Error("invalid number");
      while (IsDigit(Peek())) ++pos;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++pos;
      if (Peek() == '+' || Peek() == '-') ++pos;
      if (!IsDigit(Peek())) Error("invalid number");
      while (IsDigit(Peek())) ++pos;
    }
    return s_.substr(b, pos - b);
  }

  // Any value, checked and skipped.
  void Skip(int depth) {
    if (depth > kMaxDepth) Error("nested more than 512 levels deep");
    SkipWs();
    switch (Peek()) {
      case '{':
        ++pos;
        SkipWs();
        if (Peek() == '}') {
          ++pos;
          return;
        }
        for (;;) {
          SkipWs();
          String<false, std::string>(nullptr);
          SkipWs();
          Expect(':', "':'");
          Skip(depth + 1);
          SkipWs();
          if (Peek() == ',') {
            ++pos;
            continue;
          }
          Expect('}', "',' or '}'");
          return;
        }
      case '[':
        ++pos;
        SkipWs();
        if (Peek() == ']') {
          ++pos;
          return;
        }
        for (;;) {
          Skip(depth + 1);
          SkipWs();
          if (Peek() == ',') {
            ++pos;
            continue;
          }
          Expect(']', "',' or ']'");
          return;
        }
      case '"': String<false, std::string>(nullptr); return;
      case 't': Literal("true"); return;
      case 'f': Literal("false"); return;
      case 'n': Literal("null"); return;
      default:
        if (Peek() == '-' || IsDigit(Peek())) {
          Number();
          return;
        }
        Error("expected a JSON value");
    }
  }

  std::string_view Text(size_t b) const { return s_.substr(b, pos - b); }

 private:
  int Hex4(size_t p) const {
    if (p + 4 > s_.size()) return -1;
    int v = 0;
    for (size_t k = 0; k < 4; ++k) {
      int d = HexDigit(s_[p + k]);
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    return v;
  }
  void Literal(const char* word) {
    size_t len = std::strlen(word);
    if (s_.compare(pos, len, word) != 0) Error("expected a JSON value");
    pos += len;
  }

  std::string_view s_;
  std::string_view field_;
};

struct Locator {
  Reader& r;
  const std::vector<std::vector<std::string>>& paths;
  std::vector<std::optional<Range>>& out;

  // The value at r.pos, reached through `depth` keys; `mask`: the paths whose first `depth` keys are those keys.
  void Value(size_t depth, uint32_t mask) {
    r.SkipWs();
    if (mask == 0 || r.Peek() != '{') {
      r.Skip(static_cast<int>(depth));
      return;
    }
    if (depth > kMaxDepth) r.Error("nested more than 512 levels deep");
    ++r.pos;
    r.SkipWs();
    if (r.Peek() == '}') {
      ++r.pos;
      return;
    }
    std::string key;
    for (;;) {
      r.SkipWs();
      key.clear();
      r.String<true>(&key);
      r.SkipWs();
      r.Expect(':', "':'");
      uint32_t target = 0, deeper = 0;
      for (size_t i = 0; i < paths.size(); ++i) {
        if (!(mask >> i & 1) || paths[i].size() <= depth || paths[i][depth] != key) continue;
        out[i].reset();  // a repeated key replaces what an earlier occurrence held, as in JSON.parse
        (paths[i].size() == depth + 1 ? target : deeper) |= 1u << i;
      }
      r.SkipWs();
      size_t b = r.pos;
      Value(depth + 1, deeper);
      for (size_t i = 0; i < paths.size(); ++i)
        if (target >> i & 1) out[i] = Range{b, r.pos};
      r.SkipWs();
      if (r.Peek() == ',') {
        ++r.pos;
        continue;
      }
      r.Expect('}', "',' or '}'");
      return;
    }
  }
};

// Builds a json::Value tree from a document already checked by Locate (so the grammar holds); values that start at
// a raw range's first byte become kRaw and are jumped over.
struct TreeBuilder {
  Reader& r;
  const std::vector<std::optional<Range>>& raw;

  double NumberValue(std::string_view text) {
    double d = 0;
    auto res = std::from_chars(text.data(), text.data() + text.size(), d);
    if (res.ec == std::errc::result_out_of_range) {
      size_t e = text.find_first_of("eE");
      bool tiny = e != std::string_view::npos && text.find('-', e) != std::string_view::npos;
      d = tiny ? 0.0 : (text[0] == '-' ? -HUGE_VAL : HUGE_VAL);
    }
    return d;
  }

  Value Build() {
    r.SkipWs();
    for (const auto& rg : raw) {
      if (rg && rg->begin == r.pos) {
        r.pos = rg->end;
        return Value::Raw(r.Text(rg->begin));
      }
    }
    switch (r.Peek()) {
      case '{': {
        ++r.pos;
        std::vector<std::pair<std::string, Value>> members;
        r.SkipWs();
        if (r.Peek() == '}') {
          ++r.pos;
          return Value::Object(std::move(members));
        }
        for (;;) {
          r.SkipWs();
          std::string key;
          r.String<true>(&key);
          r.SkipWs();
          r.Expect(':', "':'");
          Value v = Build();
          members.emplace_back(std::move(key), std::move(v));
          r.SkipWs();
          if (r.Peek() == ',') {
            ++r.pos;
            continue;
          }
          r.Expect('}', "',' or '}'");
          return Value::Object(std::move(members));
        }
      }
      case '[': {
        ++r.pos;
        std::vector<Value> items;
        r.SkipWs();
        if (r.Peek() == ']') {
          ++r.pos;
          return Value::Array(std::move(items));
        }
        for (;;) {
          items.push_back(Build());
          r.SkipWs();
          if (r.Peek() == ',') {
            ++r.pos;
            continue;
          }
          r.Expect(']', "',' or ']'");
          return Value::Array(std::move(items));
        }
      }
      case '"': {
        std::string s;
        r.String<true>(&s);
        return Value::String(std::move(s));
      }
      case 't': r.pos += 4; return Value::Bool(true);
      case 'f': r.pos += 5; return Value::Bool(false);
      case 'n': r.pos += 4; return Value::Null();
      default: return Value::Number(NumberValue(r.Number()));
    }
  }
};

// An id as accepted after JSON.parse: Number.isInteger(v) && 0 <= v <= 0xFFFFFFF0.
bool IntegerId(std::string_view num, uint32_t& id) {
  if (num.size() <= 10 && num.find_first_not_of("0123456789") == std::string_view::npos) {
    uint64_t v = 0;
    for (char c : num) v = v * 10 + static_cast<uint64_t>(c - '0');
    if (v > 0xFFFFFFF0u) return false;
    id = static_cast<uint32_t>(v);
    return true;
  }
  double d = 0;
  auto r = std::from_chars(num.data(), num.data() + num.size(), d);
  if (r.ec == std::errc::result_out_of_range) {
    // Underflow reads as 0 in JSON.parse (1e-400 is 0, an integer); overflow is Infinity (not one).
    size_t e = num.find_first_of("eE");
    if (e == std::string_view::npos || num.find('-', e) == std::string_view::npos) return false;
    d = 0;
  } else if (r.ec != std::errc() || r.ptr != num.data() + num.size()) {
    return false;
  }
  if (!(d >= 0 && d <= 4294967280.0) || d != std::floor(d)) return false;
  id = static_cast<uint32_t>(d);
  return true;
}

// Decodes base64 `s` (stopping at '='), appending to `out`; false on a character outside the alphabet.
bool DecodeBase64(std::string_view s, std::string& out) {
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : s) {
    if (ch == '=') break;
    int v = Base64Value(static_cast<unsigned char>(ch));
    if (v < 0) return false;
    acc = ((acc << 6) | static_cast<uint32_t>(v)) & 0xFFFFFF;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

bool ParseRank(std::string_view s, uint64_t& rank) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  if (s.empty() || s.size() > 10) return false;
  rank = 0;
  for (char c : s) {
    if (!IsDigit(c)) return false;
    rank = rank * 10 + static_cast<uint64_t>(c - '0');
  }
  return rank <= 0xFFFFFFF0u;
}

}  // namespace

std::vector<std::optional<Range>> Locate(std::string_view doc, const std::vector<std::vector<std::string>>& paths,
                                         std::string_view field) {
  if (paths.size() > 32) throw tokmeter::Error("ERR_INVALID_ARGUMENT", "json::Locate: at most 32 paths");
  std::vector<std::optional<Range>> out(paths.size());
  Reader r(doc, field);
  Locator loc{r, paths, out};
  uint32_t mask = 0;
  for (size_t i = 0; i < paths.size(); ++i)
    if (!paths[i].empty()) mask |= 1u << i;
  loc.Value(0, mask);
  r.SkipWs();
  if (!r.AtEnd()) r.Error("unexpected text after the JSON document");
  return out;
}

Value ParseDocument(std::string_view doc, const std::vector<std::vector<std::string>>& raw_paths,
                    std::string_view field) {
  std::vector<std::optional<Range>> raw;
  try {
    raw = Locate(doc, raw_paths, field);
  } catch (const tokmeter::Error& e) {
    // "invalid tokenizer: <field>: <problem> at byte n" -> "... <field>: not valid JSON: <problem> at byte n"
    std::string msg = e.what();
    std::string head = "invalid tokenizer: " + std::string(field) + ": ";
    if (msg.compare(0, head.size(), head) == 0 && msg.find("levels deep") == std::string::npos)
      msg = head + "not valid JSON: " + msg.substr(head.size());
    throw tokmeter::Error("ERR_TOKENIZER_SPEC", msg);
  }
  Reader r(doc, field);
  TreeBuilder b{r, raw};
  return b.Build();
}

std::string DecodeString(std::string_view literal, std::string_view field) {
  Reader r(literal, field);
  std::string out;
  out.reserve(literal.size());
  r.SkipWs();
  r.String<true>(&out);
  r.SkipWs();
  if (!r.AtEnd()) r.Error("unexpected text after the string");
  return out;
}

namespace {
// ParseVocabObject without the duplicate-key pass: each key is decoded straight into its id's slot (no arena, no
// entry table). Any problem throws; the caller then parses again with dedupe, which gives the definitive answer.
Vocab ParseVocabFast(std::string_view text, std::string_view field) {
  Reader r(text, field);
  Vocab v;
  v.tokens.reserve(text.size() / 14 + 16);
  v.present.reserve(text.size() / 14 + 16);
  std::string key;
  size_t count = 0, max_id = 0;
  r.SkipWs();
  r.Expect('{', "an object");
  r.SkipWs();
  if (r.Peek() == '}') {
    ++r.pos;
  } else {
    for (;;) {
      r.SkipWs();
      key.clear();
      r.String<true>(&key);
      r.SkipWs();
      r.Expect(':', "':'");
      r.SkipWs();
      uint32_t id = 0;
      char c = r.Peek();
      if (!(c == '-' || IsDigit(c)) || !IntegerId(r.Number(), id)) r.Error("not an id");
      ++count;
      if (id >= v.tokens.size()) {
        if (id > count * 16 + 65536) r.Error("sparse id");
        // Grown geometrically (ids mostly come in order); cut to the largest id + 1 at the end.
        size_t grow = std::max<size_t>(size_t{id} + 1, v.tokens.size() * 3 / 2);
        v.tokens.resize(grow);
        v.present.resize(grow, false);
      }
      max_id = std::max(max_id, size_t{id});
      if (v.present[id]) r.Error("id used twice");
      v.present[id] = true;
      v.tokens[id] = key;
      r.SkipWs();
      if (r.Peek() == ',') {
        ++r.pos;
        continue;
      }
      r.Expect('}', "',' or '}'");
      break;
    }
  }
  r.SkipWs();
  if (!r.AtEnd()) r.Error("unexpected text after the object");
  const size_t n = count == 0 ? 0 : max_id + 1;
  v.tokens.resize(n);
  v.present.resize(n);
  return v;
}
}  // namespace

Vocab ParseVocabObject(std::string_view text, std::string_view field, bool dedupe) {
  if (text.size() >= 0xFFFFFFF0u) Fail(field, "too large", 0);
  if (!dedupe) return ParseVocabFast(text, field);
  Reader r(text, field);
  r.keep_surrogates = true;
  struct Entry {
    uint32_t begin, end;  // key bytes in `arena`
    uint32_t id;
    uint32_t value_at;  // offset of the value in `text`
    bool valid, alive;
    bool surrogates;  // the key holds lone surrogates (as 3-byte sequences; U+FFFD in the token)
  };
  BigString arena;
  arena.reserve(text.size());
  BigVector<Entry> entries;
  entries.reserve(text.size() / 12 + 16);
  r.SkipWs();
  r.Expect('{', "an object");
  r.SkipWs();
  if (r.Peek() == '}') {
    ++r.pos;
  } else {
    for (;;) {
      r.SkipWs();
      uint32_t b = static_cast<uint32_t>(arena.size());
      r.lone_surrogate = false;
      r.String<true>(&arena);
      uint32_t e = static_cast<uint32_t>(arena.size());
      const bool surrogates = r.lone_surrogate;
      r.SkipWs();
      r.Expect(':', "':'");
      r.SkipWs();
      uint32_t at = static_cast<uint32_t>(r.pos);
      uint32_t id = 0;
      bool valid = false;
      char c = r.Peek();
      if (c == '-' || IsDigit(c)) {
        valid = IntegerId(r.Number(), id);
      } else {
        r.Skip(1);  // checked now, reported only if this key's value survives (JSON.parse keeps the last one)
      }
      entries.push_back(Entry{b, e, id, at, valid, true, surrogates});
      r.SkipWs();
      if (r.Peek() == ',') {
        ++r.pos;
        continue;
      }
      r.Expect('}', "',' or '}'");
      break;
    }
  }
  r.SkipWs();
  if (!r.AtEnd()) r.Error("unexpected text after the object");

  auto key = [&](const Entry& en) { return std::string_view(arena).substr(en.begin, en.end - en.begin); };
  // Duplicate keys: the later entry wins (one flat table of entry indices, keyed by the key bytes).
  {
    size_t cap = 16;
    while (cap < entries.size() * 2) cap <<= 1;
    BigVector<uint32_t> slots(cap, 0xFFFFFFFFu);
    for (uint32_t i = 0; i < entries.size(); ++i) {
      std::string_view k = key(entries[i]);
      for (size_t s = HashBytes(k) & (cap - 1);; s = (s + 1) & (cap - 1)) {
        if (slots[s] == 0xFFFFFFFFu) {
          slots[s] = i;
          break;
        }
        if (key(entries[slots[s]]) == k) {
          entries[slots[s]].alive = false;
          slots[s] = i;
          break;
        }
      }
    }
  }
  uint32_t max_id = 0;
  size_t alive = 0;
  for (const Entry& en : entries) {
    if (!en.alive) continue;
    ++alive;
    if (!en.valid) {
      Reader v(text, field);
      v.pos = en.value_at;
      v.Skip(1);
      std::string got(v.Text(en.value_at));
      if (got.size() > 40) got = got.substr(0, 40) + "...";
      Fail(std::string(field) + "[" + Quote(key(en)) + "]", "expected a non-negative integer, got " + got, en.value_at);
    }
    max_id = std::max(max_id, en.id);
  }
  // A sparse id far beyond the number of tokens would only make us allocate gigabytes for nothing.
  if (alive > 0 && max_id > alive * 16 + 65536)
    Fail(field, "id " + std::to_string(max_id) + " is far beyond the vocabulary's " + std::to_string(alive) + " tokens",
         0);
  Vocab v;
  size_t n = alive == 0 ? 0 : size_t{max_id} + 1;
  v.tokens.resize(n);
  v.present.assign(n, false);
  for (const Entry& en : entries) {
    if (!en.alive) continue;
    if (v.present[en.id])
      Fail(std::string(field) + "[" + Quote(key(en)) + "]", "id " + std::to_string(en.id) + " is used twice",
           en.value_at);
    v.present[en.id] = true;
    v.tokens[en.id].assign(key(en));
    if (en.surrogates) {
      // As Buffer.from(string) encodes a lone surrogate: U+FFFD.
      std::string& t = v.tokens[en.id];
      for (size_t k = 0; k + 2 < t.size(); ++k)
        if (static_cast<unsigned char>(t[k]) == 0xED && (static_cast<unsigned char>(t[k + 1]) & 0xE0) == 0xA0)
          t.replace(k, 3, "\xEF\xBF\xBD");
    }
  }
  return v;
}

StringPairs ParseMerges(std::string_view text, std::string_view field) {
  if (text.size() >= 0xFFFFFFF0u) Fail(field, "too large", 0);
  Reader r(text, field);
  StringPairs out;
  out.bytes.reserve(text.size());
  out.ends.reserve(text.size() / 6 + 16);
  auto entry_field = [&](size_t i) { return std::string(field) + "[" + std::to_string(i) + "]"; };
  r.SkipWs();
  r.Expect('[', "an array");
  r.SkipWs();
  if (r.Peek() == ']') {
    ++r.pos;
  } else {
    for (size_t i = 0;; ++i) {
      r.SkipWs();
      size_t at = r.pos;
      char c = r.Peek();
      if (c == '"') {
        size_t b = out.bytes.size();
        r.String<true>(&out.bytes);
        std::string_view s = std::string_view(out.bytes).substr(b);
        size_t sp = s.find(' ');
        if (sp == std::string_view::npos || s.find(' ', sp + 1) != std::string_view::npos)
          Fail(entry_field(i), "expected \"left right\", got the string " + Quote(s), at);
        out.bytes.erase(b + sp, 1);
        out.ends.push_back(static_cast<uint32_t>(b + sp));
        out.ends.push_back(static_cast<uint32_t>(out.bytes.size()));
      } else if (c == '[') {
        ++r.pos;
        for (int k = 0; k < 2; ++k) {
          r.SkipWs();
          if (r.Peek() != '"') Fail(entry_field(i), "expected \"left right\" or [left, right]", at);
          r.String<true>(&out.bytes);
          out.ends.push_back(static_cast<uint32_t>(out.bytes.size()));
          r.SkipWs();
          if (k == 0 && r.Peek() != ',') Fail(entry_field(i), "expected \"left right\" or [left, right]", at);
          if (k == 0) ++r.pos;
        }
        if (r.Peek() != ']') Fail(entry_field(i), "expected \"left right\" or [left, right]", at);
        ++r.pos;
      } else {
        Fail(entry_field(i), "expected \"left right\" or [left, right]", at);
      }
      r.SkipWs();
      if (r.Peek() == ',') {
        ++r.pos;
        continue;
      }
      r.Expect(']', "',' or ']'");
      break;
    }
  }
  r.SkipWs();
  if (!r.AtEnd()) r.Error("unexpected text after the array");
  return out;
}

ScoredVocab ParseUnigramVocab(std::string_view text, std::string_view field) {
  Reader r(text, field);
  ScoredVocab out;
  const std::string f(field);
  r.SkipWs();
  if (r.Peek() != '[') SpecError(f, "expected an array");
  ++r.pos;
  r.SkipWs();
  if (r.Peek() == ']') return out;
  for (size_t i = 0;; ++i) {
    r.SkipWs();
    const std::string ef = f + "[" + std::to_string(i) + "]";
    const size_t b = r.pos;
    auto bad = [&] {
      r.pos = b;
      r.Skip(1);
      const std::string got =
          r.Text(b).size() > 40 ? std::string(r.Text(b).substr(0, 40)) + "..." : std::string(r.Text(b));
      SpecError(ef, "expected [piece, score], got " + got);
    };
    if (r.Peek() != '[') bad();
    ++r.pos;
    r.SkipWs();
    if (r.Peek() != '"') bad();
    std::string piece;
    r.String<true>(&piece);
    r.SkipWs();
    if (r.Peek() != ',') bad();
    ++r.pos;
    r.SkipWs();
    const size_t nb = r.pos;
    double score = 0;
    bool finite = false;
    if (r.Peek() == '-' || IsDigit(r.Peek())) {
      std::string_view num = r.Number();
      auto res = std::from_chars(num.data(), num.data() + num.size(), score);
      if (res.ec == std::errc::result_out_of_range) {
        size_t e = num.find_first_of("eE");
        finite = e != std::string_view::npos && num.find('-', e) != std::string_view::npos;  // underflow: 0
        score = 0;
      } else {
        finite = res.ec == std::errc() && std::isfinite(score);
      }
    } else {
      r.Skip(1);
    }
    if (!finite) SpecError(ef + "[1]", "expected a finite number, got " + std::string(r.Text(nb)));
    r.SkipWs();
    if (r.Peek() != ']') bad();
    ++r.pos;
    out.tokens.push_back(std::move(piece));
    out.scores.push_back(score);
    r.SkipWs();
    if (r.Peek() == ',') {
      ++r.pos;
      continue;
    }
    r.Expect(']', "',' or ']'");
    return out;
  }
}

Vocab ParseTiktokenRanks(std::string_view text, bool compressed, std::string_view field) {
  Vocab v;
  // One token per space (compressed) or per line: reserve exactly that, so the table is touched once.
  size_t expected = 16;
  for (char c : text) expected += c == (compressed ? ' ' : '\n');
  v.tokens.reserve(expected);
  v.present.reserve(expected);
  std::string tok;
  uint64_t count = 0;   // the next rank expected
  uint64_t absent = 0;  // ids in gaps so far
  size_t line_no = 0;
  auto line_field = [&] { return std::string(field) + " line " + std::to_string(line_no); };
  auto add = [&](uint64_t rank, std::string_view b64, size_t at) {
    if (rank < count) Fail(line_field(), "rank " + std::to_string(rank) + " is out of order", at);
    // Gaps are absent ids; many of them would only make us allocate gigabytes for nothing.
    if (rank - count > (1u << 24) || rank > (v.tokens.size() - absent) * 16 + (1u << 20))
      Fail(line_field(), "rank " + std::to_string(rank) + " leaves a huge gap", at);
    tok.clear();
    if (!DecodeBase64(b64, tok)) Fail(line_field(), "invalid base64", at);
    if (rank > count) {  // a gap: absent ids
      absent += rank - count;
      v.tokens.resize(rank);
      v.present.resize(rank, false);
    }
    v.tokens.emplace_back(tok);
    v.present.push_back(true);
    count = rank + 1;
  };
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    ++line_no;
    size_t eol = text.find('\n', i);
    if (eol == std::string_view::npos) eol = n;
    std::string_view line = text.substr(i, eol - i);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) {
      if (compressed) {
        size_t sp1 = line.find(' ');
        uint64_t rank = 0;
        size_t end2 = sp1 == std::string_view::npos ? line.size() : line.find(' ', sp1 + 1);
        if (end2 == std::string_view::npos) end2 = line.size();
        if (sp1 == std::string_view::npos || !ParseRank(line.substr(sp1 + 1, end2 - sp1 - 1), rank))
          Fail(line_field(), "expected \"<prefix> <rank> <base64>...\"", i);
        size_t k = end2;
        while (k < line.size()) {
          size_t e = line.find(' ', k + 1);
          if (e == std::string_view::npos) e = line.size();
          if (e > k + 1) add(rank++, line.substr(k + 1, e - k - 1), i + k + 1);
          k = e;
        }
      } else {
        size_t sp = line.find(' ');
        uint64_t rank = 0;
        if (sp == std::string_view::npos || !ParseRank(line.substr(sp + 1), rank))
          Fail(line_field(), "expected \"<base64 token> <rank>\"", i);
        add(rank, line.substr(0, sp), i);
      }
    }
    i = eol + 1;
  }
  return v;
}

int Base64Value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace tokmeter::tokenizer::json
