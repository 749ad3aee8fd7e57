#include "grammar/automaton.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "grammar/errors.h"

namespace tokmeter::grammar {

// ---- ExprPool ----

ExprId ExprPool::Add(Expr e) {
  exprs_.push_back(std::move(e));
  return static_cast<ExprId>(exprs_.size() - 1);
}
ExprId ExprPool::Empty() { return Add(Expr{}); }
ExprId ExprPool::Bytes(std::vector<ByteRange> ranges) {
  Expr e;
  e.kind = Expr::kBytes;
  e.ranges = std::move(ranges);
  return Add(std::move(e));
}
ExprId ExprPool::Literal(std::string_view text) {
  if (text.empty()) return Empty();
  Expr e;
  e.kind = Expr::kLiteral;
  e.literal = std::string(text);
  return Add(std::move(e));
}
ExprId ExprPool::Seq(std::vector<ExprId> kids) {
  if (kids.empty()) return Empty();
  if (kids.size() == 1) return kids[0];
  Expr e;
  e.kind = Expr::kSeq;
  e.kids = std::move(kids);
  return Add(std::move(e));
}
ExprId ExprPool::Alt(std::vector<ExprId> kids) {
  if (kids.size() == 1) return kids[0];
  Expr e;
  e.kind = Expr::kAlt;
  e.kids = std::move(kids);
  return Add(std::move(e));
}
ExprId ExprPool::Repeat(ExprId kid, uint32_t min, uint32_t max) {
  if (min == 1 && max == 1) return kid;
  Expr e;
  e.kind = Expr::kRepeat;
  e.min = min;
  e.max = max;
  e.kids = {kid};
  return Add(std::move(e));
}
ExprId ExprPool::Call(uint32_t rule) {
  Expr e;
  e.kind = Expr::kCall;
  e.rule = rule;
  return Add(std::move(e));
}

// ---- Budget ----

void Budget::CheckDeadline() const {
  if (std::chrono::steady_clock::now() > deadline_) {
    throw GrammarError(kErrTooLarge, "", "", "grammar compilation exceeded its time limit");
  }
}
void Budget::Tick(size_t work) {
  ticks_ += work;
  if (ticks_ >= 4096) {
    ticks_ = 0;
    CheckDeadline();
  }
}

// ---- GrammarBuilder ----

uint32_t GrammarBuilder::AddRule(std::string name) {
  if (bodies_.size() >= budget_.limits().maxRules) {
    throw GrammarError(kErrTooLarge, "", "",
                       "the grammar needs more than " + std::to_string(budget_.limits().maxRules) + " rules");
  }
  bodies_.push_back(kNoBody);
  names_.push_back(std::move(name));
  return static_cast<uint32_t>(bodies_.size() - 1);
}

void GrammarBuilder::Define(uint32_t rule, ExprId body) { bodies_[rule] = body; }

namespace {

// Thompson NFA of one rule.
struct TNode {
  std::vector<uint32_t> eps;
  std::vector<Edge> bytes;
  std::vector<CallEdge> calls;
};

class Thompson {
 public:
  Thompson(const ExprPool& pool, Budget& budget, size_t& nodeCount) : pool_(pool), budget_(budget), count_(nodeCount) {}
  std::vector<TNode> nodes;

  struct Frag {
    uint32_t in, out;
  };

  uint32_t New() {
    if (++count_ > budget_.limits().maxNfaNodes) {
      throw GrammarError(
          kErrTooLarge, "", "",
          "the grammar needs more than " + std::to_string(budget_.limits().maxNfaNodes) + " automaton states");
    }
    budget_.Tick();
    nodes.emplace_back();
    return static_cast<uint32_t>(nodes.size() - 1);
  }

  Frag Build(ExprId id) {
    const Expr& e = pool_[id];
    switch (e.kind) {
      case Expr::kEmpty: {
        uint32_t n = New();
        return {n, n};
      }
      case Expr::kBytes: {
        uint32_t a = New(), b = New();
        for (const ByteRange& r : e.ranges) nodes[a].bytes.push_back({r.lo, r.hi, b});
        return {a, b};
      }
      case Expr::kLiteral: {
        uint32_t a = New(), cur = a;
        for (const char c : e.literal) {
          uint32_t n = New();
          nodes[cur].bytes.push_back({static_cast<uint8_t>(c), static_cast<uint8_t>(c), n});
          cur = n;
        }
        return {a, cur};
      }
      case Expr::kSeq: {
        Frag first = Build(e.kids[0]);
        uint32_t out = first.out;
        for (size_t i = 1; i < e.kids.size(); ++i) {
          Frag f = Build(pool_[id].kids[i]);
          nodes[out].eps.push_back(f.in);
          out = f.out;
        }
        return {first.in, out};
      }
      case Expr::kAlt: {
        uint32_t a = New(), b = New();
        const std::vector<ExprId> kids = e.kids;
        for (ExprId k : kids) {
          Frag f = Build(k);
          nodes[a].eps.push_back(f.in);
          nodes[f.out].eps.push_back(b);
        }
        return {a, b};
      }
      case Expr::kRepeat: {
        const ExprId kid = e.kids[0];
        const uint32_t min = e.min, max = e.max;
        uint32_t a = New(), cur = a;
        for (uint32_t i = 0; i < min; ++i) {
          Frag f = Build(kid);
          nodes[cur].eps.push_back(f.in);
          cur = f.out;
        }
        if (max == kUnbounded) {
          uint32_t loop = New();
          nodes[cur].eps.push_back(loop);
          Frag f = Build(kid);
          nodes[loop].eps.push_back(f.in);
          nodes[f.out].eps.push_back(loop);
          return {a, loop};
        }
        uint32_t end = New();
        for (uint32_t i = min; i < max; ++i) {
          nodes[cur].eps.push_back(end);
          Frag f = Build(kid);
          nodes[cur].eps.push_back(f.in);
          cur = f.out;
        }
        nodes[cur].eps.push_back(end);
        return {a, end};
      }
      case Expr::kCall: {
        uint32_t a = New(), b = New();
        nodes[a].calls.push_back({e.rule, b});
        return {a, b};
      }
    }
    return {0, 0};
  }

 private:
  const ExprPool& pool_;
  Budget& budget_;
  size_t& count_;
};

// An epsilon-free automaton of one rule (NFA or DFA).
struct RNode {
  std::vector<Edge> edges;
  std::vector<CallEdge> calls;
  bool accept = false;
};
struct RuleAuto {
  std::vector<RNode> nodes;
  uint32_t start = 0;
  bool deterministic = false;
};

RuleAuto EpsilonFree(const std::vector<TNode>& t, uint32_t start, uint32_t accept, Budget& budget) {
  // Kept nodes: the start and every target of a byte or call edge.
  std::vector<int32_t> keep(t.size(), -1);
  std::vector<uint32_t> order;
  auto keepNode = [&](uint32_t n) {
    if (keep[n] < 0) {
      keep[n] = static_cast<int32_t>(order.size());
      order.push_back(n);
    }
  };
  keepNode(start);
  for (const TNode& n : t) {
    for (const Edge& e : n.bytes) keepNode(e.target);
    for (const CallEdge& c : n.calls) keepNode(c.target);
  }
  RuleAuto out;
  out.nodes.resize(order.size());
  std::vector<uint32_t> stamp(t.size(), UINT32_MAX);
  std::vector<uint32_t> work;
  for (uint32_t k = 0; k < order.size(); ++k) {
    RNode& rn = out.nodes[k];
    work.assign(1, order[k]);
    stamp[order[k]] = k;
    while (!work.empty()) {
      const uint32_t n = work.back();
      work.pop_back();
      budget.Tick();
      if (n == accept) rn.accept = true;
      for (const Edge& e : t[n].bytes) rn.edges.push_back({e.lo, e.hi, static_cast<uint32_t>(keep[e.target])});
      for (const CallEdge& c : t[n].calls) rn.calls.push_back({c.rule, static_cast<uint32_t>(keep[c.target])});
      for (uint32_t m : t[n].eps) {
        if (stamp[m] != k) {
          stamp[m] = k;
          work.push_back(m);
        }
      }
    }
    std::sort(rn.edges.begin(), rn.edges.end(), [](const Edge& a, const Edge& b) {
      return a.lo != b.lo ? a.lo < b.lo : (a.hi != b.hi ? a.hi < b.hi : a.target < b.target);
    });
    rn.edges.erase(
        std::unique(rn.edges.begin(), rn.edges.end(),
                    [](const Edge& a, const Edge& b) { return a.lo == b.lo && a.hi == b.hi && a.target == b.target; }),
        rn.edges.end());
    std::sort(rn.calls.begin(), rn.calls.end(), [](const CallEdge& a, const CallEdge& b) {
      return a.rule != b.rule ? a.rule < b.rule : a.target < b.target;
    });
    rn.calls.erase(
        std::unique(rn.calls.begin(), rn.calls.end(),
                    [](const CallEdge& a, const CallEdge& b) { return a.rule == b.rule && a.target == b.target; }),
        rn.calls.end());
  }
  out.start = 0;
  return out;
}

// Removes calls to unproductive rules and nodes that cannot reach an accept; renumbers from the start.
void Trim(RuleAuto& a, const std::vector<bool>& productive) {
  for (RNode& n : a.nodes) {
    std::erase_if(n.calls, [&](const CallEdge& c) { return !productive[c.rule]; });
  }
  const size_t n = a.nodes.size();
  std::vector<std::vector<uint32_t>> rev(n);
  for (uint32_t i = 0; i < n; ++i) {
    for (const Edge& e : a.nodes[i].edges) rev[e.target].push_back(i);
    for (const CallEdge& c : a.nodes[i].calls) rev[c.target].push_back(i);
  }
  std::vector<bool> live(n, false);
  std::vector<uint32_t> work;
  for (uint32_t i = 0; i < n; ++i) {
    if (a.nodes[i].accept) {
      live[i] = true;
      work.push_back(i);
    }
  }
  while (!work.empty()) {
    uint32_t i = work.back();
    work.pop_back();
    for (uint32_t p : rev[i]) {
      if (!live[p]) {
        live[p] = true;
        work.push_back(p);
      }
    }
  }
  for (RNode& node : a.nodes) {
    std::erase_if(node.edges, [&](const Edge& e) { return !live[e.target]; });
    std::erase_if(node.calls, [&](const CallEdge& c) { return !live[c.target]; });
  }
  // Forward reachability and renumbering.
  std::vector<int32_t> id(n, -1);
  std::vector<uint32_t> order{a.start};
  id[a.start] = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const RNode& node = a.nodes[order[k]];
    auto visit = [&](uint32_t t) {
      if (id[t] < 0) {
        id[t] = static_cast<int32_t>(order.size());
        order.push_back(t);
      }
    };
    for (const Edge& e : node.edges) visit(e.target);
    for (const CallEdge& c : node.calls) visit(c.target);
  }
  std::vector<RNode> nodes(order.size());
  for (size_t k = 0; k < order.size(); ++k) {
    nodes[k] = std::move(a.nodes[order[k]]);
    for (Edge& e : nodes[k].edges) e.target = static_cast<uint32_t>(id[e.target]);
    for (CallEdge& c : nodes[k].calls) c.target = static_cast<uint32_t>(id[c.target]);
  }
  a.nodes = std::move(nodes);
  a.start = 0;
}

struct VecHash {
  size_t operator()(const std::vector<uint32_t>& v) const noexcept {
    size_t h = 1469598103934665603ull;
    for (uint32_t x : v) h = (h ^ x) * 1099511628211ull;
    return h;
  }
};

// Subset construction; false when the DFA would exceed `maxStates`.
bool Determinize(const RuleAuto& nfa, size_t maxStates, Budget& budget, RuleAuto& out) {
  std::unordered_map<std::vector<uint32_t>, uint32_t, VecHash> ids;
  std::vector<std::vector<uint32_t>> sets;
  auto get = [&](std::vector<uint32_t> s) -> int64_t {
    std::sort(s.begin(), s.end());
    s.erase(std::unique(s.begin(), s.end()), s.end());
    auto it = ids.find(s);
    if (it != ids.end()) return it->second;
    if (sets.size() >= maxStates) return -1;
    const uint32_t id = static_cast<uint32_t>(sets.size());
    ids.emplace(s, id);
    sets.push_back(std::move(s));
    return id;
  };
  get({nfa.start});
  out.nodes.clear();
  std::vector<uint32_t> points;
  std::vector<uint32_t> targets;
  for (size_t k = 0; k < sets.size(); ++k) {
    RNode node;
    points.clear();
    const std::vector<uint32_t> members = sets[k];
    std::map<uint32_t, std::vector<uint32_t>> callTargets;
    for (uint32_t m : members) {
      const RNode& src = nfa.nodes[m];
      node.accept = node.accept || src.accept;
      for (const Edge& e : src.edges) {
        points.push_back(e.lo);
        points.push_back(static_cast<uint32_t>(e.hi) + 1);
      }
      for (const CallEdge& c : src.calls) callTargets[c.rule].push_back(c.target);
    }
    std::sort(points.begin(), points.end());
    points.erase(std::unique(points.begin(), points.end()), points.end());
    for (size_t p = 0; p + 1 < points.size(); ++p) {
      const uint32_t lo = points[p], hi = points[p + 1] - 1;
      targets.clear();
      for (uint32_t m : members) {
        for (const Edge& e : nfa.nodes[m].edges) {
          if (e.lo <= lo && lo <= e.hi) targets.push_back(e.target);
        }
      }
      budget.Tick(members.size());
      if (targets.empty()) continue;
      const int64_t t = get(targets);
      if (t < 0) return false;
      if (!node.edges.empty() && node.edges.back().target == t && node.edges.back().hi + 1u == lo) {
        node.edges.back().hi = static_cast<uint8_t>(hi);
      } else {
        node.edges.push_back({static_cast<uint8_t>(lo), static_cast<uint8_t>(hi), static_cast<uint32_t>(t)});
      }
    }
    for (auto& [rule, ts] : callTargets) {
      const int64_t t = get(ts);
      if (t < 0) return false;
      node.calls.push_back({rule, static_cast<uint32_t>(t)});
    }
    out.nodes.push_back(std::move(node));
  }
  out.start = 0;
  out.deterministic = true;
  return true;
}

}  // namespace

Automata GrammarBuilder::Build(uint32_t root) {
  const size_t rules = bodies_.size();
  std::vector<RuleAuto> autos(rules);
  size_t nodeCount = 0;
  for (size_t r = 0; r < rules; ++r) {
    if (bodies_[r] == kNoBody) {
      // A rule whose definition was abandoned (its schema admits no value): an empty language, trimmed away below.
      autos[r].nodes.resize(1);
      continue;
    }
    Thompson t(exprs_, budget_, nodeCount);
    const Thompson::Frag f = t.Build(bodies_[r]);
    autos[r] = EpsilonFree(t.nodes, f.in, f.out, budget_);
  }
  // Productive rules (derive at least one finite string).
  std::vector<bool> productive(rules, false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < rules; ++r) {
      if (productive[r]) continue;
      const RuleAuto& a = autos[r];
      std::vector<bool> seen(a.nodes.size(), false);
      std::vector<uint32_t> work{a.start};
      seen[a.start] = true;
      bool found = false;
      while (!work.empty() && !found) {
        const uint32_t n = work.back();
        work.pop_back();
        budget_.Tick();
        if (a.nodes[n].accept) found = true;
        for (const Edge& e : a.nodes[n].edges) {
          if (!seen[e.target]) seen[e.target] = true, work.push_back(e.target);
        }
        for (const CallEdge& c : a.nodes[n].calls) {
          if (productive[c.rule] && !seen[c.target]) seen[c.target] = true, work.push_back(c.target);
        }
      }
      if (found) productive[r] = changed = true;
    }
  }
  if (!productive[root]) {
    throw GrammarError(
        kErrInvalid, "", "",
        "the spec admits no finite document (a required recursion never ends, or every branch is empty)");
  }
  for (RuleAuto& a : autos) Trim(a, productive);
  // Nullable rules and left recursion (a rule reaching itself through calls before any byte).
  std::vector<bool> nullable(rules, false);
  auto zeroReach = [&](size_t r, std::vector<uint32_t>* called) {
    const RuleAuto& a = autos[r];
    std::vector<bool> seen(a.nodes.size(), false);
    std::vector<uint32_t> work{a.start};
    seen[a.start] = true;
    bool acc = false;
    while (!work.empty()) {
      const uint32_t n = work.back();
      work.pop_back();
      if (a.nodes[n].accept) acc = true;
      for (const CallEdge& c : a.nodes[n].calls) {
        if (called) called->push_back(c.rule);
        if (nullable[c.rule] && !seen[c.target]) seen[c.target] = true, work.push_back(c.target);
      }
    }
    return acc;
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < rules; ++r) {
      if (!nullable[r] && productive[r] && zeroReach(r, nullptr)) nullable[r] = changed = true;
    }
  }
  std::vector<std::vector<uint32_t>> zeroCalls(rules);
  for (size_t r = 0; r < rules; ++r) {
    if (productive[r]) zeroReach(r, &zeroCalls[r]);
  }
  std::vector<uint8_t> color(rules, 0);
  for (size_t s = 0; s < rules; ++s) {
    if (color[s]) continue;
    std::vector<std::pair<uint32_t, size_t>> stack{{static_cast<uint32_t>(s), 0}};
    color[s] = 1;
    while (!stack.empty()) {
      auto& [r, i] = stack.back();
      if (i < zeroCalls[r].size()) {
        const uint32_t next = zeroCalls[r][i++];
        if (color[next] == 1) {
          throw GrammarError(kErrInvalid, names_[next], "$ref",
                             "left recursion: '" + names_[next] + "' can reach itself without reading any input");
        }
        if (color[next] == 0) {
          color[next] = 1;
          stack.push_back({next, 0});
        }
      } else {
        color[r] = 2;
        stack.pop_back();
      }
    }
  }
  // Determinize under the budget; flatten.
  Automata out;
  out.root = root;
  out.ruleNames = names_;
  std::vector<uint32_t> base(rules);
  for (size_t r = 0; r < rules; ++r) {
    RuleAuto dfa;
    const size_t maxStates =
        std::max<size_t>(64, std::min(budget_.limits().maxRuleDfaStates, autos[r].nodes.size() * 8));
    if (Determinize(autos[r], maxStates, budget_, dfa)) autos[r] = std::move(dfa);
    base[r] = static_cast<uint32_t>(out.nodes.size());
    out.nodes.resize(out.nodes.size() + autos[r].nodes.size());
    out.ruleStart.push_back(base[r] + autos[r].start);
    out.ruleDeterministic.push_back(autos[r].deterministic);
  }
  for (size_t r = 0; r < rules; ++r) {
    for (size_t k = 0; k < autos[r].nodes.size(); ++k) {
      RNode& src = autos[r].nodes[k];
      Node& dst = out.nodes[base[r] + k];
      dst.rule = static_cast<uint32_t>(r);
      dst.accept = src.accept;
      dst.edgesBegin = static_cast<uint32_t>(out.edges.size());
      for (const Edge& e : src.edges) out.edges.push_back({e.lo, e.hi, base[r] + e.target});
      dst.edgesEnd = static_cast<uint32_t>(out.edges.size());
      dst.callsBegin = static_cast<uint32_t>(out.calls.size());
      for (const CallEdge& c : src.calls) out.calls.push_back({c.rule, base[r] + c.target});
      dst.callsEnd = static_cast<uint32_t>(out.calls.size());
    }
  }
  return out;
}

}  // namespace tokmeter::grammar
