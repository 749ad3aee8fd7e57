#include "grammar/schema.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <set>

#include "grammar/errors.h"
#include "grammar/regex.h"

namespace tokmeter::grammar {

using json::Kind;
using json::Value;

namespace {

constexpr unsigned kNull = 1, kBool = 2, kInt = 4, kFrac = 8, kStr = 16, kArr = 32, kObj = 64, kAll = 127;
constexpr uint32_t kMaxIntDigits = 15;  // |integer part| < 10^15 (exact in a double)
constexpr uint32_t kMaxFracDigits = 15;
constexpr uint32_t kStringCap = 256;  // a maxLength above this is tightened to it (a subset stays valid)
constexpr uint32_t kItemsCap = 64;    // likewise for maxItems

[[noreturn]] void Unsupported(const std::string& ptr, const std::string& kw, const std::string& what) {
  throw GrammarError(kErrUnsupported, ptr, kw, what);
}
[[noreturn]] void Invalid(const std::string& ptr, const std::string& kw, const std::string& what) {
  throw GrammarError(kErrInvalid, ptr, kw, what);
}
// A schema no value satisfies (an optional property or one branch of several may be dropped instead).
[[noreturn]] void Empty(const std::string& ptr, const std::string& kw, const std::string& what) {
  throw EmptyLanguageError(kErrInvalid, ptr, kw, what);
}

bool IsAnnotation(std::string_view k) {
  static const std::set<std::string_view> kSet = {"title",
                                                  "description",
                                                  "default",
                                                  "examples",
                                                  "example",
                                                  "$schema",
                                                  "$id",
                                                  "id",
                                                  "$comment",
                                                  "deprecated",
                                                  "readOnly",
                                                  "writeOnly",
                                                  "$defs",
                                                  "definitions",
                                                  "$anchor",
                                                  "$vocabulary",
                                                  "contentMediaType",
                                                  "contentEncoding",
                                                  "contentSchema",
                                                  "discriminator",
                                                  "nullable",
                                                  "externalDocs",
                                                  "xml",
                                                  "markdownDescription",
                                                  "errorMessage",
                                                  "$dynamicAnchor",
                                                  "$recursiveAnchor",
                                                  "enumDescriptions",
                                                  "markdownEnumDescriptions",
                                                  "defaultSnippets",
                                                  "deprecationMessage",
                                                  "doNotSuggest",
                                                  "allowTrailingCommas",
                                                  "tsType",
                                                  "options",
                                                  "propertyOrder",
                                                  "format_description"};
  return kSet.count(k) || k.starts_with("x-");
}

// Keywords the compiler enforces; anything else that is not an annotation is not JSON Schema vocabulary and is
// ignored as validators ignore it, except the constraint keywords below, which are refused.
bool IsRefused(std::string_view k) {
  static const std::set<std::string_view> kSet = {"not",
                                                  "if",
                                                  "then",
                                                  "else",
                                                  "dependencies",
                                                  "dependentRequired",
                                                  "dependentSchemas",
                                                  "patternProperties",
                                                  "propertyNames",
                                                  "unevaluatedItems",
                                                  "contains",
                                                  "minContains",
                                                  "maxContains",
                                                  "$dynamicRef",
                                                  "$recursiveRef",
                                                  "extends",
                                                  "disallow",
                                                  "divisibleBy"};
  return kSet.count(k) > 0;
}

bool IsIntegerValued(double v) { return std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 1e15; }

unsigned TypeBit(std::string_view t) {
  if (t == "null") return kNull;
  if (t == "boolean") return kBool;
  if (t == "integer") return kInt;
  if (t == "number") return kInt | kFrac;
  if (t == "string") return kStr;
  if (t == "array") return kArr;
  if (t == "object") return kObj;
  return 0;
}

unsigned ValueType(const Value& v) {
  switch (v.kind) {
    case Kind::kNull: return kNull;
    case Kind::kBool: return kBool;
    case Kind::kNumber:
      return IsIntegerValued(v.number) || (std::isfinite(v.number) && std::floor(v.number) == v.number) ? kInt : kFrac;
    case Kind::kString: return kStr;
    case Kind::kArray: return kArr;
    case Kind::kObject: return kObj;
  }
  return 0;
}

std::string Child(const std::string& ptr, std::string_view key) { return ptr + "/" + json::EscapePointerToken(key); }

uint32_t NonNegInt(const Value& s, const std::string& ptr, const char* kw, uint32_t dflt) {
  const Value* v = s.Find(kw);
  if (!v) return dflt;
  if (!v->isNumber() || v->number < 0 || std::floor(v->number) != v->number) {
    Invalid(ptr, kw, std::string("expected a non-negative integer for '") + kw + "'");
  }
  return v->number > 1e9 ? 1000000000u : static_cast<uint32_t>(v->number);
}

// ---- integer and decimal ranges as digit automata ----

std::string Pow10Minus1(size_t digits) { return std::string(digits, '9'); }

ExprId SameLen(ExprPool& x, const std::string& lo, const std::string& hi) {
  const size_t n = lo.size();
  if (n == 0) return x.Empty();
  if (lo[0] == hi[0]) {
    return x.Seq({x.Byte(static_cast<uint8_t>(lo[0])), SameLen(x, lo.substr(1), hi.substr(1))});
  }
  const ExprId digit = x.Bytes({{'0', '9'}});
  if (lo.substr(1) == std::string(n - 1, '0') && hi.substr(1) == std::string(n - 1, '9')) {
    return x.Seq({x.Bytes({{static_cast<uint8_t>(lo[0]), static_cast<uint8_t>(hi[0])}}),
                  x.Repeat(digit, static_cast<uint32_t>(n - 1), static_cast<uint32_t>(n - 1))});
  }
  std::vector<ExprId> alts;
  alts.push_back(x.Seq({x.Byte(static_cast<uint8_t>(lo[0])), SameLen(x, lo.substr(1), std::string(n - 1, '9'))}));
  if (lo[0] + 1 <= hi[0] - 1) {
    alts.push_back(x.Seq({x.Bytes({{static_cast<uint8_t>(lo[0] + 1), static_cast<uint8_t>(hi[0] - 1)}}),
                          x.Repeat(digit, static_cast<uint32_t>(n - 1), static_cast<uint32_t>(n - 1))}));
  }
  alts.push_back(x.Seq({x.Byte(static_cast<uint8_t>(hi[0])), SameLen(x, std::string(n - 1, '0'), hi.substr(1))}));
  return x.Alt(std::move(alts));
}

// Decimal integers in [lo, hi], 0 <= lo <= hi, no leading zeros.
ExprId PosRange(ExprPool& x, uint64_t lo, uint64_t hi) {
  const std::string a = std::to_string(lo), b = std::to_string(hi);
  std::vector<ExprId> alts;
  for (size_t len = a.size(); len <= b.size(); ++len) {
    const std::string from = len == a.size() ? a : "1" + std::string(len - 1, '0');
    const std::string to = len == b.size() ? b : Pow10Minus1(len);
    alts.push_back(SameLen(x, from, to));
  }
  return x.Alt(std::move(alts));
}

const int64_t kIntLimit = 999'999'999'999'999;  // 15 digits

// Integers in [lo, hi] (clamped to 15 digits); false when empty.
bool IntRange(ExprPool& x, int64_t lo, int64_t hi, ExprId& out) {
  lo = std::max(lo, -kIntLimit);
  hi = std::min(hi, kIntLimit);
  if (lo > hi) return false;
  std::vector<ExprId> alts;
  if (hi >= 0) alts.push_back(PosRange(x, static_cast<uint64_t>(std::max<int64_t>(lo, 0)), static_cast<uint64_t>(hi)));
  if (lo <= -1) {
    const int64_t mlo = std::max<int64_t>(1, -std::min<int64_t>(hi, -1)), mhi = -lo;
    alts.push_back(x.Seq({x.Byte('-'), PosRange(x, static_cast<uint64_t>(mlo), static_cast<uint64_t>(mhi))}));
  }
  out = x.Alt(std::move(alts));
  return true;
}

// Non-negative decimals m with L <(=) m <(=) U (U < 0: unbounded), integer bounds; false when empty.
bool NonNegDecimal(ExprPool& x, int64_t L, bool strictL, int64_t U, bool strictU, ExprId& out) {
  const ExprId digit = x.Bytes({{'0', '9'}});
  const ExprId anyFrac = x.Optional(x.Seq({x.Byte('.'), x.Repeat(digit, 1, kMaxFracDigits)}));
  const ExprId zeroFrac = x.Optional(x.Seq({x.Byte('.'), x.Repeat(x.Byte('0'), 1, kMaxFracDigits)}));
  const ExprId nonzeroFrac = x.Seq({x.Byte('.'), x.Repeat(digit, 0, kMaxFracDigits - 1), x.Bytes({{'1', '9'}})});
  const bool bounded = U >= 0;
  if (bounded && U > kIntLimit) U = kIntLimit;
  std::vector<ExprId> alts;
  auto lit = [&](int64_t v) { return x.Literal(std::to_string(v)); };
  if (bounded && L == U) {
    if (strictL || strictU) return false;
    out = x.Seq({lit(L), zeroFrac});
    return true;
  }
  if (bounded && L > U) return false;
  // integer part strictly between the bounds: any fraction
  const int64_t midLo = L + 1, midHi = bounded ? U - 1 : kIntLimit;
  if (midLo <= midHi)
    alts.push_back(x.Seq({PosRange(x, static_cast<uint64_t>(midLo), static_cast<uint64_t>(midHi)), anyFrac}));
  alts.push_back(x.Seq({lit(L), strictL ? nonzeroFrac : anyFrac}));
  if (bounded && !strictU) alts.push_back(x.Seq({lit(U), zeroFrac}));
  out = x.Alt(std::move(alts));
  return true;
}

const char* FormatPattern(std::string_view f) {
  if (f == "date") {
    return "^[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
           "$";
  }
  if (f == "time")
    return "^(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$";
  if (f == "date-time") {
    return "^[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
           "T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$";
  }
  if (f == "uuid") return "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
  if (f == "email" || f == "idn-email") {
    return "^[a-z0-9]{1,20}(?:\\.[a-z0-9]{1,20}){0,3}@(?:[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?\\.){1,3}[a-z]{2,6}$";
  }
  if (f == "hostname" || f == "idn-hostname") {
    return "^[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?){0,4}$";
  }
  if (f == "ipv4")
    return "^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$";
  if (f == "ipv6") return "^(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}$";
  if (f == "uri" || f == "url" || f == "iri" || f == "uri-reference" || f == "iri-reference") {
    // Also a valid `url` (which needs a top-level domain).
    return "^https?://[a-z0-9]{1,20}(?:\\.[a-z0-9]{1,20}){0,3}\\.[a-z]{2,6}(?:/[a-zA-Z0-9._~-]{0,20}){0,8}$";
  }
  if (f == "json-pointer") return "^(?:/(?:[a-zA-Z0-9_.-]|~[01]){0,20}){0,8}$";
  if (f == "byte") return "^(?:[A-Za-z0-9+/]{4}){0,16}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$";
  return nullptr;
}

}  // namespace

// ---- JsonPieces ----

JsonPieces::JsonPieces(GrammarBuilder& b) : b_(b) {}

ExprId JsonPieces::Ws() {
  ExprPool& x = b_.exprs();
  return x.Optional(x.Alt({x.Byte(' '), x.Seq({x.Byte('\n'), x.Repeat(x.Byte(' '), 0, 20)})}));
}

ExprId JsonPieces::Sep(char c) {
  ExprPool& x = b_.exprs();
  return x.Seq({Ws(), x.Byte(static_cast<uint8_t>(c)), Ws()});
}

ExprId JsonPieces::StringChar() {
  ExprPool& x = b_.exprs();
  if (char_ >= 0) return static_cast<ExprId>(char_);
  ExprId plain = 0;
  CharClassExpr(x, {{0x20, 0x10FFFF}}, CharEncoding::kJsonString, plain);  // includes \" and \\ escapes
  const ExprId hex = x.Bytes({{'0', '9'}, {'A', 'F'}, {'a', 'f'}});
  // \u escapes (four hex digits) outside the surrogates (a pair would count as two characters here but one in a
  // validator).
  const ExprId u = x.Seq(
      {x.Literal("\\u"), x.Alt({x.Seq({x.Bytes({{'0', '9'}, {'A', 'C'}, {'a', 'c'}}), x.Repeat(hex, 3, 3)}),
                                x.Seq({x.Bytes({{'D', 'D'}, {'d', 'd'}}), x.Bytes({{'0', '7'}}), x.Repeat(hex, 2, 2)}),
                                x.Seq({x.Bytes({{'E', 'F'}, {'e', 'f'}}), x.Repeat(hex, 3, 3)})})});
  const ExprId esc =
      x.Seq({x.Byte('\\'), x.Bytes({{'/', '/'}, {'b', 'b'}, {'f', 'f'}, {'n', 'n'}, {'r', 'r'}, {'t', 't'}})});
  char_ = x.Alt({plain, esc, u});
  return static_cast<ExprId>(char_);
}

uint32_t JsonPieces::StringRule(uint32_t min, uint32_t max) {
  auto it = strings_.find({min, max});
  if (it != strings_.end()) return it->second;
  ExprPool& x = b_.exprs();
  const uint32_t r =
      b_.AddRule(max == kUnbounded ? "string" : "string{" + std::to_string(min) + "," + std::to_string(max) + "}");
  strings_[{min, max}] = r;
  b_.Define(r, x.Seq({x.Byte('"'), x.Repeat(StringChar(), min, max), x.Byte('"')}));
  return r;
}

ExprId JsonPieces::AnyString() { return b_.exprs().Call(StringRule(0, kUnbounded)); }

ExprId JsonPieces::Number(bool integer) {
  ExprPool& x = b_.exprs();
  const ExprId digit = x.Bytes({{'0', '9'}});
  const ExprId intPart =
      x.Seq({x.Optional(x.Byte('-')),
             x.Alt({x.Byte('0'), x.Seq({x.Bytes({{'1', '9'}}), x.Repeat(digit, 0, kMaxIntDigits - 1)})})});
  if (integer) return intPart;
  return x.Seq({intPart, x.Optional(x.Seq({x.Byte('.'), x.Repeat(digit, 1, kMaxFracDigits)})),
                x.Optional(x.Seq({x.Bytes({{'E', 'E'}, {'e', 'e'}}), x.Optional(x.Bytes({{'+', '+'}, {'-', '-'}})),
                                  x.Repeat(digit, 1, 2)}))});
}

ExprId JsonPieces::List(char open, ExprId item, char close) {
  ExprPool& x = b_.exprs();
  return x.Seq({x.Byte(static_cast<uint8_t>(open)), Ws(), x.Optional(x.Seq({item, x.Star(x.Seq({Sep(','), item}))})),
                Ws(), x.Byte(static_cast<uint8_t>(close))});
}

uint32_t JsonPieces::AnyValueRule() {
  if (value_ >= 0) return static_cast<uint32_t>(value_);
  value_ = b_.AddRule("value");
  ExprPool& x = b_.exprs();
  const ExprId body = x.Alt({x.Call(AnyObjectRule()), x.Call(AnyArrayRule()), AnyString(), Number(false),
                             x.Literal("true"), x.Literal("false"), x.Literal("null")});
  b_.Define(static_cast<uint32_t>(value_), body);
  return static_cast<uint32_t>(value_);
}

uint32_t JsonPieces::AnyObjectRule() {
  if (object_ >= 0) return static_cast<uint32_t>(object_);
  object_ = b_.AddRule("object");
  ExprPool& x = b_.exprs();
  const ExprId member = x.Seq({AnyString(), Ws(), x.Byte(':'), Ws(), x.Call(AnyValueRule())});
  b_.Define(static_cast<uint32_t>(object_), List('{', member, '}'));
  return static_cast<uint32_t>(object_);
}

uint32_t JsonPieces::AnyArrayRule() {
  if (array_ >= 0) return static_cast<uint32_t>(array_);
  array_ = b_.AddRule("array");
  ExprPool& x = b_.exprs();
  b_.Define(static_cast<uint32_t>(array_), List('[', x.Call(AnyValueRule()), ']'));
  return static_cast<uint32_t>(array_);
}

// ---- SchemaCompiler ----

SchemaCompiler::SchemaCompiler(JsonPieces& pieces, Budget& budget, const Value& root, std::string pointer)
    : pieces_(pieces), x_(pieces.builder().exprs()), budget_(budget), root_(root), pointer_(std::move(pointer)) {}

ExprId SchemaCompiler::Compile() { return Schema(root_, pointer_, 0); }

const Value& SchemaCompiler::Resolve(const std::string& ref, const std::string& ptr, std::string& targetPtr) {
  if (ref.empty() || ref[0] != '#') {
    const Value* id = root_.isObject() ? root_.Find("$id") : nullptr;
    if (id && id->isString() && ref.starts_with(id->text) && ref.size() > id->text.size() &&
        ref[id->text.size()] == '#') {
      return Resolve(ref.substr(id->text.size()), ptr, targetPtr);
    }
    Unsupported(ptr, "$ref", "only references within the document ('#...') are supported, got '" + ref + "'");
  }
  if (ref.size() > 1 && ref[1] != '/') Unsupported(ptr, "$ref", "anchor references ('" + ref + "') are not supported");
  const Value* cur = &root_;
  targetPtr = pointer_;
  size_t i = 1;
  while (i < ref.size()) {
    size_t j = ref.find('/', i + 1);
    if (j == std::string::npos) j = ref.size();
    std::string raw = ref.substr(i + 1, j - i - 1), token;
    for (size_t k = 0; k < raw.size(); ++k) {
      if (raw[k] == '%' && k + 2 < raw.size() + 0 && isxdigit(static_cast<unsigned char>(raw[k + 1])) &&
          isxdigit(static_cast<unsigned char>(raw[k + 2]))) {
        token += static_cast<char>(std::stoi(raw.substr(k + 1, 2), nullptr, 16));
        k += 2;
      } else if (raw[k] == '~' && k + 1 < raw.size() && (raw[k + 1] == '0' || raw[k + 1] == '1')) {
        token += raw[k + 1] == '0' ? '~' : '/';
        ++k;
      } else {
        token += raw[k];
      }
    }
    if (cur->isObject()) {
      cur = cur->Find(token);
    } else if (cur->isArray()) {
      char* end = nullptr;
      const unsigned long idx = std::strtoul(token.c_str(), &end, 10);
      cur = (!token.empty() && *end == 0 && idx < cur->items.size()) ? &cur->items[idx] : nullptr;
    } else {
      cur = nullptr;
    }
    if (cur == nullptr) Invalid(ptr, "$ref", "'" + ref + "' does not resolve within the document");
    targetPtr = Child(targetPtr, token);
    i = j;
  }
  return *cur;
}

namespace {
bool HasConstraints(const Value& s, std::initializer_list<std::string_view> except) {
  for (const auto& [k, v] : s.members) {
    if (IsAnnotation(k)) continue;
    if (std::find(except.begin(), except.end(), k) != except.end()) continue;
    return true;
  }
  return false;
}
Value Without(const Value& s, std::initializer_list<std::string_view> keys) {
  Value out;
  out.kind = Kind::kObject;
  for (const auto& m : s.members) {
    if (std::find(keys.begin(), keys.end(), m.first) == keys.end()) out.members.push_back(m);
  }
  return out;
}
Value* FindMut(Value& v, std::string_view key) {
  for (size_t i = v.members.size(); i-- > 0;) {
    if (v.members[i].first == key) return &v.members[i].second;
  }
  return nullptr;
}
Value TypeValue(unsigned bits) {
  Value out;
  out.kind = Kind::kArray;
  static const std::pair<unsigned, const char*> kNames[] = {
      {kNull, "null"}, {kBool, "boolean"}, {kStr, "string"}, {kArr, "array"}, {kObj, "object"}};
  for (auto [bit, name] : kNames) {
    if (bits & bit) {
      Value s;
      s.kind = Kind::kString;
      s.text = name;
      out.items.push_back(s);
    }
  }
  Value n;
  n.kind = Kind::kString;
  if ((bits & (kInt | kFrac)) == (kInt | kFrac)) {
    n.text = "number";
    out.items.push_back(n);
  } else if (bits & kInt) {
    n.text = "integer";
    out.items.push_back(n);
  }
  return out;
}
unsigned DeclaredTypes(const Value& s, const std::string& ptr) {
  const Value* t = s.Find("type");
  if (!t) return kAll;
  unsigned bits = 0;
  auto add = [&](const Value& v) {
    if (!v.isString() || TypeBit(v.text) == 0) Invalid(ptr, "type", "unknown type");
    bits |= TypeBit(v.text);
  };
  if (t->isArray()) {
    for (const Value& v : t->items) add(v);
  } else {
    add(*t);
  }
  return bits;
}
}  // namespace

Value SchemaCompiler::Merge(const Value& a, const Value& b, const std::string& ptr, size_t depth) {
  if (a.isBool()) {
    if (!a.boolean) Invalid(ptr, "allOf", "a branch is 'false': no value satisfies the schema");
    return b.isBool() ? Value{} : b;
  }
  if (b.isBool()) {
    if (!b.boolean) Invalid(ptr, "allOf", "a branch is 'false': no value satisfies the schema");
    return a;
  }
  if (!a.isObject() || !b.isObject()) Invalid(ptr, "allOf", "a schema must be an object or a boolean");
  Value out = a;
  for (const auto& [k, vb] : b.members) {
    Value* va = FindMut(out, k);
    if (!va) {
      out.members.emplace_back(k, vb);
      continue;
    }
    if (*va == vb || IsAnnotation(k)) continue;
    if (k == "type") {
      const unsigned bits = DeclaredTypes(a, ptr) & DeclaredTypes(b, ptr);
      if (bits == 0) Empty(ptr, "allOf", "the branches' types do not intersect");
      *va = TypeValue(bits);
    } else if (k == "properties" && va->isObject() && vb.isObject()) {
      for (const auto& [name, sb] : vb.members) {
        Value* sa = FindMut(*va, name);
        if (!sa) {
          va->members.emplace_back(name, sb);
        } else if (!(*sa == sb)) {
          Value all;
          all.kind = Kind::kObject;
          Value arr;
          arr.kind = Kind::kArray;
          arr.items = {*sa, sb};
          all.members.emplace_back("allOf", std::move(arr));
          *sa = std::move(all);
        }
      }
    } else if (k == "required" && va->isArray() && vb.isArray()) {
      for (const Value& r : vb.items) {
        if (std::find(va->items.begin(), va->items.end(), r) == va->items.end()) va->items.push_back(r);
      }
    } else if (k == "enum" && va->isArray() && vb.isArray()) {
      std::vector<Value> keep;
      for (const Value& v : va->items) {
        if (std::find(vb.items.begin(), vb.items.end(), v) != vb.items.end()) keep.push_back(v);
      }
      if (keep.empty()) Empty(ptr, "allOf", "the branches' enums do not intersect");
      va->items = std::move(keep);
    } else if (va->isNumber() && vb.isNumber() &&
               (k == "minimum" || k == "minLength" || k == "minItems" || k == "minProperties" ||
                k == "exclusiveMinimum")) {
      if (vb.number > va->number) *va = vb;
    } else if (va->isNumber() && vb.isNumber() &&
               (k == "maximum" || k == "maxLength" || k == "maxItems" || k == "maxProperties" ||
                k == "exclusiveMaximum")) {
      if (vb.number < va->number) *va = vb;
    } else if (k == "items" && va->isObject() && vb.isObject()) {
      Value all;
      all.kind = Kind::kObject;
      Value arr;
      arr.kind = Kind::kArray;
      arr.items = {*va, vb};
      all.members.emplace_back("allOf", std::move(arr));
      *va = std::move(all);
    } else if (k == "additionalProperties" && (va->isBool() || vb.isBool())) {
      // handled below
    } else {
      Unsupported(ptr, "allOf", "the branches disagree on '" + k + "' in a way that cannot be merged");
    }
  }
  // additionalProperties: false on one side forbids the other side's extra properties.
  for (const Value* side : {&a, &b}) {
    const Value* ap = side->Find("additionalProperties");
    if (!(ap && ap->isBool() && !ap->boolean)) continue;
    const Value* own = side->Find("properties");
    Value* props = FindMut(out, "properties");
    if (props && props->isObject()) {
      std::erase_if(props->members, [&](const auto& m) { return !own || !own->Find(m.first); });
    }
    if (const Value* req = out.Find("required"); req && req->isArray()) {
      for (const Value& r : req->items) {
        if (r.isString() && (!own || !own->Find(r.text))) {
          Invalid(ptr, "allOf", "property '" + r.text + "' is required by one branch and forbidden by another");
        }
      }
    }
    Value f;
    f.kind = Kind::kBool;
    *FindMut(out, "additionalProperties") = f;
  }
  return out;
}

const Value& SchemaCompiler::Flatten(const Value& s, const std::string& ptr, size_t depth) {
  if (depth > budget_.limits().maxSchemaDepth) {
    throw GrammarError(
        kErrTooLarge, ptr, "",
        "schema nesting (through $ref and allOf) deeper than " + std::to_string(budget_.limits().maxSchemaDepth));
  }
  if (!s.isObject()) return s;
  const Value* ref = s.Find("$ref");
  const Value* all = s.Find("allOf");
  const bool refWithSiblings = ref && HasConstraints(s, {"$ref"});
  if (!refWithSiblings && !all) return s;
  budget_.Tick(16);
  Value acc = Without(s, {"$ref", "allOf"});
  if (ref) {
    if (!ref->isString()) Invalid(ptr, "$ref", "expected a string");
    std::string tp;
    const Value& target = Flatten(Resolve(ref->text, ptr, tp), tp, depth + 1);
    acc = Merge(acc, target, ptr, depth);
  }
  if (all) {
    if (!all->isArray() || all->items.empty()) Invalid(ptr, "allOf", "expected a non-empty array");
    for (size_t i = 0; i < all->items.size(); ++i) {
      const std::string p = Child(Child(ptr, "allOf"), std::to_string(i));
      const Value* sub = &all->items[i];
      std::string tp = p;
      // A branch that is only a $ref merges its target.
      while (sub->isObject() && sub->Find("$ref") && !HasConstraints(*sub, {"$ref"})) {
        const Value* r = sub->Find("$ref");
        if (!r->isString()) Invalid(tp, "$ref", "expected a string");
        sub = &Resolve(r->text, tp, tp);
        budget_.Tick();
        if (++depth > budget_.limits().maxSchemaDepth)
          throw GrammarError(kErrTooLarge, tp, "$ref", "$ref chain too long");
      }
      acc = Merge(acc, Flatten(*sub, tp, depth + 1), p, depth);
    }
  }
  owned_.push_back(std::make_unique<Value>(std::move(acc)));
  return Flatten(*owned_.back(), ptr, depth + 1);
}

uint32_t SchemaCompiler::RefRule(const Value& target, const std::string& ptr, size_t depth) {
  auto it = ref_rules_.find(&target);
  if (it != ref_rules_.end()) return it->second;
  GrammarBuilder& b = pieces_.builder();
  const uint32_t r = b.AddRule(ptr.empty() ? "#" : ptr);
  ref_rules_[&target] = r;
  b.Define(r, Schema(target, ptr, depth + 1));
  return r;
}

unsigned SchemaCompiler::PossibleTypes(const Value& s0, const std::string& ptr, size_t depth) {
  if (depth > 32) return kAll;
  if (s0.isBool()) return s0.boolean ? kAll : 0;
  const Value& s = Flatten(s0, ptr, depth);
  if (!s.isObject()) return kAll;
  if (const Value* r = s.Find("$ref"); r && r->isString()) {
    std::string tp;
    return PossibleTypes(Resolve(r->text, ptr, tp), tp, depth + 1);
  }
  unsigned bits = DeclaredTypes(s, ptr);
  if (const Value* c = s.Find("const")) bits &= ValueType(*c);
  if (const Value* e = s.Find("enum"); e && e->isArray()) {
    unsigned eb = 0;
    for (const Value& v : e->items) eb |= ValueType(v);
    bits &= eb;
  }
  for (const char* k : {"anyOf", "oneOf"}) {
    if (const Value* a = s.Find(k); a && a->isArray()) {
      unsigned u = 0;
      for (const Value& v : a->items) u |= PossibleTypes(v, ptr, depth + 1);
      bits &= u;
    }
  }
  return bits;
}

void SchemaCompiler::CheckOneOfDisjoint(const Value& s, const std::string& ptr, size_t depth) {
  const Value& branches = *s.Find("oneOf");
  const size_t n = branches.items.size();
  std::vector<unsigned> types(n);
  for (size_t i = 0; i < n; ++i) types[i] = PossibleTypes(branches.items[i], ptr, depth + 1);
  bool disjoint = true;
  for (size_t i = 0; i < n && disjoint; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      if (types[i] & types[j]) disjoint = false;
    }
  }
  if (disjoint) return;
  // A discriminator: a property every branch requires, with pairwise disjoint const/enum values.
  std::vector<const Value*> flat(n);
  for (size_t i = 0; i < n; ++i) {
    const Value* b = &branches.items[i];
    std::string tp;
    for (int k = 0; k < 32 && b->isObject() && b->Find("$ref") && !HasConstraints(*b, {"$ref"}); ++k) {
      b = &Resolve(b->Find("$ref")->text, ptr, tp);
    }
    flat[i] = &Flatten(*b, ptr, depth + 1);
    if (!flat[i]->isObject()) Unsupported(ptr, "oneOf", "the branches may overlap (only disjoint oneOf is enforced)");
  }
  const Value* props0 = flat[0]->Find("properties");
  if (props0 && props0->isObject()) {
    for (const auto& [name, _] : props0->members) {
      std::vector<std::vector<Value>> values(n);
      bool ok = true;
      for (size_t i = 0; i < n && ok; ++i) {
        const Value* props = flat[i]->Find("properties");
        const Value* req = flat[i]->Find("required");
        const Value* p = props && props->isObject() ? props->Find(name) : nullptr;
        bool required = false;
        if (req && req->isArray()) {
          for (const Value& r : req->items) required = required || (r.isString() && r.text == name);
        }
        if (!p || !required || !p->isObject()) {
          ok = false;
          break;
        }
        std::string tp;
        for (int k = 0; k < 32 && p->Find("$ref") && p->Find("$ref")->isString(); ++k)
          p = &Resolve(p->Find("$ref")->text, ptr, tp);
        if (const Value* c = p->Find("const"))
          values[i] = {*c};
        else if (const Value* e = p->Find("enum"); e && e->isArray())
          values[i] = e->items;
        else
          ok = false;
      }
      for (size_t i = 0; i < n && ok; ++i) {
        for (size_t j = i + 1; j < n && ok; ++j) {
          for (const Value& v : values[i]) {
            if (std::find(values[j].begin(), values[j].end(), v) != values[j].end()) ok = false;
          }
        }
      }
      if (ok) return;
    }
  }
  Unsupported(ptr, "oneOf",
              "the branches may overlap (oneOf is enforced only when its branches are disjoint by type or by a "
              "required const/enum property)");
}

ExprId SchemaCompiler::SchemaCall(const Value& s, const std::string& ptr, size_t depth) {
  // Scalars stay inline (their own rule would only add stack frames); structures get a rule.
  if (s.isObject()) {
    const Value* t = s.Find("type");
    const bool scalar = (t && t->isString() && t->text != "object" && t->text != "array" && !s.Find("anyOf") &&
                         !s.Find("oneOf") && !s.Find("allOf") && !s.Find("$ref")) ||
                        ((s.Find("enum") || s.Find("const")) && !s.Find("$ref"));
    if (scalar || (s.Find("$ref") && !HasConstraints(s, {"$ref"}))) return Schema(s, ptr, depth + 1);
  }
  GrammarBuilder& b = pieces_.builder();
  const uint32_t r = b.AddRule(ptr);
  b.Define(r, Schema(s, ptr, depth + 1));
  return x_.Call(r);
}

ExprId SchemaCompiler::MergedBranch(const Value& base, const Value& branch, const std::string& p, size_t depth) {
  const Value* flat = &branch;
  std::string tp = p;
  for (int k = 0; k < 32 && flat->isObject() && flat->Find("$ref") && !HasConstraints(*flat, {"$ref"}); ++k) {
    flat = &Resolve(flat->Find("$ref")->text, tp, tp);
  }
  owned_.push_back(std::make_unique<Value>(Merge(base, Flatten(*flat, tp, depth + 1), p, depth)));
  return SchemaCall(*owned_.back(), p, depth);
}

ExprId SchemaCompiler::Schema(const Value& s0, const std::string& ptr, size_t depth) {
  if (depth > budget_.limits().maxSchemaDepth) {
    throw GrammarError(kErrTooLarge, ptr, "",
                       "schema nesting deeper than " + std::to_string(budget_.limits().maxSchemaDepth));
  }
  budget_.Tick(8);
  if (s0.isBool()) {
    if (!s0.boolean) Empty(ptr, "", "the schema 'false' admits no value");
    return x_.Call(pieces_.AnyValueRule());
  }
  if (!s0.isObject()) Invalid(ptr, "", "a schema must be an object or a boolean");
  for (const auto& [k, v] : s0.members) {
    if (IsRefused(k)) Unsupported(ptr, k, "keyword '" + k + "' is not supported");
  }
  if (const Value* ref = s0.Find("$ref"); ref && !HasConstraints(s0, {"$ref"})) {
    if (!ref->isString()) Invalid(ptr, "$ref", "expected a string");
    std::string tp;
    const Value& target = Resolve(ref->text, ptr, tp);
    return x_.Call(RefRule(target, tp, depth));
  }
  if (const Value* all = s0.Find("allOf");
      all && all->isArray() && all->items.size() == 1 && !HasConstraints(s0, {"allOf"})) {
    return Schema(all->items[0], Child(Child(ptr, "allOf"), "0"), depth + 1);  // keeps a recursive $ref a call
  }
  const Value& s = Flatten(s0, ptr, depth);
  if (&s != &s0) return Schema(s, ptr, depth + 1);

  if (s.Find("enum") || s.Find("const")) return Enum(s, ptr);

  const Value* anyOf = s.Find("anyOf");
  const Value* oneOf = s.Find("oneOf");
  if (anyOf && oneOf) Unsupported(ptr, "oneOf", "anyOf together with oneOf");
  if (anyOf || oneOf) {
    const char* kw = anyOf ? "anyOf" : "oneOf";
    const Value& list = anyOf ? *anyOf : *oneOf;
    if (!list.isArray() || list.items.empty()) Invalid(ptr, kw, "expected a non-empty array");
    if (oneOf) CheckOneOfDisjoint(s, ptr, depth);
    const bool siblings = HasConstraints(s, {"anyOf", "oneOf"});
    const Value base = Without(s, {"anyOf", "oneOf"});
    std::vector<ExprId> alts;
    for (size_t i = 0; i < list.items.size(); ++i) {
      const std::string p = Child(Child(ptr, kw), std::to_string(i));
      const Value& branch = list.items[i];
      if (branch.isBool() && !branch.boolean) continue;  // a 'false' branch admits nothing
      try {
        alts.push_back(siblings ? MergedBranch(base, branch, p, depth) : SchemaCall(branch, p, depth));
      } catch (const EmptyLanguageError&) {
        // a branch no value satisfies adds nothing
      }
    }
    if (alts.empty()) Empty(ptr, kw, "no branch admits a value");
    return x_.Alt(std::move(alts));
  }

  unsigned types = DeclaredTypes(s, ptr);
  if (!s.Find("type")) {
    // No type: the types the present keywords constrain (a subset of what the schema admits), else any value.
    unsigned implied = 0;
    for (const auto& [k, v] : s.members) {
      if (k == "properties" || k == "required" || k == "additionalProperties" || k == "minProperties" ||
          k == "maxProperties" || k == "unevaluatedProperties") {
        implied |= kObj;
      } else if (k == "items" || k == "prefixItems" || k == "minItems" || k == "maxItems" || k == "additionalItems" ||
                 k == "uniqueItems") {
        implied |= kArr;
      } else if (k == "minLength" || k == "maxLength" || k == "pattern" || k == "format") {
        implied |= kStr;
      } else if (k == "minimum" || k == "maximum" || k == "exclusiveMinimum" || k == "exclusiveMaximum" ||
                 k == "multipleOf") {
        implied |= kInt | kFrac;
      }
    }
    if (implied == 0) return x_.Call(pieces_.AnyValueRule());
    types = implied;
  }
  std::vector<ExprId> alts;
  if (types & kNull) alts.push_back(x_.Literal("null"));
  if (types & kBool) alts.push_back(x_.Alt({x_.Literal("true"), x_.Literal("false")}));
  if ((types & (kInt | kFrac)) == (kInt | kFrac))
    alts.push_back(NumberExpr(s, ptr, false));
  else if (types & kInt)
    alts.push_back(NumberExpr(s, ptr, true));
  if (types & kStr) alts.push_back(String(s, ptr));
  if (types & kArr) alts.push_back(Array(s, ptr, depth));
  if (types & kObj) alts.push_back(Object(s, ptr, depth));
  if (alts.empty()) Invalid(ptr, "type", "no type admitted");
  return x_.Alt(std::move(alts));
}

ExprId SchemaCompiler::Enum(const Value& s, const std::string& ptr) {
  const unsigned types = DeclaredTypes(s, ptr);
  std::vector<const Value*> values;
  const char* kw = "enum";
  if (const Value* c = s.Find("const")) {
    values.push_back(c);
    kw = "const";
  } else {
    const Value* e = s.Find("enum");
    if (!e->isArray()) Invalid(ptr, "enum", "expected an array");
    for (const Value& v : e->items) values.push_back(&v);
  }
  std::vector<ExprId> alts;
  std::set<std::string> seen;
  for (const Value* v : values) {
    if (!(ValueType(*v) & types)) continue;
    std::string text = json::Serialize(*v);
    if (seen.insert(text).second) alts.push_back(x_.Literal(text));
    budget_.Tick(text.size());
  }
  if (alts.empty()) Empty(ptr, kw, "no value of the allowed types");
  return x_.Alt(std::move(alts));
}

ExprId SchemaCompiler::NumberExpr(const Value& s, const std::string& ptr, bool integer) {
  if (const Value* m = s.Find("multipleOf")) {
    if (!(m->isNumber() && integer && IsIntegerValued(m->number) && m->number == 1)) {
      Unsupported(ptr, "multipleOf", "multipleOf is not supported (except 1 on integers)");
    }
  }
  // Bounds as (value, strict, keyword).
  struct Bound {
    bool set = false;
    double v = 0;
    bool strict = false;
    const char* kw = "";
  };
  Bound lo, hi;
  auto tighten = [&](Bound& b, double v, bool strict, const char* kw, bool lower) {
    if (!b.set || (lower ? (v > b.v || (v == b.v && strict)) : (v < b.v || (v == b.v && strict))))
      b = {true, v, strict, kw};
  };
  const Value* exMin = s.Find("exclusiveMinimum");
  const Value* exMax = s.Find("exclusiveMaximum");
  if (const Value* v = s.Find("minimum")) {
    if (!v->isNumber()) Invalid(ptr, "minimum", "expected a number");
    tighten(lo, v->number, exMin && exMin->isBool() && exMin->boolean, "minimum", true);
  }
  if (const Value* v = s.Find("maximum")) {
    if (!v->isNumber()) Invalid(ptr, "maximum", "expected a number");
    tighten(hi, v->number, exMax && exMax->isBool() && exMax->boolean, "maximum", false);
  }
  if (exMin && exMin->isNumber()) tighten(lo, exMin->number, true, "exclusiveMinimum", true);
  if (exMax && exMax->isNumber()) tighten(hi, exMax->number, true, "exclusiveMaximum", false);
  if (const Value* f = s.Find("format"); f && f->isString()) {
    if (f->text == "int32") {
      tighten(lo, -2147483648.0, false, "format", true);
      tighten(hi, 2147483647.0, false, "format", false);
    } else if (f->text == "int64" || f->text == "float" || f->text == "double") {
    } else {
      Unsupported(ptr, "format", "format '" + f->text + "' is not supported on numbers");
    }
  }
  if (!lo.set && !hi.set) return pieces_.Number(integer);
  for (const Bound* b : {&lo, &hi}) {
    if (b->set && !std::isfinite(b->v)) Invalid(ptr, b->kw, "bound is not finite");
  }
  if (integer) {
    int64_t a = -kIntLimit, z = kIntLimit;
    if (lo.set) {
      const double c = std::ceil(lo.v);
      a = c > 1e15 ? kIntLimit + 1 : c < -1e15 ? -kIntLimit : static_cast<int64_t>(c);
      if (lo.strict && c == lo.v) ++a;
    }
    if (hi.set) {
      const double f = std::floor(hi.v);
      z = f < -1e15 ? -kIntLimit - 1 : f > 1e15 ? kIntLimit : static_cast<int64_t>(f);
      if (hi.strict && f == hi.v) --z;
    }
    ExprId out = 0;
    if (!IntRange(x_, a, z, out)) Empty(ptr, lo.set ? lo.kw : hi.kw, "no integer satisfies the bounds");
    return out;
  }
  for (const Bound* b : {&lo, &hi}) {
    if (b->set && !IsIntegerValued(b->v)) {
      Unsupported(ptr, b->kw,
                  "number bounds that are not integers are not supported (integer bounds and integer types are)");
    }
  }
  const int64_t A = lo.set ? static_cast<int64_t>(lo.v) : 0, B = hi.set ? static_cast<int64_t>(hi.v) : 0;
  std::vector<ExprId> alts;
  ExprId part = 0;
  // x >= 0 part
  if (!hi.set || B > 0 || (B == 0 && !hi.strict)) {
    const int64_t L = lo.set && A >= 0 ? A : 0;
    const bool sL = lo.set && A >= 0 && lo.strict;
    if (NonNegDecimal(x_, L, sL, hi.set ? B : -1, hi.strict, part)) alts.push_back(part);
  }
  // x < 0 part: "-" m with m > 0
  if (!lo.set || A < 0) {
    const int64_t L = hi.set && B < 0 ? -B : 0;
    const bool sL = hi.set && B < 0 ? hi.strict : true;
    if (NonNegDecimal(x_, L, sL, lo.set ? -A : -1, lo.strict, part)) alts.push_back(x_.Seq({x_.Byte('-'), part}));
  }
  if (alts.empty()) Empty(ptr, lo.set ? lo.kw : hi.kw, "no number satisfies the bounds");
  return x_.Alt(std::move(alts));
}

ExprId SchemaCompiler::String(const Value& s, const std::string& ptr) {
  const uint32_t minLen = NonNegInt(s, ptr, "minLength", 0);
  const uint32_t maxLen = s.Find("maxLength") ? NonNegInt(s, ptr, "maxLength", 0) : kUnbounded;
  if (maxLen != kUnbounded && maxLen < minLen) Empty(ptr, "maxLength", "maxLength is below minLength");
  const Value* pattern = s.Find("pattern");
  const Value* format = s.Find("format");
  if (pattern && format) Unsupported(ptr, "format", "format together with pattern");
  if (pattern || format) {
    const char* kw = pattern ? "pattern" : "format";
    const Value* v = pattern ? pattern : format;
    if (!v->isString()) Invalid(ptr, kw, "expected a string");
    if (minLen > 0 || maxLen != kUnbounded) {
      Unsupported(ptr, s.Find("minLength") ? "minLength" : "maxLength",
                  std::string("length bounds together with ") + kw);
    }
    const char* re = pattern ? v->text.c_str() : FormatPattern(v->text);
    if (!re) Unsupported(ptr, "format", "format '" + v->text + "' is not supported");
    const std::string key = std::string(kw) + ":" + v->text;
    auto& keyed = pieces_.keyedRules();
    auto it = keyed.find(key);
    if (it != keyed.end()) return x_.Call(it->second);
    RegexResult r = CompileRegex(x_, re, CharEncoding::kJsonString, ptr, kw);
    ExprId any = 0;
    CharClassExpr(x_, {{0x20, 0x10FFFF}}, CharEncoding::kJsonString, any);
    std::vector<ExprId> seq{x_.Byte('"')};
    if (!r.anchoredStart) seq.push_back(x_.Repeat(any, 0, 16));
    seq.push_back(r.expr);
    if (!r.anchoredEnd) seq.push_back(x_.Repeat(any, 0, 16));
    seq.push_back(x_.Byte('"'));
    GrammarBuilder& b = pieces_.builder();
    const uint32_t rule = b.AddRule(key);
    keyed[key] = rule;
    b.Define(rule, x_.Seq(std::move(seq)));
    return x_.Call(rule);
  }
  uint32_t max = maxLen;
  if (max != kUnbounded && max > std::max(minLen, kStringCap)) max = std::max(minLen, kStringCap);
  if (minLen > 4096) throw GrammarError(kErrTooLarge, ptr, "minLength", "minLength above 4096");
  return x_.Call(pieces_.StringRule(minLen, max));
}

ExprId SchemaCompiler::Array(const Value& s, const std::string& ptr, size_t depth) {
  uint32_t minItems = NonNegInt(s, ptr, "minItems", 0);
  uint32_t maxItems = s.Find("maxItems") ? NonNegInt(s, ptr, "maxItems", 0) : kUnbounded;
  if (maxItems != kUnbounded && maxItems < minItems) Empty(ptr, "maxItems", "maxItems is below minItems");
  if (const Value* u = s.Find("uniqueItems"); u && u->isBool() && u->boolean && maxItems > 1) {
    Unsupported(ptr, "uniqueItems", "uniqueItems is not supported (except with maxItems <= 1)");
  }
  std::vector<std::pair<const Value*, std::string>> prefix;
  const Value* rest = nullptr;
  std::string restPtr;
  const Value* items = s.Find("items");
  const Value* prefixItems = s.Find("prefixItems");
  static const Value kTrue = [] {
    Value v;
    v.kind = Kind::kBool;
    v.boolean = true;
    return v;
  }();
  if (prefixItems) {
    if (!prefixItems->isArray()) Invalid(ptr, "prefixItems", "expected an array");
    for (size_t i = 0; i < prefixItems->items.size(); ++i) {
      prefix.push_back({&prefixItems->items[i], Child(Child(ptr, "prefixItems"), std::to_string(i))});
    }
    rest = items ? items : &kTrue;
    restPtr = Child(ptr, "items");
  } else if (items && items->isArray()) {
    for (size_t i = 0; i < items->items.size(); ++i)
      prefix.push_back({&items->items[i], Child(Child(ptr, "items"), std::to_string(i))});
    const Value* add = s.Find("additionalItems");
    rest = add ? add : &kTrue;
    restPtr = Child(ptr, "additionalItems");
  } else {
    rest = items ? items : &kTrue;
    restPtr = Child(ptr, "items");
  }
  if (rest->isBool() && !rest->boolean) rest = nullptr;
  // A prefix item that admits nothing ends the array before it.
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (prefix[i].first->isBool() && !prefix[i].first->boolean) {
      prefix.resize(i);
      rest = nullptr;
      break;
    }
  }
  const uint32_t m = static_cast<uint32_t>(prefix.size());
  if (!rest) maxItems = std::min(maxItems, m);
  if (minItems > maxItems) Empty(ptr, "minItems", "more items required than the schema admits");
  if (maxItems != kUnbounded && maxItems > std::max(minItems, std::max(m, kItemsCap)))
    maxItems = std::max(minItems, std::max(m, kItemsCap));
  if (minItems > 1024) throw GrammarError(kErrTooLarge, ptr, "minItems", "minItems above 1024");
  std::vector<ExprId> prefixExpr;
  for (const auto& [sch, p] : prefix) prefixExpr.push_back(SchemaCall(*sch, p, depth));
  ExprId restExpr = rest ? SchemaCall(*rest, restPtr, depth) : 0;
  const ExprId sep = pieces_.Sep(',');
  // Tail(i): items i.. with a separator before each.
  std::function<ExprId(uint32_t)> tail = [&](uint32_t i) -> ExprId {
    if (i >= maxItems) return x_.Empty();
    if (i < m) {
      const ExprId step = x_.Seq({sep, prefixExpr[i], tail(i + 1)});
      return i >= minItems ? x_.Optional(step) : step;
    }
    if (!rest) return x_.Empty();
    const uint32_t lo = minItems > i ? minItems - i : 0;
    const uint32_t hi = maxItems == kUnbounded ? kUnbounded : maxItems - i;
    return x_.Repeat(x_.Seq({sep, restExpr}), lo, hi);
  };
  ExprId body = x_.Empty();
  if (maxItems > 0) {
    const ExprId first = m > 0 ? prefixExpr[0] : restExpr;
    const ExprId items1 = x_.Seq({first, tail(1)});
    body = minItems == 0 ? x_.Optional(items1) : items1;
  }
  return x_.Seq({x_.Byte('['), pieces_.Ws(), body, pieces_.Ws(), x_.Byte(']')});
}

namespace {
// A JSON string key of [A-Za-z0-9_-] characters that is none of `names` (trie over the names).
struct KeyTrie {
  std::map<char, std::unique_ptr<KeyTrie>> kids;
  bool terminal = false;
};
bool SafeKeyChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }
ExprId KeyExcept(ExprPool& x, const KeyTrie& t, ExprId freeTail) {
  std::vector<ExprId> alts;
  std::vector<ByteRange> others;
  int prev = -1;
  auto addRange = [&](int lo, int hi) {
    if (lo <= hi) others.push_back({static_cast<uint8_t>(lo), static_cast<uint8_t>(hi)});
  };
  // safe chars minus the trie's children
  static const std::pair<int, int> kSafe[] = {{'-', '-'}, {'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
  for (auto [lo, hi] : kSafe) {
    int start = lo;
    for (int c = lo; c <= hi; ++c) {
      if (t.kids.count(static_cast<char>(c))) {
        addRange(start, c - 1);
        start = c + 1;
      }
    }
    addRange(start, hi);
  }
  (void)prev;
  for (const auto& [c, kid] : t.kids)
    alts.push_back(x.Seq({x.Byte(static_cast<uint8_t>(c)), KeyExcept(x, *kid, freeTail)}));
  if (!others.empty()) alts.push_back(x.Seq({x.Bytes(others), freeTail}));
  if (!t.terminal) alts.push_back(x.Byte('"'));
  return x.Alt(std::move(alts));
}
}  // namespace

ExprId SchemaCompiler::Object(const Value& s, const std::string& ptr, size_t depth) {
  struct Prop {
    std::string name;
    const Value* schema;
    bool required;
    std::string ptr;
  };
  static const Value kTrue = [] {
    Value v;
    v.kind = Kind::kBool;
    v.boolean = true;
    return v;
  }();
  std::vector<Prop> props;
  const Value* properties = s.Find("properties");
  if (properties && !properties->isObject()) Invalid(ptr, "properties", "expected an object");
  std::set<std::string> required;
  if (const Value* req = s.Find("required")) {
    if (!req->isArray()) Invalid(ptr, "required", "expected an array of strings");
    for (const Value& r : req->items) {
      if (!r.isString()) Invalid(ptr, "required", "expected an array of strings");
      required.insert(r.text);
    }
  }
  std::set<std::string> named;
  if (properties) {
    for (const auto& [name, sch] : properties->members) {
      if (!named.insert(name).second) continue;
      const bool req = required.count(name) > 0;
      if (sch.isBool() && !sch.boolean) {
        if (req) Invalid(Child(Child(ptr, "properties"), name), "required", "a required property's schema is 'false'");
        continue;
      }
      props.push_back({name, &sch, req, Child(Child(ptr, "properties"), name)});
    }
  }
  const Value* additional = s.Find("additionalProperties");
  if (!additional) additional = s.Find("unevaluatedProperties");
  const bool closed = additional && additional->isBool() && !additional->boolean;
  for (const std::string& r : required) {
    if (named.count(r)) continue;
    if (closed) Invalid(ptr, "required", "required property '" + r + "' is not allowed by additionalProperties");
    props.push_back(
        {r, additional && additional->isObject() ? additional : &kTrue, true, Child(Child(ptr, "required"), r)});
    named.insert(r);
  }
  // Extra members: only under an explicit schema, or for an object with no named properties.
  const Value* extra = nullptr;
  if (additional && additional->isObject())
    extra = additional;
  else if (!closed && !properties && props.empty())
    extra = &kTrue;
  // minProperties / maxProperties by making optional properties required (in order) or dropping them.
  const uint32_t minP = NonNegInt(s, ptr, "minProperties", 0);
  const uint32_t maxP = s.Find("maxProperties") ? NonNegInt(s, ptr, "maxProperties", 0) : kUnbounded;
  size_t nReq = 0;
  for (const Prop& p : props) nReq += p.required;
  if (maxP != kUnbounded && nReq > maxP)
    Invalid(ptr, "maxProperties", "more properties are required than maxProperties");
  if (maxP != kUnbounded) {
    extra = nullptr;
    for (size_t i = props.size(); i-- > 0 && props.size() > maxP;) {
      if (!props[i].required) props.erase(props.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  if (minP > nReq) {
    for (Prop& p : props) {
      if (nReq >= minP) break;
      if (!p.required) p.required = true, ++nReq;
    }
    if (nReq < minP) Unsupported(ptr, "minProperties", "minProperties above the named properties");
  }
  if (minP > 0 && extra && props.empty())
    Unsupported(ptr, "minProperties", "minProperties on an object without named properties");

  const ExprId sep = pieces_.Sep(',');
  const ExprId colon = pieces_.Sep(':');
  std::vector<ExprId> members;
  for (size_t i = 0; i < props.size();) {
    const Prop& p = props[i];
    try {
      members.push_back(x_.Seq({x_.Literal(json::Quote(p.name)), colon, SchemaCall(*p.schema, p.ptr, depth)}));
      ++i;
    } catch (const EmptyLanguageError&) {
      if (p.required) throw;
      props.erase(props.begin() + static_cast<std::ptrdiff_t>(i));  // an optional property no value satisfies
    }
  }
  ExprId extraTail = x_.Empty(), extraFirst = x_.Empty();
  bool hasExtra = false;
  if (extra) {
    hasExtra = true;
    ExprId key = 0;
    std::vector<std::string> safeNames;
    for (const Prop& p : props) {
      if (std::all_of(p.name.begin(), p.name.end(), SafeKeyChar)) safeNames.push_back(p.name);
    }
    if (props.empty()) {
      key = pieces_.AnyString();
    } else {
      KeyTrie trie;
      for (const std::string& n : safeNames) {
        KeyTrie* t = &trie;
        for (char c : n) {
          auto& k = t->kids[c];
          if (!k) k = std::make_unique<KeyTrie>();
          t = k.get();
        }
        t->terminal = true;
      }
      const ExprId freeTail = x_.Seq(
          {x_.Repeat(x_.Bytes({{'-', '-'}, {'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}), 0, 24), x_.Byte('"')});
      key = x_.Seq({x_.Byte('"'), KeyExcept(x_, trie, freeTail)});
    }
    const ExprId member = x_.Seq({key, colon, SchemaCall(*extra, Child(ptr, "additionalProperties"), depth)});
    extraTail = x_.Star(x_.Seq({sep, member}));
    extraFirst = x_.Seq({member, extraTail});
  }
  const size_t n = props.size();
  // Rest(i): members i.. after at least one member, each preceded by a separator.
  // With many properties each Rest(i) is its own rule (linear size); otherwise inline.
  const bool useRules = n > 12;
  GrammarBuilder& b = pieces_.builder();
  std::vector<ExprId> restExpr(n + 1);
  restExpr[n] = extraTail;
  for (size_t i = n; i-- > 0;) {
    const ExprId step = x_.Seq({sep, members[i]});
    ExprId e = x_.Seq({props[i].required ? step : x_.Optional(step), restExpr[i + 1]});
    if (useRules && i + 1 < n) {
      const uint32_t r = b.AddRule(ptr + "#rest" + std::to_string(i));
      b.Define(r, e);
      e = x_.Call(r);
    }
    restExpr[i] = e;
  }
  // First(i): nothing emitted yet; the first emitted member has no separator.
  std::vector<ExprId> firstAlts;
  bool allOptional = true;
  for (size_t i = 0; i < n; ++i) {
    firstAlts.push_back(x_.Seq({members[i], restExpr[i + 1]}));
    if (props[i].required) {
      allOptional = false;
      break;
    }
  }
  if (allOptional && hasExtra) firstAlts.push_back(extraFirst);
  ExprId body = firstAlts.empty() ? x_.Empty() : x_.Alt(firstAlts);
  if (allOptional) body = x_.Optional(body);
  return x_.Seq({x_.Byte('{'), pieces_.Ws(), body, pieces_.Ws(), x_.Byte('}')});
}

}  // namespace tokmeter::grammar
