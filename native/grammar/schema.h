// tokmeter::grammar JSON Schema compiler — a JSON Schema to grammar rules whose language is a subset of the JSON
// documents the schema accepts (every document the grammar allows validates; not every valid document is allowed).
//
// Output form (the bounded JSON policy):
//   - separators are compact with at most one optional whitespace run between structural tokens: nothing, one space,
//     or a newline followed by at most 20 spaces (so pretty-printed output up to 10 levels of two-space indent);
//     no whitespace before the top-level value or after it, so a document ends exactly at its last byte;
//   - object members appear in the order of `properties`; optional ones may be omitted; members that are neither in
//     `properties` nor required are produced only when `additionalProperties` is a schema, or when the object has no
//     `properties` at all (then with any value); their keys are ASCII [A-Za-z0-9_-] and differ from the named ones;
//   - numbers have at most 18 integer digits and 18 fraction digits and an exponent of at most 3 digits (no
//     exponent under a bound); integers have no fraction or exponent; strings escape only what JSON requires, plus
//     \u escapes (four hex digits) outside the surrogate range.
// Coverage and refusals are listed in native/grammar/README.md. Every refusal is a GrammarError naming the JSON
// pointer of the schema node and the keyword.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "grammar/automaton.h"
#include "grammar/json_value.h"

namespace tokmeter::grammar {

// Rules and expressions every JSON grammar shares (one set per builder).
class JsonPieces {
 public:
  explicit JsonPieces(GrammarBuilder& b);
  ExprId Ws();
  ExprId Sep(char c);                               // ws c ws
  ExprId List(char open, ExprId item, char close);  // open ws (item (sep item)*)? ws close
  ExprId StringChar();
  ExprId AnyString();
  ExprId Number(bool integer);
  uint32_t AnyValueRule();
  uint32_t AnyObjectRule();
  uint32_t AnyArrayRule();
  // A string rule: `"` + min..max characters + `"` (max may be kUnbounded); one rule per bounds.
  uint32_t StringRule(uint32_t min, uint32_t max);
  // Rules shared by key (a string's pattern or format), so equal constraints share one rule and its mask entries.
  std::map<std::string, uint32_t>& keyedRules() noexcept { return keyed_; }
  GrammarBuilder& builder() noexcept { return b_; }

 private:
  GrammarBuilder& b_;
  int64_t value_ = -1, object_ = -1, array_ = -1;
  int64_t char_ = -1;
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> strings_;
  std::map<std::string, uint32_t> keyed_;
};

class SchemaCompiler {
 public:
  // `root` must outlive the compiler; `pointer` is the root's pointer within the spec document.
  SchemaCompiler(JsonPieces& pieces, Budget& budget, const json::Value& root, std::string pointer);
  // The expression of a document valid under the root schema.
  ExprId Compile();

 private:
  struct Ctx;
  ExprId Schema(const json::Value& s, const std::string& ptr, size_t depth);
  ExprId MergedBranch(const json::Value& base, const json::Value& branch, const std::string& ptr, size_t depth);
  ExprId SchemaCall(const json::Value& s, const std::string& ptr, size_t depth);  // a Call when not a scalar
  ExprId Typed(const json::Value& s, const std::string& ptr, const std::string& type, size_t depth);
  ExprId Object(const json::Value& s, const std::string& ptr, size_t depth);
  ExprId Array(const json::Value& s, const std::string& ptr, size_t depth);
  ExprId String(const json::Value& s, const std::string& ptr);
  ExprId NumberExpr(const json::Value& s, const std::string& ptr, bool integer);
  ExprId Enum(const json::Value& s, const std::string& ptr);
  uint32_t RefRule(const json::Value& target, const std::string& ptr, size_t depth);
  const json::Value& Resolve(const std::string& ref, const std::string& ptr, std::string& targetPtr);
  // Folds $ref-with-siblings and allOf into one schema object (owned by the compiler).
  const json::Value& Flatten(const json::Value& s, const std::string& ptr, size_t depth);
  json::Value Merge(const json::Value& a, const json::Value& b, const std::string& ptr, size_t depth);
  void CheckOneOfDisjoint(const json::Value& s, const std::string& ptr, size_t depth);
  unsigned PossibleTypes(const json::Value& s, const std::string& ptr, size_t depth);

  JsonPieces& pieces_;
  ExprPool& x_;
  Budget& budget_;
  const json::Value& root_;
  std::string pointer_;
  std::unordered_map<const json::Value*, uint32_t> ref_rules_;
  std::vector<std::unique_ptr<json::Value>> owned_;
};

}  // namespace tokmeter::grammar
