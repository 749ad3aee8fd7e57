// BPE merge order on long words: words of >= 256 symbols merge rank by rank (bpe.cc MergeByRank), shorter ones
// through the heap. Both must equal the definition — repeatedly merge the lowest-ranked adjacent pair, leftmost
// first — which a naive O(n^2) loop implements here. Vocabularies are random but every merged token is made by one
// merge only (where the definition and the reference's heap agree, see bpe.cc).
#include <map>
#include <random>
#include <set>

#include "synthetic.h"

using namespace tt;

namespace {

// The definition, on byte strings: returns the final tokens.
std::vector<std::string> NaiveBpe(const std::string& word,
                                  const std::map<std::pair<std::string, std::string>, size_t>& rank) {
  std::vector<std::string> t;
  for (char c : word) t.emplace_back(1, c);
  for (;;) {
    size_t best = SIZE_MAX, at = 0;
    for (size_t i = 0; i + 1 < t.size(); ++i) {
      auto it = rank.find({t[i], t[i + 1]});
      if (it != rank.end() && it->second < best) {
        best = it->second;
        at = i;
      }
    }
    if (best == SIZE_MAX) return t;
    t[at] += t[at + 1];
    t.erase(t.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
}

struct RandomBpe {
  ByteBpeBuilder b;
  std::map<std::pair<std::string, std::string>, size_t> rank;
  void Add(const std::string& x, const std::string& y) {
    b.Merge(x, y);
    rank[{x, y}] = rank.size();
  }
};

std::vector<uint32_t> IdsOf(const ByteBpeBuilder& b, const std::vector<std::string>& toks) {
  std::vector<uint32_t> ids;
  for (const auto& t : toks) ids.push_back(b.Id(t));
  return ids;
}

}  // namespace

TEST(long_words_merge_like_the_definition) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 6; ++round) {
    RandomBpe v;
    std::vector<std::string> toks = {"a", "b", "c"};
    std::set<std::string> have(toks.begin(), toks.end());
    while (v.rank.size() < 40) {
      const std::string& x = toks[rng() % toks.size()];
      const std::string& y = toks[rng() % toks.size()];
      std::string xy = x + y;
      if (xy.size() > 6 || have.count(xy)) continue;
      v.Add(x, y);
      have.insert(xy);
      toks.push_back(xy);
    }
    auto tok = v.b.Build();
    for (size_t len : {3, 40, 255, 256, 300, 1500}) {
      std::string word;
      size_t alphabet = 1 + rng() % 3;
      for (size_t i = 0; i < len; ++i) word.push_back(static_cast<char>('a' + rng() % alphabet));
      auto want = IdsOf(v.b, NaiveBpe(word, v.rank));
      CHECK_EQ(Ids(tok->Encode(word, false)), Ids(want));
      CHECK_EQ(tok->Count(word, false), want.size());
    }
  }
}

TEST(long_words_fall_back_when_a_merge_creates_a_lower_rank) {
  // Ranks out of training order: ("aa", "aa") comes before ("a", "a"), so merging two "a" creates a pair of lower
  // rank than the one being merged; the new pair is merged before anything still queued and the result is still the
  // definition's.
  RandomBpe v;
  v.b.Merge("a", "a");
  v.b.Merge("aa", "aa");
  v.b.Merge("b", "aaaa");
  std::swap(v.b.merges[0], v.b.merges[1]);
  v.rank[{"aa", "aa"}] = 0;
  v.rank[{"a", "a"}] = 1;
  v.rank[{"b", "aaaa"}] = 2;
  auto tok = v.b.Build();
  std::mt19937_64 rng(11);
  for (size_t len : {5, 257, 1001, 4096}) {
    std::string word;
    for (size_t i = 0; i < len; ++i) word.push_back(rng() % 5 == 0 ? 'b' : 'a');
    auto want = IdsOf(v.b, NaiveBpe(word, v.rank));
    CHECK_EQ(Ids(tok->Encode(word, false)), Ids(want));
  }
}

TEST(one_megabyte_words_stay_fast) {
  ByteBpeBuilder b;
  b.Merge("a", "a");
  b.Merge("aa", "aa");
  b.Merge("aaaa", "aaaa");
  b.Merge("a", "b");
  auto tok = b.Build();
  std::string same(1000000, 'a'), mixed;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 1000000; ++i) mixed.push_back(rng() % 2 ? 'a' : 'b');
  double t1 = Seconds([&] { CHECK_EQ(tok->Count(same, false), size_t{125000}); });
  double t2 = Seconds([&] { CHECK(tok->Count(mixed, false) > 0); });
  std::printf("  1 MB of 'a': %.3fs, 1 MB of random a/b: %.3fs\n", t1, t2);
  CHECK(t1 < 2.0 && t2 < 2.0);  // generous: shared, loaded machines
}

TEST(word_caches_give_what_merging_gives_when_full) {
  // 150,000 distinct words, more than the per-thread caches hold (32,768 direct-mapped slots, then up to 65,536 words
  // in the second level, which is emptied when full), three times over: merged, then found in either level or merged
  // again after the second level was emptied, in both orders. Every answer must be the definition's.
  std::mt19937_64 rng(11);
  RandomBpe v;
  std::vector<std::string> toks;
  for (char c = 'a'; c <= 'h'; ++c) toks.emplace_back(1, c);
  std::set<std::string> have(toks.begin(), toks.end());
  while (v.rank.size() < 60) {
    const std::string& x = toks[rng() % toks.size()];
    const std::string& y = toks[rng() % toks.size()];
    std::string xy = x + y;
    if (xy.size() > 4 || have.count(xy)) continue;
    v.Add(x, y);
    have.insert(xy);
    toks.push_back(xy);
  }
  auto tok = v.b.Build();
  std::vector<std::string> words;
  std::vector<std::vector<uint32_t>> want;
  for (uint32_t i = 0; i < 150000; ++i) {
    std::string w;
    for (uint32_t x = i, k = 0; k < 6; ++k, x /= 8) w.push_back(static_cast<char>('a' + x % 8));
    if (i % 3 == 0) w += w;  // some of 12 bytes
    want.push_back(IdsOf(v.b, NaiveBpe(w, v.rank)));
    words.push_back(std::move(w));
  }
  size_t wrong = 0;
  for (int pass = 0; pass < 3; ++pass) {
    for (size_t j = 0; j < words.size(); ++j) {
      const size_t i = pass == 2 ? words.size() - 1 - j : j;
      if (tok->Encode(words[i], false) != want[i] || tok->Count(words[i], false) != want[i].size()) ++wrong;
    }
  }
  CHECK_EQ(wrong, size_t{0});
}

int main() { return tt::RunAll(); }
