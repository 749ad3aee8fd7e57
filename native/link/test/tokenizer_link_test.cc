// TokenizerLink over a real (synthetic) byte-level BPE tokenizer: the undecodable ids of a padded model vocabulary,
// the grammar vocabulary built from the tokenizer, compiled constraints cached by spec, and per-tokenizer rebuilds.
#include "link/tokenizer_link.h"

#include <cstdint>
#include <vector>

#include "grammar/matcher.h"
#include "test/test_util.h"
#include "tokenizer/test/synthetic.h"

using tokmeter::link::TokenizerLink;
using tt::ByteBpeBuilder;

namespace {

std::shared_ptr<const tokmeter::tokenizer::Tokenizer> SmallBpe() {
  ByteBpeBuilder b;
  b.Merge("{", "\"");
  b.Merge("\"", "}");
  return b.Build();
}

size_t Count(const tokmeter::engine::TokenMask& mask) {
  size_t n = 0;
  for (const auto& r : mask) n += r.end - r.begin;
  return n;
}

}  // namespace

TEST(undecodable_ids_are_the_padding_past_the_tokenizer) {
  auto t = SmallBpe();  // 258 tokens
  TokenizerLink link(t->VocabSize() + 30);
  auto mask = link.UndecodableIds(t);
  CHECK_EQ(mask->size(), size_t{1});
  CHECK_EQ((*mask)[0].begin, t->VocabSize());
  CHECK_EQ((*mask)[0].end, t->VocabSize() + 30);
  CHECK_EQ(Count(*mask), size_t{30});
  // Built once per tokenizer.
  CHECK(link.UndecodableIds(t) == mask);
}

TEST(undecodable_ids_empty_when_every_id_decodes) {
  auto t = SmallBpe();
  TokenizerLink link(t->VocabSize());
  CHECK(link.UndecodableIds(t)->empty());
  // A model vocabulary smaller than the tokenizer's: nothing past it is considered.
  TokenizerLink smaller(100);
  CHECK(smaller.UndecodableIds(t)->empty());
}

TEST(another_tokenizer_rebuilds) {
  auto a = SmallBpe();
  ByteBpeBuilder big;
  for (int i = 0; i < 20; ++i) big.Merge("a", std::string(1, static_cast<char>('a' + i)));
  auto b = big.Build();  // 276 tokens
  TokenizerLink link(280);
  CHECK_EQ(Count(*link.UndecodableIds(a)), size_t{280 - 258});
  CHECK_EQ(Count(*link.UndecodableIds(b)), size_t{280 - 276});
  auto va = link.Vocabulary(a);
  auto vb = link.Vocabulary(b);
  CHECK(va != vb);
  CHECK(link.Vocabulary(b) == vb);
}

TEST(compiled_constraints_use_the_tokenizers_bytes_and_are_cached) {
  auto t = SmallBpe();
  TokenizerLink link(t->VocabSize() + 2, 4);
  const std::string spec = R"({"type":"choice","choices":["{\"}","x"]})";
  auto g = link.Compile(spec, t);
  CHECK(g != nullptr);
  CHECK(link.Compile(spec, t) == g);
  CHECK_EQ(link.grammars().hits(), uint64_t{1});
  // The mask at the start allows exactly the tokens that begin one of the choices: "{", "{\"", "x".
  tokmeter::grammar::Matcher m(g);
  std::vector<uint64_t> bits(g->maskWords());
  m.FillMask(bits);
  auto allowed = [&](uint32_t id) { return (bits[id / 64] >> (id % 64)) & 1; };
  ByteBpeBuilder ids;
  CHECK(allowed(ids.Id("{")));
  CHECK(allowed(t->VocabSize() - 2));  // the merged "{\"" token
  CHECK(allowed(ids.Id("x")));
  CHECK(!allowed(ids.Id("y")));
  CHECK(!allowed(t->VocabSize() - 1));  // "\"}" cannot start either choice
  // Padded ids past the tokenizer never appear in a mask.
  CHECK(!allowed(t->VocabSize()));
  CHECK(!allowed(t->VocabSize() + 1));
}

TEST(invalid_specs_throw_typed_errors_and_are_not_cached) {
  auto t = SmallBpe();
  TokenizerLink link(t->VocabSize());
  CHECK_THROWS_CODE(link.Compile(R"({"type":"nope"})", t), "ERR_GRAMMAR_INVALID");
  CHECK_EQ(link.grammars().size(), size_t{0});
}

TEST_MAIN()
