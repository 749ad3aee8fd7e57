// Grammar::Compile: the constraint spec forms (grammar.h) to rules.
#include <set>

#include "grammar/errors.h"
#include "grammar/grammar.h"
#include "grammar/json_value.h"
#include "grammar/regex.h"
#include "grammar/schema.h"

namespace tokmeter::grammar {

namespace {

class SpecCompiler {
 public:
  SpecCompiler(GrammarBuilder& b, JsonPieces& pieces, Budget& budget)
      : b_(b), x_(b.exprs()), pieces_(pieces), budget_(budget) {}

  ExprId Spec(const json::Value& v, const std::string& ptr, size_t depth) {
    if (depth > budget_.limits().maxSchemaDepth) {
      throw GrammarError(kErrTooLarge, ptr, "",
                         "spec nesting deeper than " + std::to_string(budget_.limits().maxSchemaDepth));
    }
    if (!v.isObject()) throw GrammarError(kErrInvalid, ptr, "", "a constraint spec must be a JSON object");
    const json::Value* type = v.Find("type");
    if (!type || !type->isString())
      throw GrammarError(kErrInvalid, ptr, "type", "a constraint spec needs a string 'type'");
    const std::string& t = type->text;
    if (t == "json_schema") {
      Fields(v, ptr, {"type", "schema", "name", "strict", "description"});
      const json::Value* schema = v.Find("schema");
      if (!schema) throw GrammarError(kErrInvalid, ptr, "schema", "'json_schema' needs a 'schema'");
      SchemaCompiler sc(pieces_, budget_, *schema, ptr + "/schema");
      return sc.Compile();
    }
    if (t == "json_object") {
      Fields(v, ptr, {"type"});
      return x_.Call(pieces_.AnyObjectRule());
    }
    if (t == "regex") {
      Fields(v, ptr, {"type", "pattern"});
      const json::Value* p = v.Find("pattern");
      if (!p || !p->isString()) throw GrammarError(kErrInvalid, ptr, "pattern", "'regex' needs a string 'pattern'");
      return CompileRegex(x_, p->text, CharEncoding::kRaw, ptr, "pattern").expr;
    }
    if (t == "choice") {
      Fields(v, ptr, {"type", "choices"});
      const json::Value* c = v.Find("choices");
      if (!c || !c->isArray() || c->items.empty()) {
        throw GrammarError(kErrInvalid, ptr, "choices", "'choice' needs a non-empty array of strings 'choices'");
      }
      std::vector<ExprId> alts;
      for (const json::Value& s : c->items) {
        if (!s.isString()) throw GrammarError(kErrInvalid, ptr, "choices", "'choices' must hold strings");
        alts.push_back(x_.Literal(s.text));
        budget_.Tick(s.text.size());
      }
      return x_.Alt(std::move(alts));
    }
    if (t == "literal") {
      Fields(v, ptr, {"type", "text"});
      const json::Value* s = v.Find("text");
      if (!s || !s->isString()) throw GrammarError(kErrInvalid, ptr, "text", "'literal' needs a string 'text'");
      return x_.Literal(s->text);
    }
    if (t == "sequence" || t == "any_of") {
      Fields(v, ptr, {"type", "items"});
      const json::Value* items = v.Find("items");
      if (!items || !items->isArray() || items->items.empty()) {
        throw GrammarError(kErrInvalid, ptr, "items", "'" + t + "' needs a non-empty array 'items'");
      }
      std::vector<ExprId> parts;
      for (size_t i = 0; i < items->items.size(); ++i) {
        parts.push_back(Spec(items->items[i], ptr + "/items/" + std::to_string(i), depth + 1));
      }
      return t == "sequence" ? x_.Seq(std::move(parts)) : x_.Alt(std::move(parts));
    }
    if (t == "repeat") {
      Fields(v, ptr, {"type", "item", "min", "max"});
      const json::Value* item = v.Find("item");
      if (!item) throw GrammarError(kErrInvalid, ptr, "item", "'repeat' needs an 'item'");
      const uint32_t min = Count(v, ptr, "min", 0);
      const uint32_t max = v.Find("max") ? Count(v, ptr, "max", 0) : kUnbounded;
      if (max < min) throw GrammarError(kErrInvalid, ptr, "max", "'max' is below 'min'");
      if (min > 10000 || (max != kUnbounded && max > 10000)) {
        throw GrammarError(kErrTooLarge, ptr, "max", "repeat counts above 10000");
      }
      // The item gets its own rule so that repeats copy a call, not the item's automaton.
      const uint32_t r = b_.AddRule(ptr + "/item");
      b_.Define(r, Spec(*item, ptr + "/item", depth + 1));
      return x_.Repeat(x_.Call(r), min, max);
    }
    throw GrammarError(kErrInvalid, ptr, "type", "unknown constraint spec type '" + t + "'");
  }

 private:
  static void Fields(const json::Value& v, const std::string& ptr, std::initializer_list<const char*> allowed) {
    for (const auto& [k, _] : v.members) {
      bool ok = false;
      for (const char* a : allowed) ok = ok || k == a;
      if (!ok) throw GrammarError(kErrInvalid, ptr, k, "unknown field '" + k + "' in a constraint spec");
    }
  }
  static uint32_t Count(const json::Value& v, const std::string& ptr, const char* key, uint32_t dflt) {
    const json::Value* n = v.Find(key);
    if (!n) return dflt;
    if (!n->isNumber() || n->number < 0 || n->number != static_cast<double>(static_cast<uint64_t>(n->number)) ||
        n->number > 1e9) {
      throw GrammarError(kErrInvalid, ptr, key, std::string("expected a non-negative integer for '") + key + "'");
    }
    return static_cast<uint32_t>(n->number);
  }
  GrammarBuilder& b_;
  ExprPool& x_;
  JsonPieces& pieces_;
  Budget& budget_;
};

}  // namespace

std::shared_ptr<const Grammar> Grammar::Compile(std::string_view spec, std::shared_ptr<const Vocabulary> vocabulary,
                                                const Limits& limits) {
  if (!vocabulary) throw GrammarError(kErrInvalid, "", "", "a grammar needs a vocabulary");
  const json::Value doc = json::Parse(spec, limits.maxSchemaDepth * 2 + 16);
  Budget budget(limits);
  GrammarBuilder builder(budget);
  JsonPieces pieces(builder);
  SpecCompiler compiler(builder, pieces, budget);
  const ExprId body = compiler.Spec(doc, "", 0);
  const uint32_t root = builder.AddRule("root");
  builder.Define(root, body);
  return std::make_shared<Grammar>(builder.Build(root), std::move(vocabulary), limits);
}

}  // namespace tokmeter::grammar
