// Fuzz: random schemas and specs compile (or fail with a typed error); random walks under the mask produce documents
// that parse and validate (a small validator for the generated keyword subset; regex specs against std::regex);
// masks equal the brute force on a share of the walks; mutated specs never crash.
#include <random>
#include <regex>

#include "grammar/errors.h"
#include "grammar/json_value.h"
#include "grammar/test/grammar_test_util.h"

using namespace gt;
using json::Kind;
using json::Value;

namespace {

std::mt19937_64 rng(20260501);
size_t Rand(size_t n) { return static_cast<size_t>(rng() % n); }

std::string GenSchema(int depth);

std::string GenString() {
  switch (Rand(6)) {
    case 0: return R"({"type":"string"})";
    case 1: {
      const size_t lo = Rand(4);
      return R"({"type":"string","minLength":)" + std::to_string(lo) + R"(,"maxLength":)" +
             std::to_string(lo + Rand(6)) + "}";
    }
    case 2: return R"({"type":"string","enum":["red","green","bl\"ue","é"]})";
    case 3: {
      static const char* kFormats[] = {"date", "date-time", "time", "uuid", "email", "ipv4", "uri", "hostname"};
      return std::string(R"({"type":"string","format":")") + kFormats[Rand(8)] + "\"}";
    }
    case 4: return R"({"type":"string","pattern":"^[a-z]{1,4}(-[0-9]+)?$"})";
    default: return R"({"type":"string","maxLength":2})";
  }
}

std::string GenNumber() {
  const bool integer = Rand(2);
  std::string s = std::string(R"({"type":")") + (integer ? "integer" : "number") + "\"";
  if (Rand(2)) s += ",\"minimum\":" + std::to_string(static_cast<int>(Rand(40)) - 20);
  if (Rand(2)) s += ",\"maximum\":" + std::to_string(20 + static_cast<int>(Rand(30)));
  if (Rand(3) == 0) s += ",\"exclusiveMinimum\":" + std::to_string(static_cast<int>(Rand(10)) - 30);
  return s + "}";
}

std::string GenObject(int depth) {
  const size_t n = 1 + Rand(4);
  std::string props, req;
  for (size_t i = 0; i < n; ++i) {
    const std::string name = std::string(1, static_cast<char>('a' + i)) + (Rand(2) ? "_x" : "");
    props += (i ? "," : "") + json::Quote(name) + ":" + GenSchema(depth + 1);
    if (Rand(2)) req += std::string(req.empty() ? "" : ",") + json::Quote(name);
  }
  std::string s = R"({"type":"object","properties":{)" + props + "},\"required\":[" + req + "]";
  switch (Rand(3)) {
    case 0: s += ",\"additionalProperties\":false"; break;
    case 1: s += ",\"additionalProperties\":" + GenSchema(depth + 2); break;
    default: break;
  }
  return s + "}";
}

std::string GenSchema(int depth) {
  const size_t pick = depth > 3 ? Rand(4) : Rand(11);
  switch (pick) {
    case 0: return GenString();
    case 1: return GenNumber();
    case 2: return Rand(2) ? R"({"type":"boolean"})" : R"({"type":["null","integer"]})";
    case 3: return Rand(2) ? R"({"const":{"k":[1,"x"]}})" : R"({"enum":[1,"one",null,true]})";
    case 4:
    case 5: return GenObject(depth);
    case 6: {
      std::string s = R"({"type":"array","items":)" + GenSchema(depth + 1);
      const size_t lo = Rand(3);
      if (Rand(2)) s += ",\"minItems\":" + std::to_string(lo);
      if (Rand(2)) s += ",\"maxItems\":" + std::to_string(lo + Rand(4));
      return s + "}";
    }
    case 7: return R"({"anyOf":[)" + GenSchema(depth + 1) + "," + GenSchema(depth + 1) + "]}";
    case 8:
      return R"({"oneOf":[{"type":"string","maxLength":3},{"type":"integer"},{"type":"object","properties":{"z":)" +
             GenSchema(depth + 1) + "}}]}";
    case 9: return R"({"$ref":"#/$defs/tree"})";
    default:
      return R"({"type":"array","prefixItems":[)" + GenSchema(depth + 1) + "," + GenString() + R"(],"items":false})";
  }
}

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

unsigned TypeOf(const Value& v) {
  switch (v.kind) {
    case Kind::kNull: return 1;
    case Kind::kBool: return 2;
    case Kind::kNumber: return std::floor(v.number) == v.number ? 4 : 8;
    case Kind::kString: return 16;
    case Kind::kArray: return 32;
    case Kind::kObject: return 64;
  }
  return 0;
}

bool Validate(const Value& v, const Value& s, const Value& root, int depth = 0) {
  if (depth > 64) return false;
  if (s.isBool()) return s.boolean;
  if (const Value* r = s.Find("$ref")) {
    if (r->text == "#") return Validate(v, root, root, depth + 1);
    const std::string name = r->text.substr(r->text.rfind('/') + 1);
    return Validate(v, *root.Find("$defs")->Find(name), root, depth + 1);
  }
  if (const Value* t = s.Find("type")) {
    unsigned allowed = 0;
    auto add = [&](const std::string& n) {
      allowed |= n == "null"      ? 1
                 : n == "boolean" ? 2
                 : n == "integer" ? 4
                 : n == "number"  ? 12
                 : n == "string"  ? 16
                 : n == "array"   ? 32
                                  : 64;
    };
    if (t->isArray()) {
      for (const Value& x : t->items) add(x.text);
    } else {
      add(t->text);
    }
    if (!(TypeOf(v) & allowed)) return false;
  }
  if (const Value* c = s.Find("const"); c && !(*c == v)) return false;
  if (const Value* e = s.Find("enum")) {
    bool found = false;
    for (const Value& x : e->items) found = found || x == v;
    if (!found) return false;
  }
  if (const Value* a = s.Find("anyOf")) {
    bool any = false;
    for (const Value& b : a->items) any = any || Validate(v, b, root, depth + 1);
    if (!any) return false;
  }
  if (const Value* o = s.Find("oneOf")) {
    int count = 0;
    for (const Value& b : o->items) count += Validate(v, b, root, depth + 1);
    if (count != 1) return false;
  }
  if (v.isString()) {
    const size_t n = CodePoints(v.text);
    if (const Value* m = s.Find("minLength"); m && n < m->number) return false;
    if (const Value* m = s.Find("maxLength"); m && n > m->number) return false;
    if (const Value* p = s.Find("pattern")) {
      if (!std::regex_search(v.text, std::regex(p->text, std::regex::ECMAScript))) return false;
    }
  }
  if (v.isNumber()) {
    if (const Value* m = s.Find("minimum"); m && v.number < m->number) return false;
    if (const Value* m = s.Find("maximum"); m && v.number > m->number) return false;
    if (const Value* m = s.Find("exclusiveMinimum"); m && v.number <= m->number) return false;
  }
  if (v.isArray()) {
    if (const Value* m = s.Find("minItems"); m && v.items.size() < m->number) return false;
    if (const Value* m = s.Find("maxItems"); m && v.items.size() > m->number) return false;
    const Value* prefix = s.Find("prefixItems");
    const size_t np = prefix ? prefix->items.size() : 0;
    for (size_t i = 0; i < v.items.size(); ++i) {
      const Value* sch = i < np ? &prefix->items[i] : s.Find("items");
      if (sch && !Validate(v.items[i], *sch, root, depth + 1)) return false;
    }
  }
  if (v.isObject()) {
    const Value* props = s.Find("properties");
    const Value* add = s.Find("additionalProperties");
    if (const Value* req = s.Find("required")) {
      for (const Value& r : req->items) {
        if (!v.Find(r.text)) return false;
      }
    }
    for (const auto& [k, x] : v.members) {
      const Value* p = props ? props->Find(k) : nullptr;
      if (p) {
        if (!Validate(x, *p, root, depth + 1)) return false;
      } else if (add && !Validate(x, *add, root, depth + 1)) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

TEST(random_schemas_generate_valid_documents) {
  const std::string defs =
      R"("$defs":{"tree":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/tree"},"maxItems":2}},"required":["v"],"additionalProperties":false}})";
  size_t compiled = 0, refused = 0, finished = 0, checked = 0;
  for (int i = 0; i < 160; ++i) {
    std::string body = GenSchema(0);
    // Splice the shared $defs into the root object.
    const std::string schemaText = "{" + defs + "," + body.substr(1);
    std::shared_ptr<const Grammar> g;
    try {
      g = Schema(schemaText);
    } catch (const GrammarError& e) {
      ++refused;
      continue;
    }
    ++compiled;
    const Value schema = json::Parse(schemaText);
    for (uint64_t seed = 0; seed < 6; ++seed) {
      const WalkResult r = RandomWalk(g, static_cast<uint64_t>(i) * 100 + seed, 300, i < 25 && seed < 2);
      CHECK(r.masksMatched);
      if (!r.finished) continue;
      ++finished;
      Value doc;
      try {
        doc = json::Parse(r.text);
      } catch (const std::exception& e) {
        std::printf("  not JSON: %s\n  schema %s\n", r.text.c_str(), schemaText.c_str());
        CHECK(false);
        continue;
      }
      ++checked;
      if (!Validate(doc, schema, schema)) {
        std::printf("  invalid: %s\n  schema %s\n", r.text.c_str(), schemaText.c_str());
        CHECK(false);
      }
    }
  }
  std::printf("  compiled %zu refused %zu finished %zu validated %zu\n", compiled, refused, finished, checked);
  CHECK(compiled > 100);
  CHECK(checked > 200);
}

TEST(random_regex_specs_match_std_regex) {
  const char* patterns[] = {"[a-c]+x?",          "(ab|cd)*e",          "a{2,4}b{0,2}",
                            "[0-9]{3}-[0-9]{2}", "(x|y|z)+(1|22|333)", "[A-Z0-9_]{1,3}",
                            "(\\d+\\.)?\\d+",    "(a|b)*abb",          "\\w{1,5}@\\w{1,5}"};
  for (const char* p : patterns) {
    auto g = Compile(std::string(R"({"type":"regex","pattern":)") + json::Quote(p) + "}");
    const std::regex re(p, std::regex::ECMAScript);
    for (uint64_t seed = 0; seed < 25; ++seed) {
      const WalkResult r = RandomWalk(g, seed, 60, seed < 3);
      CHECK(r.masksMatched);
      if (r.finished && !std::regex_match(r.text, re)) {
        std::printf("  /%s/ produced '%s'\n", p, r.text.c_str());
        CHECK(false);
      }
    }
  }
}

TEST(mutated_specs_never_crash) {
  const std::string seeds[] = {
      R"({"type":"json_schema","schema":{"type":"object","properties":{"a":{"type":"array","items":{"$ref":"#"}},"b":{"type":"string","pattern":"^[a-z]+$"}},"required":["a"]}})",
      R"({"type":"sequence","items":[{"type":"literal","text":"<x>"},{"type":"repeat","item":{"type":"regex","pattern":"[0-9]+,"},"min":1,"max":3}]})",
      R"({"type":"json_schema","schema":{"anyOf":[{"type":"integer","minimum":-5,"maximum":5},{"enum":["a","b"]}]}})",
  };
  const char alphabet[] = "{}[]\",:0123456789abcdefghijklmnopqrstuvwxyz$#/*+?()|^\\- ";
  size_t ok = 0, errors = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string s = seeds[Rand(3)];
    for (size_t k = 0, n = 1 + Rand(4); k < n; ++k) {
      const size_t pos = Rand(s.size());
      switch (Rand(3)) {
        case 0: s[pos] = alphabet[Rand(sizeof(alphabet) - 1)]; break;
        case 1: s.erase(pos, 1); break;
        default: s.insert(pos, 1, alphabet[Rand(sizeof(alphabet) - 1)]); break;
      }
    }
    try {
      auto g = Compile(s);
      ++ok;
      const WalkResult r = RandomWalk(g, static_cast<uint64_t>(i), 40, false);
      CHECK(r.masksMatched);
    } catch (const tokmeter::Error&) {
      ++errors;
    }
  }
  std::printf("  compiled %zu, typed errors %zu\n", ok, errors);
  CHECK(ok > 0 && errors > 0);
}

TEST_MAIN()
