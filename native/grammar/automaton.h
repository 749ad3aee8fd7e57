// tokmeter::grammar automata — the compiled form of a grammar: a recursive transition network over bytes.
//
// A grammar is a set of rules; each rule is a finite automaton whose edges read a byte range or call another rule
// (push; the callee's accept returns to the edge's target). Rules are written as expressions (ExprPool: byte sets,
// literals, sequences, alternatives, bounded/unbounded repeats, calls), built by Thompson's construction, made
// epsilon-free, trimmed (calls to rules that derive no finite string and nodes that reach no accept are removed)
// and determinized by subset construction under a state budget; a rule whose DFA would exceed the budget keeps its
// epsilon-free NFA (still correct; the matcher tracks sets of stacks). Left recursion (a rule that may call itself
// before reading a byte) is refused at build time, so every push is separated by at least one byte and a stack
// never grows without input.
//
// Lifetime: GrammarBuilder is a single-use, single-threaded compile scratchpad; Automata is immutable afterwards and
// shared read-only by every Matcher.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tokmeter::grammar {

inline constexpr uint32_t kUnbounded = UINT32_MAX;

struct Limits {
  size_t maxNfaNodes = 400'000;     // Thompson nodes over the whole grammar
  size_t maxRuleDfaStates = 4'000;  // beyond this a rule stays an NFA
  size_t maxRules = 20'000;
  size_t maxSchemaDepth = 128;  // nesting of the spec/schema document being compiled
  size_t maxStackDepth = 400;   // matcher stack frames (bounds JSON nesting of generated documents)
  double maxCompileSeconds = 5.0;
};

struct ByteRange {
  uint8_t lo, hi;
};

using ExprId = uint32_t;

struct Expr {
  enum Kind : uint8_t { kEmpty, kBytes, kLiteral, kSeq, kAlt, kRepeat, kCall };
  Kind kind = kEmpty;
  uint32_t min = 0, max = 0;  // kRepeat
  uint32_t rule = 0;          // kCall
  std::vector<ByteRange> ranges;
  std::string literal;
  std::vector<ExprId> kids;
};

class ExprPool {
 public:
  ExprId Empty();
  ExprId Bytes(std::vector<ByteRange> ranges);  // one byte from the union of ranges (must be non-empty)
  ExprId Byte(uint8_t b) { return Bytes({{b, b}}); }
  ExprId Literal(std::string_view text);
  ExprId Seq(std::vector<ExprId> kids);
  ExprId Alt(std::vector<ExprId> kids);  // must be non-empty
  ExprId Repeat(ExprId kid, uint32_t min, uint32_t max);
  ExprId Optional(ExprId kid) { return Repeat(kid, 0, 1); }
  ExprId Star(ExprId kid) { return Repeat(kid, 0, kUnbounded); }
  ExprId Call(uint32_t rule);
  const Expr& operator[](ExprId id) const { return exprs_[id]; }
  size_t size() const noexcept { return exprs_.size(); }

 private:
  ExprId Add(Expr e);
  std::vector<Expr> exprs_;
};

struct Edge {
  uint8_t lo, hi;
  uint32_t target;
};
struct CallEdge {
  uint32_t rule;
  uint32_t target;
};
struct Node {
  uint32_t edgesBegin = 0, edgesEnd = 0, callsBegin = 0, callsEnd = 0;
  uint32_t rule = 0;
  bool accept = false;
  bool hasBytes() const noexcept { return edgesEnd != edgesBegin; }
  bool hasCalls() const noexcept { return callsEnd != callsBegin; }
  bool final() const noexcept { return accept && !hasBytes() && !hasCalls(); }
};

struct Automata {
  std::vector<Node> nodes;
  std::vector<Edge> edges;  // per node, sorted by lo
  std::vector<CallEdge> calls;
  std::vector<uint32_t> ruleStart;
  std::vector<std::string> ruleNames;
  std::vector<bool> ruleDeterministic;
  uint32_t root = 0;
};

// Compile-time budget: node counts and a deadline, checked as work proceeds (throws ERR_GRAMMAR_TOO_LARGE).
class Budget {
 public:
  explicit Budget(const Limits& limits)
      : limits_(limits),
        deadline_(std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                         std::chrono::duration<double>(limits.maxCompileSeconds))) {}
  const Limits& limits() const noexcept { return limits_; }
  void Tick(size_t work = 1);  // checks the deadline every few thousand units
  void CheckDeadline() const;

 private:
  Limits limits_;
  std::chrono::steady_clock::time_point deadline_;
  size_t ticks_ = 0;
};

class GrammarBuilder {
 public:
  explicit GrammarBuilder(Budget& budget) : budget_(budget) {}
  ExprPool& exprs() noexcept { return exprs_; }
  uint32_t AddRule(std::string name);  // declared now, defined later (recursion)
  void Define(uint32_t rule, ExprId body);
  bool defined(uint32_t rule) const { return bodies_[rule] != kNoBody; }
  size_t ruleCount() const noexcept { return bodies_.size(); }
  // Builds the automata with `root` as the start rule. Throws GrammarError (ERR_GRAMMAR_INVALID: the root derives no
  // finite string, or left recursion; ERR_GRAMMAR_TOO_LARGE: a limit).
  Automata Build(uint32_t root);

 private:
  static constexpr ExprId kNoBody = UINT32_MAX;
  Budget& budget_;
  ExprPool exprs_;
  std::vector<ExprId> bodies_;
  std::vector<std::string> names_;
};

}  // namespace tokmeter::grammar
