// The engine: vocabulary decoding, masks against brute force, EOS forcing, tokens across terminals, split UTF-8,
// recursion, the spec combinators, limits, the grammar cache.
#include <algorithm>
#include <cstring>

#include "grammar/errors.h"
#include "grammar/grammar_cache.h"
#include "grammar/json_value.h"
#include "grammar/test/grammar_test_util.h"
#include "util/utf8.h"

using namespace gt;

namespace {
uint32_t IdOf(const Vocabulary& v, const std::string& bytes) {
  for (uint32_t id = 0; id < v.size(); ++id) {
    if (v.usable(id) && v.bytes(id) == bytes) return id;
  }
  return UINT32_MAX;
}
}  // namespace

TEST(byte_level_and_sentencepiece_vocabularies_decode_to_bytes) {
  VocabularyInput in;
  in.kind = VocabKind::kByteLevel;
  // "Ġ{" is " {"; "Ċ" is "\n"; the byte 0xC3 is "Ã"; an added token in plain text stays as its bytes.
  in.tokens = {
      tokmeter::utf8::Encode(Vocabulary::ByteLevelChar(' ')) + "{",
      tokmeter::utf8::Encode(Vocabulary::ByteLevelChar('\n')),
      tokmeter::utf8::Encode(Vocabulary::ByteLevelChar(0xC3)) + tokmeter::utf8::Encode(Vocabulary::ByteLevelChar(0xA9)),
      "<|eot_id|>",
      "<tool>",
      ""};
  in.special = {false, false, false, true, false, false};
  in.eos = {3};
  auto v = Vocabulary::Build(in);
  CHECK_EQ(std::string(v->bytes(0)), std::string(" {"));
  CHECK_EQ(std::string(v->bytes(1)), std::string("\n"));
  CHECK_EQ(std::string(v->bytes(2)), std::string("\xC3\xA9"));
  CHECK(!v->usable(3));
  CHECK_EQ(std::string(v->bytes(4)), std::string("<tool>"));
  CHECK(!v->usable(5));  // empty

  VocabularyInput sp;
  sp.kind = VocabKind::kSentencePiece;
  sp.tokens = {"\xE2\x96\x81hello", "<0x0A>", "<0xC3>", "<s>", "</s>"};
  sp.special = {false, false, false, true, true};
  sp.eos = {4};
  auto s = Vocabulary::Build(sp);
  CHECK_EQ(std::string(s->bytes(0)), std::string(" hello"));
  CHECK_EQ(std::string(s->bytes(1)), std::string("\n"));
  CHECK_EQ(std::string(s->bytes(2)), std::string("\xC3"));
  CHECK(!s->usable(3));
}

TEST(literal_forces_eos_at_its_end) {
  uint32_t eos = 0;
  auto vocab = TestVocab(&eos);
  auto g = Grammar::Compile(R"({"type":"literal","text":"abc"})", vocab);
  Matcher m(g);
  std::vector<uint64_t> mask(g->maskWords());
  m.FillMask(mask);
  CHECK(Bit(mask, IdOf(*vocab, "abc")));
  CHECK(Bit(mask, IdOf(*vocab, "a")));
  CHECK(!Bit(mask, IdOf(*vocab, "b")));
  CHECK(!Bit(mask, eos));
  CHECK(m.Accept(IdOf(*vocab, "abc")));
  m.FillMask(mask);
  size_t set = 0;
  for (uint64_t w : mask) set += static_cast<size_t>(__builtin_popcountll(w));
  CHECK_EQ(set, size_t{1});  // only EOS
  CHECK(Bit(mask, eos));
  CHECK(!m.Accept(IdOf(*vocab, "a")));
  CHECK(m.Accept(eos));
  CHECK(m.terminated());
}

TEST(number_complete_but_may_continue_allows_eos_and_digits) {
  uint32_t eos = 0;
  auto vocab = TestVocab(&eos);
  auto g = Grammar::Compile(R"({"type":"json_schema","schema":{"type":"integer"}})", vocab);
  Matcher m(g);
  std::vector<uint64_t> mask(g->maskWords());
  m.FillMask(mask);
  CHECK(!Bit(mask, eos));
  CHECK(Bit(mask, IdOf(*vocab, "-1")));
  CHECK(!Bit(mask, IdOf(*vocab, "0.5")));
  CHECK(m.Accept(IdOf(*vocab, "123")));
  m.FillMask(mask);
  CHECK(Bit(mask, eos));
  CHECK(Bit(mask, IdOf(*vocab, "123")));
  CHECK(!Bit(mask, IdOf(*vocab, " ")));  // no whitespace after the top-level value
  CHECK(BruteMask(m) == mask);
}

TEST(not_complete_disallows_eos) {
  uint32_t eos = 0;
  auto vocab = TestVocab(&eos);
  auto g = Grammar::Compile(R"({"type":"json_object"})", vocab);
  Matcher m(g);
  CHECK(m.AcceptBytes("{\"a\":1"));
  std::vector<uint64_t> mask(g->maskWords());
  m.FillMask(mask);
  CHECK(!Bit(mask, eos));
  CHECK(Bit(mask, IdOf(*vocab, "}")));
  CHECK(Bit(mask, IdOf(*vocab, "}\n")) == false);
  CHECK(!m.Accept(eos));
}

TEST(tokens_spanning_terminals_are_allowed) {
  auto vocab = TestVocab();
  auto g = Grammar::Compile(
      R"({"type":"json_schema","schema":{"type":"array","items":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}}})",
      vocab);
  Matcher m(g);
  CHECK(m.AcceptBytes("[{\"name\":\"x"));
  std::vector<uint64_t> mask(g->maskWords());
  m.FillMask(mask);
  CHECK(Bit(mask, IdOf(*vocab, "\"}")));
  CHECK(!Bit(mask, IdOf(*vocab, "\": \"")));
  CHECK(mask == BruteMask(m));
  CHECK(m.Accept(IdOf(*vocab, "\"}")));
  m.FillMask(mask);
  CHECK(Bit(mask, IdOf(*vocab, "]")));
  CHECK(Bit(mask, IdOf(*vocab, "},{\"")) == false);  // the object already closed
  Matcher m2(g);
  CHECK(m2.AcceptBytes("[{\"name\":\"x\""));
  m2.FillMask(mask);
  CHECK(Bit(mask, IdOf(*vocab, "},{\"")));
  CHECK(mask == BruteMask(m2));
}

TEST(split_utf8_characters_across_tokens) {
  auto vocab = TestVocab();
  auto g = Grammar::Compile(R"({"type":"json_schema","schema":{"type":"string","maxLength":2}})", vocab);
  Matcher m(g);
  CHECK(m.Accept(IdOf(*vocab, "\"")));
  CHECK(m.Accept(IdOf(*vocab, "\xE4\xBD")));  // first two bytes of 你
  std::vector<uint64_t> mask(g->maskWords());
  m.FillMask(mask);
  CHECK(mask == BruteMask(m));
  CHECK(!Bit(mask, IdOf(*vocab, "a")));  // mid-character: only a continuation byte
  CHECK(Bit(mask, IdOf(*vocab, "\xA0")));
  CHECK(m.Accept(IdOf(*vocab, "\xA0")));
  CHECK(m.Accept(IdOf(*vocab, "\xF0\x9F")));
  CHECK(m.Accept(IdOf(*vocab, "\x98\x80")));  // the emoji completes: two characters
  m.FillMask(mask);
  CHECK(Bit(mask, IdOf(*vocab, "\"")));
  CHECK(!Bit(mask, IdOf(*vocab, "a")));  // maxLength reached
  CHECK(m.Accept(IdOf(*vocab, "\"")));
  CHECK(m.complete());
  // A lone continuation byte or an overlong lead never starts a character.
  Matcher m3(g);
  CHECK(m3.AcceptBytes("\""));
  CHECK(!m3.AcceptBytes("\x80"));
  CHECK(!m3.AcceptBytes("\xC0\xAF"));
  CHECK(!m3.AcceptBytes("\xED\xA0\x80"));  // a surrogate
}

TEST(masks_match_brute_force_on_random_walks) {
  const char* specs[] = {
      R"({"type":"json_object"})",
      R"({"type":"json_schema","schema":{"type":"object","properties":{"name":{"type":"string","maxLength":5},"age":{"type":"integer","minimum":0,"maximum":120},"tags":{"type":"array","items":{"enum":["a","b","é"]},"maxItems":3},"ok":{"type":"boolean"}},"required":["name"]}})",
      R"({"type":"json_schema","schema":{"$defs":{"node":{"type":"object","properties":{"v":{"type":"number"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"],"additionalProperties":false}},"$ref":"#/$defs/node"}})",
      R"({"type":"json_schema","schema":{"anyOf":[{"type":"string","format":"date-time"},{"type":"null"},{"type":"number","minimum":-5,"exclusiveMaximum":3}]}})",
      R"({"type":"regex","pattern":"(ab|a)*c[0-9]{2,3}"})",
      R"({"type":"repeat","item":{"type":"sequence","items":[{"type":"literal","text":"<tool_call>\n"},{"type":"json_schema","schema":{"type":"object","properties":{"name":{"const":"f"},"arguments":{"type":"object"}},"required":["name","arguments"]}},{"type":"literal","text":"\n</tool_call>"}]},"min":1,"max":2})",
      R"({"type":"choice","choices":["yes","no","maybe"]})",
      R"({"type":"json_schema","schema":{"type":"object","additionalProperties":{"type":"integer"},"properties":{"a":{"type":"string"}}}})",
  };
  for (const char* spec : specs) {
    auto g = Compile(spec);
    for (uint64_t seed = 1; seed <= 12; ++seed) {
      const WalkResult r = RandomWalk(g, seed, 60, true);
      CHECK(r.masksMatched);
      if (!r.masksMatched) std::printf("  spec %s seed %llu\n", spec, static_cast<unsigned long long>(seed));
    }
  }
}

namespace {
// A vocabulary for the whole-subtree path of the trie walk: the test vocabulary plus long ASCII runs, words with
// '"' and '\' inside, well-formed and ill-formed UTF-8 (overlong, surrogate, above U+10FFFF, cut characters).
std::shared_ptr<const Vocabulary> SubtreeVocab() {
  VocabularyInput in;
  in.kind = VocabKind::kPlain;
  const auto base = TestVocab();
  for (uint32_t id = 0; id < base->size(); ++id) {
    if (base->usable(id)) in.tokens.emplace_back(base->bytes(id));
  }
  for (size_t n = 2; n <= 40; n += 3) {
    in.tokens.push_back(std::string(n, 'a'));
    in.tokens.push_back(std::string(n, ' '));
    in.tokens.push_back("x" + std::string(n, '7'));
  }
  for (const char* t : {"hello",
                        "hello world",
                        "hello\"",
                        "hel\\lo",
                        "Hello42",
                        "b-c",
                        "caf\xC3\xA9",
                        "\xC3\xA9t\xC3\xA9",
                        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
                        "\xE6\x97",
                        "a\xE6\x97",
                        "\xC0\x80",
                        "\xED\xA0\x80",
                        "\xE0\x80\x80",
                        "\xF4\x90\x80\x80",
                        "\xF5\x80",
                        "a\xF0\x9F\x98\x80"
                        "b",
                        "\x7F",
                        "ab\ncd",
                        "2024-01-02",
                        "12:30:00Z",
                        "x@y.com",
                        "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"}) {
    in.tokens.push_back(t);
  }
  in.tokens.push_back("<|eos|>");
  in.special.assign(in.tokens.size(), false);
  in.special.back() = true;
  in.eos = {static_cast<uint32_t>(in.tokens.size() - 1)};
  return Vocabulary::Build(in);
}

const char* kSubtreeSpecs[] = {
    R"({"type":"json_schema","schema":{"type":"object","properties":{"s":{"type":"string","minLength":2,"maxLength":20},"t":{"type":"string"}},"required":["s","t"]}})",
    R"({"type":"json_schema","schema":{"type":"array","items":{"type":"string","maxLength":9}}})",
    R"({"type":"json_schema","schema":{"type":"object","properties":{"id":{"type":"string","pattern":"^[0-9a-zA-Z_-]{1,30}$"},"d":{"type":"string","format":"date"},"e":{"type":"string","format":"email"}}}})",
    R"({"type":"json_schema","schema":{"type":"object","additionalProperties":{"type":"string","pattern":"(.+/)?.+:.+"}}})",
    R"({"type":"regex","pattern":"[a-z0-9 ]{0,25}x?"})",
    R"({"type":"regex","pattern":"[^\n]{3,12}"})",
    R"({"type":"json_object"})",
};
}  // namespace

TEST(trie_records_byte_languages_per_subtree) {
  const auto v = SubtreeVocab();
  for (size_t i = 0; i < v->trieSize(); ++i) {
    uint16_t expect = 0xFFFF;
    uint32_t deepest = v->trieDepth(i);
    for (size_t j = i + 1; j < v->trieNext(i); ++j) {
      for (uint32_t id : v->trieTokens(j)) {
        const std::string_view below = v->bytes(id).substr(v->trieDepth(i));
        deepest = std::max(deepest, static_cast<uint32_t>(v->bytes(id).size()));
        for (int l = 0; l < kByteLanguages; ++l) {
          const ByteLanguage& lang = GetByteLanguage(l);
          for (int st = 0; st < lang.states; ++st) {
            int s = st;
            for (const char c : below) s = s < 0 ? s : lang.next[s][static_cast<uint8_t>(c)];
            if (s < 0) expect &= static_cast<uint16_t>(~(1u << ByteLanguageBit(l, st)));
          }
        }
      }
    }
    const uint16_t used = (1u << (2 + GetByteLanguage(2).states)) - 1;
    CHECK_EQ(static_cast<int>(v->trieLanguagesBelow(i) & used), static_cast<int>(expect & used));
    CHECK_EQ(v->trieDepthBelow(i), deepest);
  }
  // Spot checks of the UTF-8 language: well-formed text reads, ill-formed does not.
  auto reads = [](std::string_view bytes) {
    const ByteLanguage& u = GetByteLanguage(2);
    int s = 0;
    for (const char c : bytes) s = s < 0 ? s : u.next[s][static_cast<uint8_t>(c)];
    return s >= 0;
  };
  CHECK(reads("caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"));
  CHECK(reads("\xE6\x97"));  // cut inside a character
  CHECK(!reads("\xC0\x80") && !reads("\xED\xA0\x80") && !reads("\xE0\x80\x80") && !reads("\xF4\x90\x80\x80"));
  CHECK(!reads("\"") && !reads("\\") && !reads("\n") && !reads("\x7F") && !reads("\x80"));
}

TEST(whole_subtree_walk_equals_byte_by_byte_walk) {
  // For every node that reads bytes, the mask-cache walk with byte horizons accepts and defers exactly the tokens
  // the byte-by-byte walk does.
  const auto v = SubtreeVocab();
  size_t skipped = 0;
  for (const char* spec : kSubtreeSpecs) {
    const auto g = Grammar::Compile(spec, v);
    const Automata& a = g->automata();
    for (uint32_t n = 0; n < a.nodes.size(); ++n) {
      if (!a.nodes[n].hasBytes()) continue;
      std::vector<uint32_t> acc[2], unc[2];
      for (int fast = 0; fast < 2; ++fast) {
        StackPool pool;
        Stepper st(a, pool, static_cast<uint32_t>(g->limits().maxStackDepth));
        StateSet start;
        start.tops.push_back(Top{n, -1});
        std::vector<StateSet> levels;
        WalkTrie(
            *v, fast ? g->horizons() : nullptr, st, start, levels, true, [&](uint32_t id) { acc[fast].push_back(id); },
            [&](uint32_t id) { unc[fast].push_back(id); });
        std::sort(acc[fast].begin(), acc[fast].end());
      }
      CHECK(acc[0] == acc[1]);
      CHECK(unc[0] == unc[1]);
      if (acc[0] != acc[1] || unc[0] != unc[1]) std::printf("  spec %s node %u\n", spec, n);
      for (int l = 0; l < kByteLanguages; ++l) skipped += g->horizons()[n * kByteLanguages + l] > 1;
    }
  }
  CHECK(skipped > 0);  // the fast path is exercised
}

TEST(masks_with_whole_subtree_walks_match_brute_force) {
  const auto v = SubtreeVocab();
  for (const char* spec : kSubtreeSpecs) {
    const auto g = Grammar::Compile(spec, v);
    for (uint64_t seed = 1; seed <= 8; ++seed) {
      const WalkResult r = RandomWalk(g, seed, 40, true);
      CHECK(r.masksMatched);
      if (!r.masksMatched) std::printf("  spec %s seed %llu\n", spec, static_cast<unsigned long long>(seed));
    }
  }
}

TEST(big_string_rules_share_mask_entries_across_grammars) {
  // A length-bounded string is a node per position, so its closure text is long (here well over 256 KiB); grammars
  // over one vocabulary still share its entries, and masks that come from a shared entry match the brute force.
  const auto v = SubtreeVocab();
  const auto a = Grammar::Compile(
      R"({"type":"json_schema","schema":{"type":"object","properties":{"s":{"type":"string","maxLength":250}}}})", v);
  const auto b = Grammar::Compile(
      R"({"type":"json_schema","schema":{"type":"array","items":{"type":"string","maxLength":250}}})", v);
  auto firstNodeOf = [](const Grammar& g, const std::string& rule) -> uint32_t {
    const Automata& at = g.automata();
    for (uint32_t r = 0; r < at.ruleNames.size(); ++r) {
      if (at.ruleNames[r] == rule) return at.ruleStart[r];
    }
    return UINT32_MAX;
  };
  const uint32_t na = firstNodeOf(*a, "string{0,250}"), nb = firstNodeOf(*b, "string{0,250}");
  CHECK(na != UINT32_MAX && nb != UINT32_MAX);
  if (na == UINT32_MAX || nb == UINT32_MAX) return;
  size_t shared = 0, nodes = 0;
  for (uint32_t k = 0; k < 40; ++k) {
    if (!a->automata().nodes[na + k].hasBytes()) continue;
    ++nodes;
    shared += a->Entry(na + k).get() == b->Entry(nb + k).get();
  }
  CHECK(nodes > 0);
  CHECK_EQ(shared, nodes);
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    const WalkResult r = RandomWalk(b, seed, 40, true);
    CHECK(r.masksMatched);
  }
}

TEST(finished_json_walks_parse) {
  auto g = Compile(R"({"type":"json_object"})");
  size_t finished = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    const WalkResult r = RandomWalk(g, seed, 200, false);
    CHECK(r.masksMatched);
    if (!r.finished) continue;
    ++finished;
    try {
      const auto v = json::Parse(r.text);
      CHECK(v.isObject());
    } catch (const std::exception& e) {
      std::printf("  did not parse: %s (%s)\n", r.text.c_str(), e.what());
      CHECK(false);
    }
  }
  CHECK(finished > 20);
}

TEST(recursion_through_refs) {
  auto g = Schema(
      R"({"type":"object","properties":{"next":{"$ref":"#"},"v":{"type":"integer"}},"required":["v"],"additionalProperties":false})");
  CHECK(Accepts(g, R"({"v":1})"));
  CHECK(Accepts(g, R"({"next":{"next":{"v":3},"v":2},"v":1})"));
  CHECK(!Accepts(g, R"({"next":{},"v":1})"));
  CHECK(!Accepts(g, R"({"v":1,"next":{"v":2}})"));  // declared order
  // Mutual recursion through $defs; JSON-pointer refs into properties.
  auto h = Schema(
      R"({"definitions":{"a":{"type":"array","items":{"$ref":"#/definitions/b"}},"b":{"anyOf":[{"type":"integer"},{"$ref":"#/definitions/a"}]}},"$ref":"#/definitions/a"})");
  CHECK(Accepts(h, "[1,[2,[3]],[]]"));
  CHECK(!Accepts(h, "[1,[2,[\"x\"]]]"));
  auto p = Schema(
      R"({"type":"object","properties":{"a":{"type":"string"},"b":{"$ref":"#/properties/a"}},"required":["a","b"]})");
  CHECK(Accepts(p, R"({"a":"x", "b":"y"})"));
  CHECK(!Accepts(p, R"({"a":"x","b":1})"));
}

TEST(nesting_is_bounded_without_dead_ends) {
  Limits limits;
  limits.maxStackDepth = 12;
  auto g = Grammar::Compile(
      R"({"type":"json_schema","schema":{"$defs":{"t":{"type":"array","items":{"$ref":"#/$defs/t"}}},"$ref":"#/$defs/t"}})",
      TestVocab(), limits);
  Matcher m(g);
  std::vector<uint64_t> mask(g->maskWords());
  size_t opened = 0;
  while (m.AcceptBytes("[")) ++opened;
  if (!(opened > 2 && opened < 12)) std::printf("  opened %zu\n", opened);
  CHECK(opened > 2 && opened <= 12);
  m.FillMask(mask);
  CHECK(mask == BruteMask(m));
  CHECK(Bit(mask, IdOf(g->vocabulary(), "]")));
}

TEST(tool_call_format_through_combinators) {
  auto g = Compile(
      R"({"type":"repeat","min":1,"item":{"type":"sequence","items":[{"type":"literal","text":"<tool_call>\n"},{"type":"any_of","items":[{"type":"json_schema","schema":{"type":"object","properties":{"name":{"const":"get_weather"},"arguments":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}},"required":["name","arguments"],"additionalProperties":false}},{"type":"json_schema","schema":{"type":"object","properties":{"name":{"const":"now"},"arguments":{"type":"object","additionalProperties":false}},"required":["name","arguments"],"additionalProperties":false}}]},{"type":"literal","text":"\n</tool_call>"}]}})");
  CHECK(Accepts(g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"));
  CHECK(Accepts(g,
                "<tool_call>\n{\"name\":\"now\",\"arguments\":{}}\n</"
                "tool_call><tool_call>\n{\"name\":\"now\",\"arguments\":{}}\n</tool_call>"));
  CHECK(!Accepts(g, "<tool_call>\n{\"name\":\"other\",\"arguments\":{}}\n</tool_call>"));
  CHECK(!Accepts(g, ""));
  auto llama = Compile(
      R"({"type":"json_schema","schema":{"type":"object","properties":{"name":{"enum":["f","g"]},"parameters":{"type":"object"}},"required":["name","parameters"],"additionalProperties":false}})");
  CHECK(Accepts(llama, R"({"name": "f", "parameters": {"x": [1, 2]}})"));
}

TEST(regex_spec_and_whitespace_bound) {
  auto g = Compile(R"({"type":"regex","pattern":"^[a-c]+(x|yz)?$"})");
  CHECK(Accepts(g, "abcx"));
  CHECK(Accepts(g, "a"));
  CHECK(!Accepts(g, "abcy"));
  auto j = Compile(R"({"type":"json_object"})");
  CHECK(Accepts(j, "{\n  \"a\": [1, 2],\n  \"b\": {}\n}"));
  CHECK(!Accepts(j, "{  \"a\":1}"));  // at most one whitespace run: two spaces are not one
  CHECK(!Accepts(j, " {\"a\":1}"));   // nothing before the value
  CHECK(!Accepts(j, "{\"a\":1}\n"));  // nor after it
}

TEST(compile_errors_are_typed) {
  auto vocab = TestVocab();
  auto compile = [&](const std::string& spec) { Grammar::Compile(spec, vocab); };
  CHECK_ERROR(compile("{"), kErrInvalid, "invalid JSON");
  CHECK_ERROR(compile(R"({"type":"nope"})"), kErrInvalid, "unknown constraint spec type");
  CHECK_ERROR(compile(R"({"type":"literal","text":"a","extra":1})"), kErrInvalid, "unknown field 'extra'");
  CHECK_ERROR(compile(R"({"type":"regex","pattern":"(a"})"), kErrInvalid, "missing ')'");
  CHECK_ERROR(compile(R"({"type":"regex","pattern":"(?=a)b"})"), kErrUnsupported, "lookaround");
  CHECK_ERROR(compile(R"({"type":"regex","pattern":"a{2000}"})"), kErrTooLarge, "above 1000");
  CHECK_ERROR(compile(R"({"type":"repeat","item":{"type":"literal","text":"a"},"min":3,"max":2})"), kErrInvalid,
              "below 'min'");
}

TEST(limits_refuse_hostile_inputs) {
  auto vocab = TestVocab();
  // Deep nesting of the spec document.
  std::string deep;
  for (int i = 0; i < 300; ++i) deep += R"({"type":"array","items":)";
  deep += "true";
  for (int i = 0; i < 300; ++i) deep += "}";
  CHECK_ERROR(Grammar::Compile(R"({"type":"json_schema","schema":)" + deep + "}", vocab), kErrTooLarge, "deeper");
  // A huge enum exceeds the state budget.
  std::string big = R"({"type":"json_schema","schema":{"enum":[)";
  for (int i = 0; i < 60000; ++i) big += (i ? ",\"" : "\"") + std::to_string(i * 7919) + "abcdefgh\"";
  big += "]}}";
  CHECK_ERROR(Grammar::Compile(big, vocab), kErrTooLarge, "automaton states");
  // A catastrophic-backtracking regex is just an automaton here.
  auto g = Grammar::Compile(R"({"type":"regex","pattern":"(a|aa|aaa)*(a*)*b"})", vocab);
  CHECK(Accepts(g, "aaaaaaaaaaaaaaaaaaaaaaab"));
  CHECK(!Accepts(g, "aaaaaaaaaaaaaaaaaaaaaaaa"));
  // Nested counted repeats multiply past the budget.
  CHECK_ERROR(Grammar::Compile(R"({"type":"regex","pattern":"((a{1000}){1000}){1000}"})", vocab), kErrTooLarge, "");
}

TEST(grammar_cache_reuses_and_evicts) {
  auto vocab = TestVocab();
  GrammarCache cache(2);
  auto a = cache.Get(R"({"type":"literal","text":"a"})", vocab);
  auto a2 = cache.Get(R"({"type":"literal","text":"a"})", vocab);
  CHECK(a.get() == a2.get());
  CHECK_EQ(cache.hits(), uint64_t{1});
  cache.Get(R"({"type":"literal","text":"b"})", vocab);
  cache.Get(R"({"type":"literal","text":"c"})", vocab);
  CHECK_EQ(cache.size(), size_t{2});
  auto a3 = cache.Get(R"({"type":"literal","text":"a"})", vocab);
  CHECK(a3.get() != a.get());  // evicted, compiled again
  CHECK_ERROR(cache.Get(R"({"type":"literal"})", vocab), kErrInvalid, "needs a string 'text'");
  auto other = TestVocab();
  CHECK(cache.Get(R"({"type":"literal","text":"a"})", other).get() != a3.get());
}

TEST(special_tokens_are_never_allowed) {
  auto vocab = TestVocab();
  auto g = Grammar::Compile(R"({"type":"regex","pattern":"[<|a-z>]*"})", vocab);
  Matcher m(g);
  std::vector<uint64_t> mask(g->maskWords());
  m.FillMask(mask);
  for (uint32_t id = 0; id < vocab->size(); ++id) {
    if (std::string(vocab->bytes(id)).empty() && id != vocab->eos()[0]) CHECK(!Bit(mask, id));
  }
  CHECK(!m.Accept(static_cast<uint32_t>(vocab->size() - 2)));  // <|special|>
}

TEST_MAIN()
