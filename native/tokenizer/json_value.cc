#include "tokenizer/json_value.h"

#include <cmath>
#include <cstdio>

#include "util/error.h"

namespace tokmeter::tokenizer::json {

Value Value::Bool(bool b) {
  Value v;
  v.type_ = Type::kBool;
  v.b_ = b;
  return v;
}
Value Value::Number(double d) {
  Value v;
  v.type_ = Type::kNumber;
  v.d_ = d;
  return v;
}
Value Value::String(std::string s) {
  Value v;
  v.type_ = Type::kString;
  v.s_ = std::move(s);
  return v;
}
Value Value::Array(std::vector<Value> items) {
  Value v;
  v.type_ = Type::kArray;
  v.items_ = std::move(items);
  return v;
}
Value Value::Object(std::vector<std::pair<std::string, Value>> members) {
  Value v;
  v.type_ = Type::kObject;
  v.members_ = std::move(members);
  return v;
}
Value Value::Raw(std::string_view text) {
  Value v;
  v.type_ = Type::kRaw;
  v.raw_ = text;
  return v;
}

const Value* Value::Find(std::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  for (size_t i = members_.size(); i-- > 0;)
    if (members_[i].first == key) return &members_[i].second;
  return nullptr;
}

void Value::Set(std::string key, Value v) {
  for (auto& [k, old] : members_)
    if (k == key) {
      old = std::move(v);
      return;
    }
  members_.emplace_back(std::move(key), std::move(v));
}

std::string Stringify(std::string_view s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      q += '\\';
      q += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      q += buf;
    } else {
      q += c;
    }
  }
  return q + "\"";
}

std::string Describe(const Value* v) {
  if (!v) return "undefined";
  switch (v->type()) {
    case Value::Type::kNull: return "null";
    case Value::Type::kBool: return v->bool_value() ? "boolean true" : "boolean false";
    case Value::Type::kNumber: {
      double d = v->number();
      if (d == std::floor(d) && std::fabs(d) < 1e15) return "number " + std::to_string(static_cast<long long>(d));
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", d);
      return std::string("number ") + buf;
    }
    case Value::Type::kString: {
      const std::string& s = v->str();
      if (s.size() <= 40) return "the string " + Stringify(s);
      size_t cut = 40;
      while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
      return "the string " + Stringify(s.substr(0, cut) + "\xE2\x80\xA6");
    }
    case Value::Type::kArray: return "an array";
    case Value::Type::kObject: return "an object";
    case Value::Type::kRaw: {
      char c = v->raw().empty() ? '\0' : v->raw()[0];
      return c == '[' ? "an array" : c == '{' ? "an object" : c == '"' ? "a string" : "a JSON value";
    }
  }
  return "a JSON value";
}

void SpecError(const std::string& path, const std::string& problem) {
  throw tokmeter::Error("ERR_TOKENIZER_SPEC", "invalid tokenizer: " + path + ": " + problem);
}

void Unsupported(const std::string& path, const std::string& what) {
  throw tokmeter::Error(
      "ERR_TOKENIZER_UNSUPPORTED",
      "unsupported tokenizer component at " + path + ": " + what +
          " (tokmeter implements BPE, WordPiece, WordLevel and Unigram models; NFC/NFD/NFKC/NFKD, Lowercase, Replace, "
          "Prepend, Strip, StripAccents, Nmt, Precompiled, BertNormalizer normalizers; Split, ByteLevel, Metaspace, "
          "Whitespace, WhitespaceSplit, Digits, Punctuation, BertPreTokenizer pre-tokenizers; see docs)");
}

const Value& Obj(const Value* v, const std::string& path) {
  if (!v || !v->IsObject()) SpecError(path, "expected an object, got " + Describe(v));
  return *v;
}

const std::vector<Value>& Arr(const Value* v, const std::string& path) {
  if (!v || !v->IsArray()) SpecError(path, "expected an array, got " + Describe(v));
  return v->items();
}

const std::string& Str(const Value& o, std::string_view key, const std::string& path) {
  const Value* v = o.Find(key);
  if (!v || !v->IsString()) SpecError(path + "." + std::string(key), "expected a string, got " + Describe(v));
  return v->str();
}

std::optional<std::string> OptStr(const Value& o, std::string_view key, const std::string& path) {
  const Value* v = o.Get(key);
  if (!v) return std::nullopt;
  if (!v->IsString()) SpecError(path + "." + std::string(key), "expected a string or null, got " + Describe(v));
  return v->str();
}

bool Bool(const Value& o, std::string_view key, const std::string& path, std::optional<bool> fallback) {
  const Value* v = o.Get(key);
  if (!v && fallback) return *fallback;
  if (!v || !v->IsBool()) SpecError(path + "." + std::string(key), "expected a boolean, got " + Describe(v));
  return v->bool_value();
}

uint32_t Uint(const Value* v, const std::string& path) {
  if (!v || !v->IsNumber() || !(v->number() >= 0 && v->number() <= 4294967280.0) ||
      v->number() != std::floor(v->number()))
    SpecError(path, "expected a non-negative integer, got " + Describe(v));
  return static_cast<uint32_t>(v->number());
}

const std::string& Type(const Value& o, const std::string& path) {
  const Value* t = o.Find("type");
  if (!t || !t->IsString()) SpecError(path + ".type", "expected a string, got " + Describe(t));
  return t->str();
}

Pattern ReadPattern(const Value& o, const std::string& path) {
  const Value& p = Obj(o.Find("pattern"), path + ".pattern");
  const Value* lit = p.Find("String");
  if (lit && lit->IsString()) return {lit->str(), false};
  const Value* re = p.Find("Regex");
  if (re && re->IsString()) return {re->str(), true};
  SpecError(path + ".pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
}

void CheckSequenceDepth(int depth, const std::string& path) {
  if (depth > kMaxSequenceDepth)
    SpecError(path, "Sequence components nested more than " + std::to_string(kMaxSequenceDepth) + " levels deep");
}

}  // namespace tokmeter::tokenizer::json
