// JSON Schema coverage: what each keyword admits and refuses, and the pointer/keyword of every refusal.
#include <functional>

#include "grammar/errors.h"
#include "grammar/test/grammar_test_util.h"

using namespace gt;

namespace {
void ExpectRefusal(const std::string& schema, const std::string& code, const std::string& pointer,
                   const std::string& keyword) {
  try {
    Schema(schema);
  } catch (const GrammarError& e) {
    if (e.code() != code || e.pointer() != pointer || e.keyword() != keyword) {
      std::printf("  %s: got %s at '%s' keyword '%s' (%s), expected %s at '%s' keyword '%s'\n", schema.c_str(),
                  e.code().c_str(), e.pointer().c_str(), e.keyword().c_str(), e.what(), code.c_str(), pointer.c_str(),
                  keyword.c_str());
      ++tmtest::failures;
    }
    return;
  }
  std::printf("  %s: compiled, expected %s\n", schema.c_str(), code.c_str());
  ++tmtest::failures;
}
}  // namespace

TEST(types_and_type_arrays) {
  auto g = Schema(R"({"type":["string","null","boolean"]})");
  CHECK(Accepts(g, "null"));
  CHECK(Accepts(g, "\"x\""));
  CHECK(Accepts(g, "false"));
  CHECK(!Accepts(g, "1"));
  auto any = Schema("{}");
  CHECK(Accepts(any, "[1,{\"a\":null},\"s\",-0.5e+3]"));
  auto n = Schema(R"({"type":"number"})");
  CHECK(Accepts(n, "-12.5e3"));
  CHECK(!Accepts(n, "012"));
  CHECK(!Accepts(n, "1."));
}

TEST(objects_properties_required_additional) {
  auto g = Schema(
      R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},"required":["b"],"additionalProperties":false})");
  CHECK(Accepts(g, R"({"b":"x"})"));
  CHECK(Accepts(g, R"({"a":1,"b":"x","c":true})"));
  CHECK(Accepts(g, R"({"a": 1, "b": "x"})"));
  CHECK(!Accepts(g, R"({"a":1})"));
  CHECK(!Accepts(g, R"({"b":"x","d":1})"));
  CHECK(!Accepts(g, R"({"b":"x",})"));
  auto extra =
      Schema(R"({"type":"object","properties":{"id":{"type":"integer"}},"additionalProperties":{"type":"string"}})");
  CHECK(Accepts(extra, R"({"id":1,"name":"x"})"));
  CHECK(Accepts(extra, R"({"name":"x","i":"y"})"));
  CHECK(!Accepts(extra, R"({"id":"x"})"));  // "id" is named: its own schema applies, never the extra one
  CHECK(!Accepts(extra, R"({"name":1})"));
  auto open = Schema(R"({"type":"object"})");
  CHECK(Accepts(open, R"({"any":[1,2],"thing":{}})"));
  auto minmax = Schema(
      R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},"c":{"type":"integer"}},"minProperties":2,"maxProperties":2})");
  CHECK(Accepts(minmax, R"({"a":1,"b":2})"));
  CHECK(!Accepts(minmax, R"({"a":1})"));
  CHECK(!Accepts(minmax, R"({"a":1,"b":2,"c":3})"));
  auto reqOnly = Schema(R"({"type":"object","required":["x"]})");
  CHECK(Accepts(reqOnly, R"({"x":[true]})"));
  CHECK(!Accepts(reqOnly, R"({})"));
}

TEST(arrays_items_prefix_items_counts) {
  auto g = Schema(R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3})");
  CHECK(Accepts(g, "[1]"));
  CHECK(Accepts(g, "[1, 2, 3]"));
  CHECK(!Accepts(g, "[]"));
  CHECK(!Accepts(g, "[1,2,3,4]"));
  auto t = Schema(R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false})");
  CHECK(Accepts(t, "[\"a\",1]"));
  CHECK(Accepts(t, "[\"a\"]"));
  CHECK(Accepts(t, "[]"));
  CHECK(!Accepts(t, "[\"a\",1,2]"));
  auto d4 = Schema(R"({"type":"array","items":[{"type":"null"}],"additionalItems":{"type":"boolean"},"minItems":2})");
  CHECK(Accepts(d4, "[null,true,false]"));
  CHECK(!Accepts(d4, "[null]"));
  auto one = Schema(R"({"type":"array","uniqueItems":true,"maxItems":1})");
  CHECK(Accepts(one, "[{}]"));
}

TEST(enum_const_any_one_all) {
  auto e = Schema(R"({"enum":["a",1,null,{"k":[1]},"q\"uote"]})");
  CHECK(Accepts(e, "\"a\""));
  CHECK(Accepts(e, "{\"k\":[1]}"));
  CHECK(Accepts(e, "\"q\\\"uote\""));
  CHECK(!Accepts(e, "\"b\""));
  auto typed = Schema(R"({"type":"string","enum":["a",1]})");
  CHECK(!Accepts(typed, "1"));
  auto c = Schema(R"({"const":"fixed"})");
  CHECK(Accepts(c, "\"fixed\""));
  auto any = Schema(R"({"anyOf":[{"type":"integer"},{"type":"string","maxLength":1}]})");
  CHECK(Accepts(any, "5"));
  CHECK(Accepts(any, "\"x\""));
  CHECK(!Accepts(any, "\"xy\""));
  auto one = Schema(
      R"({"oneOf":[{"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},"required":["kind"]},{"type":"object","properties":{"kind":{"enum":["b","c"]}},"required":["kind"]}]})");
  CHECK(Accepts(one, R"({"kind":"a","x":1})"));
  CHECK(Accepts(one, R"({"kind":"c"})"));
  auto all = Schema(
      R"({"allOf":[{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},{"properties":{"b":{"type":"string"}},"required":["b"]}]})");
  CHECK(Accepts(all, R"({"a":1,"b":"x"})"));
  CHECK(!Accepts(all, R"({"a":1})"));
  auto allClosed = Schema(
      R"({"allOf":[{"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":false},{"properties":{"b":{"type":"string"}}}]})");
  CHECK(Accepts(allClosed, R"({"a":1})"));
  CHECK(!Accepts(allClosed, R"({"a":1,"b":"x"})"));
  auto refSib = Schema(
      R"({"$defs":{"base":{"type":"object","properties":{"a":{"type":"integer"}}}},"$ref":"#/$defs/base","required":["a"]})");
  CHECK(Accepts(refSib, R"({"a":2})"));
  CHECK(!Accepts(refSib, R"({})"));
}

TEST(integer_ranges_are_exact) {
  const struct {
    const char* schema;
    std::function<bool(long)> in;
  } cases[] = {
      {R"({"type":"integer","minimum":-15,"maximum":123})", [](long v) { return v >= -15 && v <= 123; }},
      {R"({"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":100})", [](long v) { return v > 0 && v < 100; }},
      {R"({"type":"integer","minimum":7})", [](long v) { return v >= 7; }},
      {R"({"type":"integer","maximum":-3})", [](long v) { return v <= -3; }},
      {R"({"type":"integer","minimum":1.5,"maximum":9.5})", [](long v) { return v >= 2 && v <= 9; }},
      {R"({"type":"integer","minimum":0,"maximum":5,"exclusiveMaximum":true})", [](long v) { return v >= 0 && v < 5; }},
  };
  for (const auto& c : cases) {
    auto g = Schema(c.schema);
    for (long v = -250; v <= 250; ++v) {
      if (Accepts(g, std::to_string(v)) != c.in(v)) {
        std::printf("  %s: %ld\n", c.schema, v);
        CHECK(false);
        break;
      }
    }
  }
}

TEST(number_ranges_with_integer_bounds) {
  auto g = Schema(R"({"type":"number","minimum":0,"maximum":1})");
  for (const char* ok : {"0", "0.5", "1", "1.0", "1.000", "0.999"}) CHECK(Accepts(g, ok));
  for (const char* bad : {"-0.1", "1.01", "2", "-1", "1e0"}) CHECK(!Accepts(g, bad));
  auto ex = Schema(R"({"type":"number","exclusiveMinimum":-2,"exclusiveMaximum":2})");
  for (const char* ok : {"-1.99", "-1", "0", "1.5", "-0.5"}) CHECK(Accepts(ex, ok));
  for (const char* bad : {"-2", "-2.0", "2", "2.5", "-2.5"}) CHECK(!Accepts(ex, bad));
  auto pos = Schema(R"({"type":"number","exclusiveMinimum":0})");
  CHECK(Accepts(pos, "0.01"));
  CHECK(!Accepts(pos, "0"));
  CHECK(!Accepts(pos, "0.0"));
}

TEST(strings_lengths_patterns_formats) {
  auto g = Schema(R"({"type":"string","minLength":2,"maxLength":3})");
  CHECK(Accepts(g, "\"ab\""));
  CHECK(Accepts(g, "\"\\n\\u00e9\\\"\""));  // escapes count as one character each
  CHECK(Accepts(g, "\"\xC3\xA9\xE4\xBD\xA0\""));
  CHECK(!Accepts(g, "\"a\""));
  CHECK(!Accepts(g, "\"abcd\""));
  CHECK(!Accepts(g, "\"\\ud83d\\ude00\""));  // surrogate escapes are never produced
  auto p = Schema(R"({"type":"string","pattern":"^[A-Z]{2}-\\d+$"})");
  CHECK(Accepts(p, "\"AB-12\""));
  CHECK(!Accepts(p, "\"AB-\""));
  auto search = Schema(R"({"type":"string","pattern":"ab"})");
  CHECK(Accepts(search, "\"xxabyy\""));
  CHECK(!Accepts(search, "\"xxa\""));
  auto q = Schema(R"({"type":"string","pattern":"^a\"b$"})");
  CHECK(Accepts(q, "\"a\\\"b\""));
  const struct {
    const char* format;
    std::vector<const char*> ok, bad;
  } formats[] = {
      {"date", {"2024-02-28", "1999-12-31"}, {"2024-02-30", "2024-13-01", "24-01-01"}},
      {"time", {"12:30:59Z", "23:59:00.123+05:30"}, {"24:00:00Z", "12:30:59"}},
      {"date-time", {"2024-01-31T00:00:00Z"}, {"2024-01-31 00:00:00Z", "2024-04-31T00:00:00Z"}},
      {"uuid", {"123e4567-e89b-12d3-a456-426614174000"}, {"123e4567e89b12d3a456426614174000"}},
      {"email", {"a.b@example.com"}, {"a@b", "@example.com"}},
      {"ipv4", {"192.168.0.1", "0.0.0.0"}, {"256.1.1.1", "1.2.3"}},
      {"uri", {"https://example.com/a/b"}, {"example.com", "https://localhost"}},
  };
  for (const auto& f : formats) {
    auto fg = Schema(std::string(R"({"type":"string","format":")") + f.format + "\"}");
    for (const char* s : f.ok) {
      if (!Accepts(fg, std::string("\"") + s + "\"")) {
        std::printf("  %s rejects %s\n", f.format, s);
        CHECK(false);
      }
    }
    for (const char* s : f.bad) {
      if (Accepts(fg, std::string("\"") + s + "\"")) {
        std::printf("  %s accepts %s\n", f.format, s);
        CHECK(false);
      }
    }
  }
}

TEST(parts_no_value_satisfies_are_dropped_where_optional) {
  auto g = Schema(R"({"type":"object","properties":{"a":{"type":"array","enum":["x"]},"b":{"type":"integer"}}})");
  CHECK(Accepts(g, R"({"b":1})"));
  CHECK(!Accepts(g, R"({"a":["x"],"b":1})"));
  auto any = Schema(R"({"anyOf":[{"type":"integer","minimum":3,"maximum":1},{"type":"null"}]})");
  CHECK(Accepts(any, "null"));
  ExpectRefusal(R"({"type":"object","properties":{"a":{"type":"array","enum":["x"]}},"required":["a"]})", kErrInvalid,
                "/schema/properties/a", "enum");
  // allOf of one recursive $ref stays a call (recursion through allOf).
  auto rec = Schema(
      R"({"definitions":{"n":{"type":"object","properties":{"k":{"type":"array","items":{"allOf":[{"$ref":"#/definitions/n"}]}}},"additionalProperties":false}},"$ref":"#/definitions/n"})");
  CHECK(Accepts(rec, R"({"k":[{"k":[{}]},{}]})"));
}

TEST(annotations_are_ignored) {
  auto g = Schema(
      R"({"$schema":"http://json-schema.org/draft-07/schema#","$id":"x","title":"t","description":"d","default":1,"examples":[1],"$comment":"c","deprecated":true,"readOnly":true,"type":"integer"})");
  CHECK(Accepts(g, "1"));
}

TEST(refusals_name_pointer_and_keyword) {
  ExpectRefusal(R"({"not":{"type":"string"}})", kErrUnsupported, "/schema", "not");
  ExpectRefusal(R"({"type":"object","properties":{"a":{"if":{},"then":{}}}})", kErrUnsupported, "/schema/properties/a",
                "if");
  ExpectRefusal(R"({"type":"object","patternProperties":{"^x":{}}})", kErrUnsupported, "/schema", "patternProperties");
  ExpectRefusal(R"({"type":"array","items":{"type":"array","uniqueItems":true}})", kErrUnsupported, "/schema/items",
                "uniqueItems");
  ExpectRefusal(R"({"type":"number","multipleOf":0.5})", kErrUnsupported, "/schema", "multipleOf");
  ExpectRefusal(R"({"type":"string","format":"color"})", kErrUnsupported, "/schema", "format");
  ExpectRefusal(R"({"$ref":"http://example.com/s.json"})", kErrUnsupported, "/schema", "$ref");
  ExpectRefusal(R"({"$ref":"#/definitions/missing"})", kErrInvalid, "/schema", "$ref");
  ExpectRefusal(R"({"oneOf":[{"type":"integer"},{"type":"number"}]})", kErrUnsupported, "/schema", "oneOf");
  ExpectRefusal(R"({"type":"number","minimum":0.5})", kErrUnsupported, "/schema", "minimum");
  ExpectRefusal(R"x({"type":"string","pattern":"a(?!b)"})x", kErrUnsupported, "/schema", "pattern");
  ExpectRefusal(R"x({"type":"string","pattern":"(a"})x", kErrInvalid, "/schema", "pattern");
  ExpectRefusal(R"({"type":"string","pattern":"^a+$","maxLength":3})", kErrUnsupported, "/schema", "maxLength");
  ExpectRefusal(R"({"type":"array","contains":{"type":"integer"}})", kErrUnsupported, "/schema", "contains");
  ExpectRefusal(R"({"type":"object","propertyNames":{"maxLength":3}})", kErrUnsupported, "/schema", "propertyNames");
  ExpectRefusal(R"({"type":"integer","minimum":5,"maximum":4})", kErrInvalid, "/schema", "minimum");
  ExpectRefusal(R"({"allOf":[{"type":"string"},{"type":"integer"}]})", kErrInvalid, "/schema/allOf/1", "allOf");
  ExpectRefusal(R"({"enum":[]})", kErrInvalid, "/schema", "enum");
  ExpectRefusal(R"(false)", kErrInvalid, "/schema", "");
  ExpectRefusal(R"({"anyOf":[{"$ref":"#"},{"type":"string"}]})", kErrInvalid, "/schema", "$ref");
  ExpectRefusal(R"({"type":"object","properties":{"a":{"$ref":"#/properties/a"}},"required":["a"]})", kErrInvalid, "",
                "");
  ExpectRefusal(R"({"type":"object","properties":{"self":{"$ref":"#"}},"required":["self"]})", kErrInvalid, "", "");
  ExpectRefusal(R"({"type":"strin"})", kErrInvalid, "/schema", "type");
}

TEST_MAIN()
