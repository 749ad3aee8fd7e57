#include "grammar/matcher.h"

#include <algorithm>
#include <unordered_map>

namespace tokmeter::grammar {

// ---- StackPool ----

namespace {
inline uint64_t Key(uint32_t node, int32_t parent) {
  return (static_cast<uint64_t>(node) << 32) | static_cast<uint32_t>(parent);
}
inline size_t Hash(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return static_cast<size_t>(k);
}
}  // namespace

void StackPool::Clear() {
  entries_.clear();
  slots_.clear();
  max_depth_ = 0;
}

void StackPool::Grow() {
  const size_t cap = slots_.empty() ? 1024 : slots_.size() * 2;
  slots_.assign(cap, -1);
  for (size_t i = 0; i < entries_.size(); ++i) {
    size_t h = Hash(Key(entries_[i].node, entries_[i].parent)) & (cap - 1);
    while (slots_[h] >= 0) h = (h + 1) & (cap - 1);
    slots_[h] = static_cast<int32_t>(i);
  }
}

int32_t StackPool::Get(uint32_t node, int32_t parent) {
  if ((entries_.size() + 1) * 2 > slots_.size()) Grow();
  const size_t mask = slots_.size() - 1;
  size_t h = Hash(Key(node, parent)) & mask;
  while (slots_[h] >= 0) {
    const Entry& e = entries_[static_cast<size_t>(slots_[h])];
    if (e.node == node && e.parent == parent) return slots_[h];
    h = (h + 1) & mask;
  }
  const uint32_t d = depth(parent) + 1;
  max_depth_ = std::max(max_depth_, d);
  entries_.push_back({node, parent, d});
  slots_[h] = static_cast<int32_t>(entries_.size() - 1);
  return slots_[h];
}

// ---- Stepper ----

bool Stepper::Seen(const Top& t) {
  for (const Top& s : seen_) {
    if (s == t) return true;
  }
  seen_.push_back(t);
  return false;
}

void Stepper::Close(Top top, StateSet& out) {
  if (Seen(top)) return;
  work_.push_back(top);
  while (!work_.empty()) {
    const Top t = work_.back();
    work_.pop_back();
    const Node& node = a_.nodes[t.node];
    if (node.hasBytes()) out.tops.push_back(t);
    for (uint32_t c = node.callsBegin; c < node.callsEnd; ++c) {
      const CallEdge& call = a_.calls[c];
      // A call whose return node only accepts is a tail call: the callee returns straight to our caller.
      const int32_t ret = a_.nodes[call.target].final() ? t.parent : pool_.Get(call.target, t.parent);
      if (pool_.depth(ret) + 1 > max_depth_) continue;
      const Top callee{a_.ruleStart[call.rule], ret};
      if (!Seen(callee)) work_.push_back(callee);
    }
    if (node.accept) {
      if (t.parent < 0) {
        out.end = true;
      } else {
        const StackPool::Entry& p = pool_[t.parent];
        const Top back{p.node, p.parent};
        if (!Seen(back)) work_.push_back(back);
      }
    }
  }
}

void Stepper::CloseFrom(Top top, StateSet& out) {
  seen_.clear();
  Close(top, out);
}

void Stepper::Start(uint32_t rule, StateSet& out) {
  out.Clear();
  CloseFrom(Top{a_.ruleStart[rule], -1}, out);
}

void Stepper::Advance(const StateSet& in, uint8_t byte, StateSet& out) {
  out.Clear();
  seen_.clear();
  if (in.tops.size() == 1) {
    // Fast path (most steps inside a deterministic rule): one frame, one edge, a target that neither calls nor accepts.
    const Top& t = in.tops[0];
    const Node& node = a_.nodes[t.node];
    uint32_t found = UINT32_MAX;
    size_t hits = 0;
    for (uint32_t e = node.edgesBegin; e < node.edgesEnd; ++e) {
      const Edge& edge = a_.edges[e];
      if (edge.lo > byte) break;
      if (byte <= edge.hi) found = edge.target, ++hits;
    }
    if (hits == 0) return;
    if (hits == 1) {
      const Node& target = a_.nodes[found];
      if (!target.accept && !target.hasCalls()) {
        if (target.hasBytes()) out.tops.push_back(Top{found, t.parent});
        return;
      }
    }
  }
  for (const Top& t : in.tops) {
    const Node& node = a_.nodes[t.node];
    for (uint32_t e = node.edgesBegin; e < node.edgesEnd; ++e) {
      const Edge& edge = a_.edges[e];
      if (edge.lo > byte) break;
      if (byte <= edge.hi) Close(Top{edge.target, t.parent}, out);
    }
  }
}

// ---- Matcher ----

Matcher::Matcher(std::shared_ptr<const Grammar> grammar) : grammar_(std::move(grammar)) {
  Stepper st(grammar_->automata(), pool_, static_cast<uint32_t>(grammar_->limits().maxStackDepth));
  st.Start(grammar_->automata().root, state_);
}

Matcher::Matcher(const Matcher& other)
    : grammar_(other.grammar_), pool_(other.pool_), state_(other.state_), terminated_(other.terminated_) {}

bool Matcher::Step(std::string_view bytes, StateSet& out) {
  Stepper st(grammar_->automata(), pool_, static_cast<uint32_t>(grammar_->limits().maxStackDepth));
  tmp_a_ = state_;
  for (const char c : bytes) {
    st.Advance(tmp_a_, static_cast<uint8_t>(c), tmp_b_);
    std::swap(tmp_a_, tmp_b_);
    if (tmp_a_.tops.empty() && !tmp_a_.end) return false;
  }
  if (tmp_a_.tops.empty() && !tmp_a_.end) return false;
  out = tmp_a_;
  return true;
}

bool Matcher::AcceptBytes(std::string_view bytes) {
  if (terminated_) return false;
  StateSet next;
  if (!Step(bytes, next)) return false;
  state_ = std::move(next);
  MaybeCompact();
  return true;
}

bool Matcher::Accept(uint32_t token) {
  if (terminated_) return false;
  const Vocabulary& v = grammar_->vocabulary();
  if (token >= v.size()) return false;
  const auto& eos = v.eos();
  if (std::find(eos.begin(), eos.end(), token) != eos.end()) {
    // EOS ends a complete document; in a state no token can continue (only at the depth bound) it ends it too.
    if (!state_.end && !state_.tops.empty()) {
      std::vector<uint64_t> mask(grammar_->maskWords());
      FillMask(mask);
      if (!(mask[token >> 6] >> (token & 63) & 1)) return false;
    }
    terminated_ = true;
    return true;
  }
  if (!v.usable(token)) return false;
  return AcceptBytes(v.bytes(token));
}

void Matcher::MaybeCompact() {
  if (pool_.size() < (1u << 16)) return;
  // Re-intern the live stacks into a fresh pool.
  StackPool fresh;
  std::unordered_map<int32_t, int32_t> map;
  std::vector<int32_t> chain;
  auto rebase = [&](int32_t id) -> int32_t {
    chain.clear();
    int32_t cur = id;
    while (cur >= 0 && !map.count(cur)) {
      chain.push_back(cur);
      cur = pool_[cur].parent;
    }
    int32_t mapped = cur < 0 ? -1 : map[cur];
    for (size_t k = chain.size(); k-- > 0;) {
      mapped = fresh.Get(pool_[chain[k]].node, mapped);
      map[chain[k]] = mapped;
    }
    return id < 0 ? -1 : map[id];
  };
  for (Top& t : state_.tops) t.parent = rebase(t.parent);
  pool_ = std::move(fresh);
}

void Matcher::FillMask(std::span<uint64_t> mask) {
  std::fill(mask.begin(), mask.end(), 0);
  if (terminated_) return;
  const Grammar& g = *grammar_;
  const uint32_t limit = static_cast<uint32_t>(g.limits().maxStackDepth);
  Stepper st(g.automata(), pool_, limit);
  for (const Top& top : state_.tops) {
    const auto entry = g.Entry(top.node);
    if (st.topDepth(top) - 1 + entry->maxTopDepth > limit) {
      SlowWalk(top, mask);
      continue;
    }
    if (!entry->bits.empty()) {
      for (size_t w = 0; w < mask.size(); ++w) mask[w] |= entry->bits[w];
    } else {
      for (uint32_t id : entry->ids) mask[id >> 6] |= 1ull << (id & 63);
    }
    CheckUncertain(top, *entry, mask);
  }
  bool any = false;
  for (uint64_t w : mask) any = any || w != 0;
  if (state_.end || !any) {
    for (uint32_t e : g.vocabulary().eos()) mask[e >> 6] |= 1ull << (e & 63);
  }
}

void Matcher::CheckUncertain(const Top& top, const MaskEntry& entry, std::span<uint64_t> mask) {
  if (entry.uncertain.empty()) return;
  const Grammar& g = *grammar_;
  const Vocabulary& v = g.vocabulary();
  Stepper st(g.automata(), pool_, static_cast<uint32_t>(g.limits().maxStackDepth));
  if (levels_.size() < v.maxTokenBytes() + 1) levels_.resize(v.maxTokenBytes() + 1);
  levels_[0].Clear();
  levels_[0].tops.push_back(top);
  std::string_view prev;
  size_t valid = 0;  // levels_[0..valid] hold the states along `prev`
  for (uint32_t id : entry.uncertain) {
    if (mask[id >> 6] >> (id & 63) & 1) continue;
    const std::string_view b = v.bytes(id);
    size_t k = 0;
    const size_t lim = std::min({prev.size(), b.size(), valid});
    while (k < lim && prev[k] == b[k]) ++k;
    bool dead = false;
    size_t d = k;
    // A prefix that died before: everything below it dies too.
    if (d > 0 && levels_[d].tops.empty() && d < b.size()) dead = true;
    while (!dead && d < b.size()) {
      st.Advance(levels_[d], static_cast<uint8_t>(b[d]), levels_[d + 1]);
      ++d;
      if (levels_[d].tops.empty() && d < b.size()) dead = true;
    }
    prev = b;
    valid = d;
    if (!dead && (!levels_[d].tops.empty() || levels_[d].end)) mask[id >> 6] |= 1ull << (id & 63);
  }
}

void Matcher::SlowWalk(const Top& top, std::span<uint64_t> mask) {
  const Grammar& g = *grammar_;
  Stepper st(g.automata(), pool_, static_cast<uint32_t>(g.limits().maxStackDepth));
  StateSet start;
  start.tops.push_back(top);
  WalkTrie(
      g.vocabulary(), g.horizons(), st, start, levels_, false, [&](uint32_t id) { mask[id >> 6] |= 1ull << (id & 63); },
      [](uint32_t) {});
}

// ---- Grammar's mask cache ----

std::shared_ptr<const MaskEntry> Grammar::Entry(uint32_t node) const {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (entries_[node]) return entries_[node];
  }
  // A node of a rule whose closure (the rule and all it calls) has a canonical key has the same entry in every
  // grammar with that closure: shared per vocabulary.
  const ClosureKey& key = leaf_keys_[automata_.nodes[node].rule];
  const uint32_t offset = node - automata_.ruleStart[automata_.nodes[node].rule];
  if (!key.text.empty()) {
    if (auto shared = vocabulary_->FindShared(key, offset)) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!entries_[node]) entries_[node] = shared;
      return entries_[node];
    }
  }
  auto entry = std::make_shared<MaskEntry>();
  StackPool pool;
  Stepper st(automata_, pool, static_cast<uint32_t>(limits_.maxStackDepth));
  StateSet start;
  start.tops.push_back(Top{node, -1});
  std::vector<StateSet> levels;
  std::vector<uint32_t> accepted;
  WalkTrie(
      *vocabulary_, horizons_.data(), st, start, levels, true, [&](uint32_t id) { accepted.push_back(id); },
      [&](uint32_t id) { entry->uncertain.push_back(id); });
  entry->maxTopDepth = pool.maxDepth() + 1;
  const size_t vocab = vocabulary_->size();
  if (accepted.size() * 32 > vocab) {
    entry->bits.assign(maskWords(), 0);
    for (uint32_t id : accepted) entry->bits[id >> 6] |= 1ull << (id & 63);
  } else {
    entry->ids = std::move(accepted);
  }
  const size_t bytes = entry->bits.size() * 8 + entry->ids.size() * 4 + entry->uncertain.size() * 4 + sizeof(MaskEntry);
  if (!key.text.empty()) vocabulary_->PutShared(key, offset, entry, bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  if (entries_[node]) return entries_[node];
  // Past the memory budget entries are computed for each use rather than kept.
  if (entry_bytes_ + bytes > (size_t{512} << 20)) return entry;
  entry_bytes_ += bytes;
  entries_[node] = entry;
  return entry;
}

size_t Grammar::cachedEntries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  for (const auto& e : entries_) n += e != nullptr;
  return n;
}

Grammar::Grammar(Automata automata, std::shared_ptr<const Vocabulary> vocabulary, const Limits& limits)
    : automata_(std::move(automata)), vocabulary_(std::move(vocabulary)), limits_(limits) {
  entries_.resize(automata_.nodes.size());
  // Canonical text of each rule together with the rules it reaches (numbered in discovery order, nodes relative to
  // their rule's start): the key of entries shared per vocabulary. Equal keys have equal languages from every node,
  // so equal entries (e.g. the strings and any-JSON-value rules every schema has). Closures over 16 rules or 1 MiB of
  // text get none.
  const size_t rules = automata_.ruleStart.size();
  leaf_keys_.assign(rules, ClosureKey{});
  std::vector<uint32_t> end(rules, 0);
  for (uint32_t n = 0; n < automata_.nodes.size(); ++n) end[automata_.nodes[n].rule] = n + 1;
  std::vector<int32_t> local(rules, -1);
  for (size_t r = 0; r < rules; ++r) {
    std::vector<uint32_t> order{static_cast<uint32_t>(r)};
    local[r] = 0;
    std::string key = std::to_string(limits_.maxStackDepth) + "|";
    bool ok = true;
    for (size_t k = 0; k < order.size() && ok; ++k) {
      const uint32_t q = order[k];
      const uint32_t begin = automata_.ruleStart[q];
      for (uint32_t n = begin; n < end[q]; ++n) {
        const Node& node = automata_.nodes[n];
        key += node.accept ? 'A' : 'N';
        for (uint32_t e = node.edgesBegin; e < node.edgesEnd; ++e) {
          const Edge& edge = automata_.edges[e];
          key +=
              std::to_string(edge.lo) + "-" + std::to_string(edge.hi) + ">" + std::to_string(edge.target - begin) + ",";
        }
        for (uint32_t c = node.callsBegin; c < node.callsEnd; ++c) {
          const CallEdge& call = automata_.calls[c];
          if (local[call.rule] < 0) {
            local[call.rule] = static_cast<int32_t>(order.size());
            order.push_back(call.rule);
          }
          key += "c" + std::to_string(local[call.rule]) + ">" + std::to_string(call.target - begin) + ",";
        }
        key += ';';
      }
      key += '#';
      ok = order.size() <= 16 && key.size() < (size_t{1} << 20);
    }
    for (uint32_t q : order) local[q] = -1;
    if (ok) {
      leaf_keys_[r].hash = std::hash<std::string>{}(key);
      leaf_keys_[r].text = std::move(key);
    }
  }
  ComputeHorizons();
}

void Grammar::ComputeHorizons() {
  // Per byte language, over the product (node, language state): horizon 0 where the node reads no byte or does not
  // read each byte the state allows exactly once; otherwise one more than the least horizon among the successors.
  // Breadth-first from the horizon-0 pairs over the reversed arcs; pairs never reached keep UINT32_MAX.
  const size_t nodes = automata_.nodes.size();
  horizons_.assign(nodes * kByteLanguages, 0);
  std::vector<uint32_t> h, predBegin, preds, queue;
  std::vector<std::pair<uint32_t, uint32_t>> arcs;  // (successor pair, pair)
  for (int l = 0; l < kByteLanguages; ++l) {
    const ByteLanguage& lang = GetByteLanguage(l);
    const size_t states = static_cast<size_t>(lang.states);
    const size_t pairs = nodes * states;
    uint32_t allowed[kByteLanguageStates][257];  // allowed[s][b]: bytes below b the state reads
    for (size_t s = 0; s < states; ++s) {
      allowed[s][0] = 0;
      for (int b = 0; b < 256; ++b) allowed[s][b + 1] = allowed[s][b] + (lang.next[s][b] >= 0 ? 1 : 0);
    }
    h.assign(pairs, 0);
    arcs.clear();
    queue.clear();
    for (uint32_t n = 0; n < nodes; ++n) {
      const Node& node = automata_.nodes[n];
      for (size_t s = 0; s < states; ++s) {
        const uint32_t pair = static_cast<uint32_t>(n * states + s);
        uint32_t covered = 0;
        int prevHi = -1;
        bool good = node.hasBytes();
        for (uint32_t e = node.edgesBegin; e < node.edgesEnd && good; ++e) {
          const Edge& edge = automata_.edges[e];
          const uint32_t in = allowed[s][edge.hi + 1] - allowed[s][edge.lo];
          if (in == 0) continue;
          if (static_cast<int>(edge.lo) <= prevHi) good = false;  // two edges may read one byte
          prevHi = std::max(prevHi, static_cast<int>(edge.hi));
          covered += in;
        }
        if (!good || covered != allowed[s][256]) {
          queue.push_back(pair);
          continue;
        }
        h[pair] = UINT32_MAX;
        for (uint32_t e = node.edgesBegin; e < node.edgesEnd; ++e) {
          const Edge& edge = automata_.edges[e];
          int last = -1;
          for (int b = edge.lo; b <= edge.hi; ++b) {
            const int t = lang.next[s][b];
            if (t < 0 || t == last) continue;
            last = t;
            arcs.emplace_back(static_cast<uint32_t>(edge.target * states + static_cast<size_t>(t)), pair);
          }
        }
      }
    }
    predBegin.assign(pairs + 1, 0);
    for (const auto& [to, from] : arcs) ++predBegin[to + 1];
    for (size_t p = 0; p < pairs; ++p) predBegin[p + 1] += predBegin[p];
    preds.resize(arcs.size());
    std::vector<uint32_t> fill(predBegin.begin(), predBegin.end() - 1);
    for (const auto& [to, from] : arcs) preds[fill[to]++] = from;
    for (size_t k = 0; k < queue.size(); ++k) {
      const uint32_t p = queue[k];
      for (uint32_t r = predBegin[p]; r < predBegin[p + 1]; ++r) {
        if (h[preds[r]] == UINT32_MAX) {
          h[preds[r]] = h[p] + 1;
          queue.push_back(preds[r]);
        }
      }
    }
    for (size_t n = 0; n < nodes; ++n) horizons_[n * kByteLanguages + static_cast<size_t>(l)] = h[n * states];
  }
}

}  // namespace tokmeter::grammar
