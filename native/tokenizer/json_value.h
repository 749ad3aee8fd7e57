// tokmeter::tokenizer::json::Value — the small parts of a tokenizer.json as a tree, read by each component's
// FromJson (normalizers/, pre_tokenizers/, models/, post_processors/, decoders/).
//
// ParseDocument builds the tree in one pass over the document except at the key paths it is told to leave raw (a
// 10 MB model.vocab / model.merges): those become Type::kRaw values holding their undecoded JSON text, which the
// model reads with the purpose-built parsers of json_scan.h. No tree of 200k tokens is ever built.
//
// Semantics are JSON.parse's: a repeated object key keeps its last value (Find returns it); strings decode as in
// json_scan.h. Errors are tokmeter::Error("ERR_TOKENIZER_SPEC", "invalid tokenizer: <path>: <problem>"); the
// readers below name the JSON path (e.g. "pre_tokenizer.pretokenizers[1].behavior") and what was found.
// Unsupported() gives ERR_TOKENIZER_UNSUPPORTED for a component type tokmeter does not implement.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokmeter::tokenizer::json {

class Value {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject, kRaw };
  Value() = default;
  static Value Null() { return Value(); }
  static Value Bool(bool b);
  static Value Number(double d);
  static Value String(std::string s);
  static Value Array(std::vector<Value> items);
  static Value Object(std::vector<std::pair<std::string, Value>> members);
  static Value Raw(std::string_view text);

  Type type() const { return type_; }
  bool IsNull() const { return type_ == Type::kNull; }
  bool IsObject() const { return type_ == Type::kObject; }
  bool IsArray() const { return type_ == Type::kArray; }
  bool IsString() const { return type_ == Type::kString; }
  bool IsNumber() const { return type_ == Type::kNumber; }
  bool IsBool() const { return type_ == Type::kBool; }
  bool IsRaw() const { return type_ == Type::kRaw; }

  bool bool_value() const { return b_; }
  double number() const { return d_; }
  const std::string& str() const { return s_; }  // kString: decoded UTF-8
  std::string_view raw() const { return raw_; }  // kRaw: the JSON text (borrowed from the document)
  const std::vector<Value>& items() const { return items_; }
  const std::vector<std::pair<std::string, Value>>& members() const { return members_; }
  // The value of `key` in an object (its last occurrence, as JSON.parse keeps); nullptr when absent or not an object.
  const Value* Find(std::string_view key) const;
  // Find, but null values count as absent.
  const Value* Get(std::string_view key) const {
    const Value* v = Find(key);
    return v && !v->IsNull() ? v : nullptr;
  }
  // Adds or replaces a member (builds synthetic documents, e.g. for tiktoken encodings).
  void Set(std::string key, Value v);

 private:
  Type type_ = Type::kNull;
  bool b_ = false;
  double d_ = 0;
  std::string s_;
  std::string_view raw_;
  std::vector<Value> items_;
  std::vector<std::pair<std::string, Value>> members_;
};

// Parses a whole JSON document. Values at `raw_paths` (object keys from the root) stay kRaw. Malformed JSON throws
// ERR_TOKENIZER_SPEC "invalid tokenizer: <field>: not valid JSON: <problem> at byte <n>". Nesting deeper than 512
// levels is refused the same way. `doc` must outlive the returned tree's raw values.
Value ParseDocument(std::string_view doc, const std::vector<std::vector<std::string>>& raw_paths,
                    std::string_view field);

// ---- readers that name the path at fault ----------------------------------------------------------------------

// JSON.stringify-like description of a value for messages: null, an array, an object, the string "...", number 1.5.
std::string Describe(const Value* v);
// `s` quoted as JSON.stringify would (for paths like model.vocab["x"] and messages).
std::string Stringify(std::string_view s);

[[noreturn]] void SpecError(const std::string& path, const std::string& problem);
[[noreturn]] void Unsupported(const std::string& path, const std::string& what);

const Value& Obj(const Value* v, const std::string& path);
const std::vector<Value>& Arr(const Value* v, const std::string& path);
// o[key] as a string; error when absent or not a string.
const std::string& Str(const Value& o, std::string_view key, const std::string& path);
// o[key] as a string, nullopt when absent or null.
std::optional<std::string> OptStr(const Value& o, std::string_view key, const std::string& path);
// o[key] as a boolean; `fallback` when absent or null (error without a fallback).
bool Bool(const Value& o, std::string_view key, const std::string& path, std::optional<bool> fallback = std::nullopt);
// A non-negative integer no larger than 0xFFFFFFF0 (Number.isInteger semantics: 7, 7.0 and 7e0 alike).
uint32_t Uint(const Value* v, const std::string& path);
// The "type" of a component object: a string, or an error naming path.type.
const std::string& Type(const Value& o, const std::string& path);

// A pattern object as tokenizer.json writes it: {"String": literal} or {"Regex": source}, at o.pattern.
struct Pattern {
  std::string text;
  bool is_regex = false;
};
Pattern ReadPattern(const Value& o, const std::string& path);

// Deepest nesting of Sequence components (normalizers, pre-tokenizers, decoders, post-processors). Real files nest
// one or two levels.
inline constexpr int kMaxSequenceDepth = 32;
void CheckSequenceDepth(int depth, const std::string& path);

}  // namespace tokmeter::tokenizer::json
