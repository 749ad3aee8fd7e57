// tokmeter::grammar::json — a small JSON document model for constraint specs and JSON Schemas.
//
// Contract: Parse() reads RFC 8259 JSON (UTF-8) into an owned tree; objects keep their members in document order
// (Find() returns the last member of a name, as JSON.parse keeps it); numbers keep their source text (so `1.0` in an
// enum is emitted as written) and a double. Nesting deeper than `maxDepth` or malformed input throws
// tokmeter::Error(ERR_GRAMMAR_INVALID) naming the byte offset. Serialize() writes the compact form JSON.stringify
// writes for the same value (numbers as their source text). Plain C++, no shared state.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokmeter::grammar::json {

enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

struct Value {
  Kind kind = Kind::kNull;
  bool boolean = false;
  double number = 0;
  std::string text;  // string value (decoded UTF-8), or a number's source text
  std::vector<Value> items;
  std::vector<std::pair<std::string, Value>> members;

  bool isObject() const noexcept { return kind == Kind::kObject; }
  bool isArray() const noexcept { return kind == Kind::kArray; }
  bool isString() const noexcept { return kind == Kind::kString; }
  bool isNumber() const noexcept { return kind == Kind::kNumber; }
  bool isBool() const noexcept { return kind == Kind::kBool; }
  const Value* Find(std::string_view key) const noexcept;
  bool operator==(const Value& other) const;  // JSON equality (numbers by value, objects unordered)
};

Value Parse(std::string_view text, size_t maxDepth = 256);
std::string Serialize(const Value& value);
// The JSON string literal (with quotes) of `s`, escaped as JSON.stringify escapes it.
std::string Quote(std::string_view s);
// "a/b~c" → "a~1b~0c" (RFC 6901).
std::string EscapePointerToken(std::string_view token);

}  // namespace tokmeter::grammar::json
