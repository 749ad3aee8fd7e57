// BatchKv (batch_kv.h): rows join from their own cache, are padded with zeroed holes (left, or right for
// GroupQueryAttention graphs), advance together, are extracted back unchanged, and a relayout compacts the holes
// away. Every test runs for both paddings, over host memory and over fenced memory (fenced_memory.h), where host
// access outside KvMemory faults, as on a GPU.
#include <cstring>
#include <vector>

#include "engine/batch_kv.h"
#include "engine/kv_cache.h"
#include "fenced_memory.h"
#include "test/test_util.h"

using namespace tokmeter::engine;
using Padding = BatchKv::Padding;

namespace {

GraphSpec Spec() {
  GraphSpec s;
  s.numLayers = 1;  // 2 tensors
  s.numKvHeads = 2;
  s.headDim = 2;
  s.vocabSize = 10;
  s.kvDtype = DType::kFloat32;
  return s;
}
constexpr size_t kHeads = 2, kDim = 2, kTensors = 2;
// What a right-padded step leaves in a row's holes: never read, so anything (ORT 1.29's CPU kernel writes zeros).
constexpr float kGarbage = -7.25f;

float Value(size_t seq, size_t t, size_t h, size_t p, size_t d) {
  return static_cast<float>(seq * 10000 + t * 1000 + h * 100 + p * 10 + d) + 0.5f;
}

// A sequence's own cache holding `n` positions of sequence `seq`.
KvCache Own(size_t seq, size_t n, size_t capacity) {
  KvCache cache(Spec(), capacity, *et::kv_memory);
  et::Direct direct;
  for (size_t t = 0; t < kTensors; ++t) {
    auto* out = static_cast<float*>(cache.past(t));
    for (size_t h = 0; h < kHeads; ++h)
      for (size_t p = 0; p < n; ++p)
        for (size_t d = 0; d < kDim; ++d) out[(h * n + p) * kDim + d] = Value(seq, t, h, p, d);
  }
  cache.SetLoadedLength(n);
  return cache;
}

// The first column of row r's real positions.
size_t Start(const BatchKv& b, size_t r) { return b.padding() == Padding::kLeft ? b.pastLength() - b.rowLength(r) : 0; }

// What a batched Run does. Left padding (standard graphs): copies the past into present and appends position `len`
// of each row at column P. Right padding (GroupQueryAttention): copies each row's first `len` columns and writes
// position `len` at column `len`; the rest of the row is left as garbage.
void Step(BatchKv& b, const std::vector<size_t>& seqs) {
  et::Direct direct;
  const size_t P = b.pastLength(), T = P + 1;
  const bool left = b.padding() == Padding::kLeft;
  for (size_t t = 0; t < kTensors; ++t) {
    const auto* past = static_cast<const float*>(b.past(t));
    auto* present = static_cast<float*>(b.present(t));
    for (size_t r = 0; r < b.rows(); ++r)
      for (size_t h = 0; h < kHeads; ++h) {
        const size_t len = b.rowLength(r);
        float* out = present + (r * kHeads + h) * T * kDim;
        const float* in = past + (r * kHeads + h) * P * kDim;
        if (left) {
          std::memcpy(out, in, P * kDim * 4);
        } else {
          std::memcpy(out, in, len * kDim * 4);
          for (size_t c = (len + 1) * kDim; c < T * kDim; ++c) out[c] = kGarbage;
        }
        for (size_t d = 0; d < kDim; ++d) out[(left ? P : len) * kDim + d] = Value(seqs[r], t, h, len, d);
      }
  }
  b.Advance();
}

// Row r holds positions 0..len-1 of sequence `seq` from its start column; its holes hold zeros (`zeroHoles`, what
// a relayout writes) or, right-padded after a step, anything.
bool RowIs(BatchKv& b, size_t r, size_t seq, bool zeroHoles = false) {
  et::Direct direct;
  const size_t P = b.pastLength(), len = b.rowLength(r), start = Start(b, r);
  const bool anyHole = !zeroHoles && b.padding() == Padding::kRight;
  for (size_t t = 0; t < kTensors; ++t) {
    const auto* past = static_cast<const float*>(b.past(t));
    for (size_t h = 0; h < kHeads; ++h)
      for (size_t c = 0; c < P; ++c)
        for (size_t d = 0; d < kDim; ++d) {
          const float got = past[((r * kHeads + h) * P + c) * kDim + d];
          const bool hole = c < start || c >= start + len;
          if (hole && anyHole) continue;
          const float want = hole ? 0.0f : Value(seq, t, h, c - start, d);
          if (got != want) return false;
        }
  }
  return true;
}

bool OwnIs(const KvCache& cache, size_t seq) {
  et::Direct direct;
  const size_t n = cache.length();
  for (size_t t = 0; t < kTensors; ++t) {
    const auto* past = static_cast<const float*>(cache.past(t));
    for (size_t h = 0; h < kHeads; ++h)
      for (size_t p = 0; p < n; ++p)
        for (size_t d = 0; d < kDim; ++d)
          if (past[(h * n + p) * kDim + d] != Value(seq, t, h, p, d)) return false;
  }
  return true;
}

void JoinAndStep(Padding padding) {
  BatchKv b(kTensors, kHeads, kDim * sizeof(float), *et::kv_memory, padding);
  KvCache a = Own(1, 5, 20), c = Own(2, 2, 20);
  std::vector<BatchKv::Source> src(2);
  src[0].cache = &a;
  src[1].cache = &c;
  b.Relayout(src, 20);
  CHECK_EQ(b.rows(), size_t{2});
  CHECK_EQ(b.pastLength(), size_t{5});
  CHECK_EQ(b.rowLength(1), size_t{2});
  CHECK(RowIs(b, 0, 1, true));
  CHECK(RowIs(b, 1, 2, true));  // three zeroed holes, in front (left) or behind (right)
  Step(b, {1, 2});
  Step(b, {1, 2});
  CHECK_EQ(b.pastLength(), size_t{7});
  CHECK_EQ(b.rowLength(0), size_t{7});
  CHECK_EQ(b.rowLength(1), size_t{4});
  CHECK(RowIs(b, 0, 1));
  CHECK(RowIs(b, 1, 2));
}

void LeaveExtractAndCompact(Padding padding) {
  BatchKv b(kTensors, kHeads, kDim * sizeof(float), *et::kv_memory, padding);
  KvCache a = Own(1, 6, 30), c = Own(2, 1, 30), e = Own(3, 3, 30);
  std::vector<BatchKv::Source> src(3);
  src[0].cache = &a;
  src[1].cache = &c;
  src[2].cache = &e;
  b.Relayout(src, 30);
  Step(b, {1, 2, 3});
  // Row 0 (the longest) leaves but lives on (parked): extracted into its own cache, unchanged.
  KvCache out(Spec(), 30, *et::kv_memory);
  b.ExtractRow(0, out);
  CHECK_EQ(out.length(), size_t{7});
  CHECK(OwnIs(out, 1));
  std::vector<BatchKv::Source> next(2);
  next[0].oldRow = 2;  // order may change too
  next[1].oldRow = 1;
  b.Relayout(next, 30);
  CHECK_EQ(b.pastLength(), size_t{4});  // compacted to the longest remaining row
  CHECK_EQ(b.rowLength(0), size_t{4});
  CHECK_EQ(b.rowLength(1), size_t{2});
  CHECK(RowIs(b, 0, 3, true));
  CHECK(RowIs(b, 1, 2, true));
  // It comes back.
  std::vector<BatchKv::Source> back(3);
  back[0].oldRow = 0;
  back[1].oldRow = 1;
  back[2].cache = &out;
  b.Relayout(back, 30);
  CHECK_EQ(b.pastLength(), size_t{7});  // P grows to the returning row
  CHECK(RowIs(b, 0, 3, true));
  CHECK(RowIs(b, 1, 2, true));
  CHECK(RowIs(b, 2, 1, true));
  Step(b, {3, 2, 1});
  CHECK(RowIs(b, 2, 1));
  b.Relayout({}, 0);
  CHECK_EQ(b.rows(), size_t{0});
  CHECK_EQ(b.bytes(), size_t{0});
}

void AdoptThenJoin(Padding padding) {
  BatchKv b(kTensors, kHeads, kDim * sizeof(float), *et::kv_memory, padding);
  KvCache a = Own(1, 4, 12);
  const void* own_past = a.past(0);
  b.Adopt(a);
  CHECK_EQ(a.length(), size_t{0});
  CHECK(b.past(0) == own_past);  // the same buffer: nothing was copied
  CHECK_EQ(b.rows(), size_t{1});
  CHECK_EQ(b.pastLength(), size_t{4});
  CHECK(RowIs(b, 0, 1));
  Step(b, {1});
  Step(b, {1});
  CHECK(RowIs(b, 0, 1));
  // Another row joins: the adopted buffers are the source of a regular relayout.
  KvCache c = Own(2, 2, 12);
  std::vector<BatchKv::Source> src(2);
  src[0].oldRow = 0;
  src[1].cache = &c;
  b.Relayout(src, 12);
  CHECK_EQ(b.pastLength(), size_t{6});
  CHECK(RowIs(b, 0, 1, true));
  CHECK(RowIs(b, 1, 2, true));
  Step(b, {1, 2});
  CHECK(RowIs(b, 0, 1));
  CHECK(RowIs(b, 1, 2));
  // Adopt again over a live layout, then a relayout that fits the adopted buffers' other half.
  KvCache e = Own(3, 3, 12);
  b.Adopt(e);
  CHECK_EQ(b.rows(), size_t{1});
  CHECK(RowIs(b, 0, 3));
  Step(b, {3});
  std::vector<BatchKv::Source> same(1);
  same[0].oldRow = 0;
  b.Relayout(same, 12);  // 12 positions fit the adopted 12-position halves: written into the other half
  CHECK(RowIs(b, 0, 3, true));
  Step(b, {3});
  CHECK(RowIs(b, 0, 3));
  KvCache out(Spec(), 12, *et::kv_memory);
  b.ExtractRow(0, out);
  CHECK_EQ(out.length(), size_t{5});
  CHECK(OwnIs(out, 3));
}

}  // namespace

TEST(rows_join_left_padded_and_step_together) { JoinAndStep(Padding::kLeft); }
TEST(rows_join_right_padded_and_step_together) { JoinAndStep(Padding::kRight); }
TEST(left_leave_extract_and_compact) { LeaveExtractAndCompact(Padding::kLeft); }
TEST(right_leave_extract_and_compact) { LeaveExtractAndCompact(Padding::kRight); }
TEST(left_a_lone_row_is_adopted_without_a_copy_and_others_join_later) { AdoptThenJoin(Padding::kLeft); }
TEST(right_a_lone_row_is_adopted_without_a_copy_and_others_join_later) { AdoptThenJoin(Padding::kRight); }

int main() { return et::RunOverBothMemories(); }
