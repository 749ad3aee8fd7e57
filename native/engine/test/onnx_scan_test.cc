// ONNX op scan (onnx_scan.h): op types and domains from main graphs, attribute subgraphs and model-local
// functions, with every other field (initializers first) skipped; every truncation, classic malformations and random
// corruption of a model end with a status, never a crash or a hang; files, a missing file, and a sparse file over
// 2 GiB whose op sits after a 3 GiB initializer (read by seeking, not by reading the file).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/onnx_scan.h"
#include "test/test_util.h"

using namespace tokmeter::engine;
namespace fs = std::filesystem;

namespace {

// A tiny protobuf writer: enough to build ModelProto bytes by hand.
std::string Varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
  return s;
}
std::string Tag(uint64_t field, uint32_t wire) { return Varint((field << 3) | wire); }
std::string Bytes(uint64_t field, const std::string& payload) {
  return Tag(field, 2) + Varint(payload.size()) + payload;
}
std::string Int(uint64_t field, uint64_t v) { return Tag(field, 0) + Varint(v); }
std::string Fixed32(uint64_t field) { return Tag(field, 5) + std::string("\x01\x02\x03\x04", 4); }
std::string Fixed64(uint64_t field) { return Tag(field, 1) + std::string(8, '\x7f'); }

// A model of `size` bytes made of pieces at given offsets (zeros between them, like a sparse file's holes), which
// counts the bytes the scanner asks for: the proof that it skips a field by seeking instead of reading it.
class CountingSource final : public OnnxByteSource {
 public:
  explicit CountingSource(uint64_t size) : size_(size) {}
  void Put(uint64_t at, std::string bytes) { pieces_.emplace_back(at, std::move(bytes)); }
  uint64_t size() const override { return size_; }
  size_t ReadAt(uint64_t offset, void* dst, size_t size) override {
    if (offset >= size_) return 0;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(size, size_ - offset));
    auto* out = static_cast<char*>(dst);
    std::fill(out, out + n, '\0');
    for (const auto& [at, bytes] : pieces_) {
      const uint64_t from = std::max(at, offset), to = std::min(at + bytes.size(), offset + n);
      if (from < to) std::memcpy(out + (from - offset), bytes.data() + (from - at), static_cast<size_t>(to - from));
    }
    read += n;
    return n;
  }
  uint64_t read = 0;  // bytes handed to the scanner

 private:
  uint64_t size_;
  std::vector<std::pair<uint64_t, std::string>> pieces_;
};

// NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, doc_string 6, domain 7.
std::string NodeBody(const std::string& op, const std::string& domain = "", const std::string& attributes = "") {
  std::string n = Bytes(1, "x") + Bytes(1, "y") + Bytes(2, "z") + Bytes(3, op + "_0") + Bytes(4, op);
  n += attributes;
  if (!domain.empty()) n += Bytes(7, domain);
  return n + Bytes(6, "doc");
}
// GraphProto.node (field 1) holding that node.
std::string Node(const std::string& op, const std::string& domain = "", const std::string& attributes = "") {
  return Bytes(1, NodeBody(op, domain, attributes));
}
// AttributeProto: name 1, f 2 (fixed32), i 3, s 4, t 5, g 6, type 20, graphs 11.
std::string IntAttribute(const std::string& name, uint64_t v) {
  return Bytes(5, Bytes(1, name) + Int(3, v) + Int(20, 2));
}
std::string GraphAttribute(const std::string& name, const std::string& graph) {
  return Bytes(5, Bytes(1, name) + Fixed32(2) + Bytes(6, graph) + Int(20, 5));
}
// TensorProto as an initializer: dims 1, data_type 2, name 8, raw_data 9.
std::string Initializer(size_t bytes) {
  return Bytes(5, Int(1, bytes / 4) + Int(2, 1) + Bytes(8, "w") + Bytes(9, std::string(bytes, '\x42')));
}
// GraphProto: node 1, name 2, initializer 5, doc_string 10, input 11, output 12.
std::string Graph(const std::string& nodes, size_t initializerBytes = 0) {
  std::string g = Bytes(2, "g");
  if (initializerBytes > 0) g += Initializer(initializerBytes);
  g += nodes + Bytes(11, Bytes(1, "x")) + Bytes(12, Bytes(1, "y")) + Bytes(10, "graph doc");
  return g;
}
// ModelProto: ir_version 1, producer_name 2, graph 7, opset_import 8, functions 25, metadata 14.
std::string Model(const std::string& graph, const std::string& extra = "") {
  return Int(1, 8) + Bytes(2, "tokmeter-test") + Bytes(8, Int(2, 17)) +
         Bytes(8, Bytes(1, "com.microsoft") + Int(2, 1)) + Fixed64(99) + Bytes(7, graph) + extra +
         Bytes(14, Bytes(1, "k") + Bytes(2, "v"));
}

// A model like the generated GQA one: default ops, GroupQueryAttention, more default ops, a 200 KiB initializer.
std::string GqaModel() {
  return Model(Graph(
      Node("MatMul") + Node("Transpose") +
          Node("GroupQueryAttention", "com.microsoft", IntAttribute("num_heads", 4) + IntAttribute("kv_num_heads", 2)) +
          Node("MatMul", "ai.onnx") + Node("Add"),
      200 * 1024));
}

fs::path TempPath(const std::string& name) {
  return fs::temp_directory_path() / ("tokmeter-onnx-scan-" + std::to_string(::getpid()) + "-" + name);
}

}  // namespace

TEST(lists_distinct_ops_of_the_main_graph_skipping_initializers) {
  const OnnxOpScan scan = ScanOnnxOps(GqaModel());
  CHECK(scan.ok());
  CHECK_EQ(scan.error, std::string());
  CHECK_EQ(scan.nodes, uint64_t{5});
  CHECK_EQ(scan.ops.size(), size_t{5});  // MatMul, Transpose, GroupQueryAttention, ai.onnx MatMul, Add
  CHECK(scan.Has("com.microsoft", "GroupQueryAttention"));
  CHECK(!scan.Has("", "GroupQueryAttention"));
  CHECK(scan.Has("", "MatMul"));
  CHECK(scan.Has("ai.onnx", "Add"));
  CHECK(!scan.Has("", "Softmax"));
  CHECK_EQ(scan.ops[0], (OnnxOp{"", "MatMul"}));
  CHECK_EQ(scan.ops[2], (OnnxOp{"com.microsoft", "GroupQueryAttention"}));
}

TEST(a_standard_graph_has_no_group_query_attention) {
  const OnnxOpScan scan = ScanOnnxOps(Model(Graph(Node("MatMul") + Node("Softmax") + Node("Where"), 4096)));
  CHECK(scan.ok());
  CHECK(!scan.Has("com.microsoft", "GroupQueryAttention"));
  CHECK_EQ(scan.nodes, uint64_t{3});
}

TEST(finds_ops_in_attribute_subgraphs_and_functions) {
  const std::string then_branch = Graph(Node("GroupQueryAttention", "com.microsoft"));
  const std::string loop_body = Graph(Node("Softmax"));
  // AttributeProto.graphs (11) holds a list of graphs.
  const std::string graphs_attribute =
      Bytes(5, Bytes(1, "bodies") + Bytes(11, loop_body) + Bytes(11, Graph(Node("Erf"))));
  const std::string model =
      Model(Graph(Node("If", "", GraphAttribute("then_branch", then_branch)) + Node("Custom", "", graphs_attribute)));
  const OnnxOpScan scan = ScanOnnxOps(model);
  CHECK(scan.ok());
  CHECK(scan.Has("com.microsoft", "GroupQueryAttention"));
  CHECK(scan.Has("", "Softmax"));
  CHECK(scan.Has("", "Erf"));
  CHECK_EQ(scan.nodes, uint64_t{5});
  // FunctionProto: name 1, input 4, output 5, node 7, domain 10.
  const std::string function = Bytes(1, "attn") + Bytes(4, "x") + Bytes(5, "y") +
                               Bytes(7, NodeBody("GroupQueryAttention", "com.microsoft")) + Bytes(10, "local");
  const OnnxOpScan with_function = ScanOnnxOps(Model(Graph(Node("attn", "local")), Bytes(25, function)));
  CHECK(with_function.ok());
  CHECK(with_function.Has("local", "attn"));
  CHECK(with_function.Has("com.microsoft", "GroupQueryAttention"));
}

TEST(empty_and_graphless_models_are_ok_and_empty) {
  CHECK(ScanOnnxOps(std::string()).ok());
  const OnnxOpScan scan = ScanOnnxOps(Int(1, 8) + Bytes(2, "no graph"));
  CHECK(scan.ok());
  CHECK_EQ(scan.nodes, uint64_t{0});
}

TEST(every_truncation_ends_with_a_status_and_never_invents_ops) {
  const std::string full = GqaModel();
  const OnnxOpScan whole = ScanOnnxOps(full);
  const size_t graph_at = full.find(Bytes(2, "g")) - 4;  // inside the graph field's header or later
  int truncated = 0;
  for (size_t n = 0; n < full.size(); n += (n < 400 || n > full.size() - 400) ? 1 : 997) {
    const OnnxOpScan scan = ScanOnnxOps(std::string_view(full).substr(0, n));
    for (const auto& op : scan.ops) CHECK(whole.Has(op.domain, op.opType));
    if (n > graph_at && n < full.size() - 8) {
      // Cut inside the graph: the graph field claims more bytes than there are.
      if (scan.status != OnnxScanStatus::kTruncated) {
        std::printf("  cut at %zu of %zu: status %s (%s)\n", n, full.size(), OnnxScanStatusName(scan.status),
                    scan.error.c_str());
      }
      CHECK(scan.status == OnnxScanStatus::kTruncated);
      CHECK(scan.error.find("at byte") != std::string::npos);
      ++truncated;
    }
  }
  CHECK(truncated > 300);
}

TEST(malformed_input_is_reported_not_crashed_on) {
  const auto status = [](const std::string& bytes) { return ScanOnnxOps(bytes).status; };
  // An 11-byte varint.
  CHECK(status(Tag(1, 0) + std::string(10, '\xff') + "\x01") == OnnxScanStatus::kMalformed);
  // A tenth varint byte above 1 (more than 64 bits).
  CHECK(status(Tag(1, 0) + std::string(9, '\xff') + "\x02") == OnnxScanStatus::kMalformed);
  // Wire types 6 and 7 do not exist; 3 and 4 are groups.
  CHECK(status(Tag(1, 6)) == OnnxScanStatus::kMalformed);
  CHECK(status(Tag(1, 7)) == OnnxScanStatus::kMalformed);
  CHECK(status(Tag(7, 3) + Tag(7, 4)) == OnnxScanStatus::kMalformed);
  // Field number 0.
  CHECK(status(Tag(0, 0) + Varint(1)) == OnnxScanStatus::kMalformed);
  // A length near 2^64 (must not overflow pos + len) and one past the end.
  CHECK(status(Tag(7, 2) + Varint(~uint64_t{0} - 3) + "abc") == OnnxScanStatus::kTruncated);
  CHECK(status(Tag(9, 2) + Varint(100) + "abc") == OnnxScanStatus::kTruncated);
  // A node's length runs past its graph, though the graph fits in the file.
  const std::string node = Bytes(4, "MatMul");
  CHECK(status(Bytes(7, Tag(1, 2) + Varint(node.size() + 5) + node) + std::string(10, '\0')) ==
        OnnxScanStatus::kTruncated);
  // Fixed fields past the end.
  CHECK(status(Tag(3, 1) + "1234") == OnnxScanStatus::kTruncated);
  CHECK(status(Bytes(7, Bytes(1, Tag(9, 5) + "12"))) == OnnxScanStatus::kTruncated);
  // An op_type longer than kMaxOnnxScanName, and one exactly at the limit.
  CHECK(status(Model(Graph(Node(std::string(kMaxOnnxScanName + 1, 'A'))))) == OnnxScanStatus::kMalformed);
  CHECK(status(Model(Graph(Node(std::string(kMaxOnnxScanName - 2, 'A'))))) == OnnxScanStatus::kOk);
  // Subgraphs nested deeper than kMaxOnnxScanDepth (each If holds the next graph), and exactly at the limit.
  const auto nested = [](int depth) {
    std::string g = Graph(Node("Relu"));
    for (int i = 1; i < depth; ++i) g = Graph(Node("If", "", GraphAttribute("then_branch", g)));
    return Model(g);
  };
  CHECK(status(nested(kMaxOnnxScanDepth)) == OnnxScanStatus::kOk);
  const OnnxOpScan deep = ScanOnnxOps(nested(kMaxOnnxScanDepth + 1));
  CHECK(deep.status == OnnxScanStatus::kMalformed);
  CHECK(deep.error.find("nested deeper") != std::string::npos);
}

TEST(random_corruption_never_crashes_or_hangs) {
  const std::string full = Model(Graph(Node("MatMul") + Node("If", "", GraphAttribute("b", Graph(Node("Relu")))) +
                                           Node("GroupQueryAttention", "com.microsoft"),
                                       64));
  std::mt19937_64 rng(7);
  // A hang would stop this test at its ctest TIMEOUT (CMakeLists.txt); no wall-clock bound here.
  int ok = 0, stopped = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = full;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
    const OnnxOpScan scan = ScanOnnxOps(bytes);
    (scan.ok() ? ok : stopped)++;
    if (!scan.ok()) CHECK(!scan.error.empty());
  }
  CHECK(ok > 0);
  CHECK(stopped > 0);
}

TEST(reads_files_and_reports_a_missing_one) {
  const fs::path path = TempPath("model.onnx");
  // An initializer larger than the reader's 64 KiB window, so the ops after it are reached by seeking.
  const std::string bytes = Model(Graph(Node("MatMul") + Node("GroupQueryAttention", "com.microsoft"), 1 << 20));
  std::ofstream(path, std::ios::binary) << bytes;
  const OnnxOpScan scan = ScanOnnxOpsFile(path.string());
  CHECK(scan.ok());
  CHECK(scan.Has("com.microsoft", "GroupQueryAttention"));
  CHECK(ScanOnnxOps(bytes).ops == scan.ops);
  fs::remove(path);
  const OnnxOpScan missing = ScanOnnxOpsFile(path.string());
  CHECK(missing.status == OnnxScanStatus::kIoError);
  CHECK(missing.error.find(path.filename().string()) != std::string::npos);
  CHECK(ScanOnnxOpsFile(fs::temp_directory_path().string()).status != OnnxScanStatus::kOk);  // a directory
}

TEST(seeks_past_a_3_gib_initializer_in_a_sparse_file) {
  // graph { initializer { raw_data: 3 GiB } node { GroupQueryAttention } }: the 3 GiB are a hole in a sparse file,
  // so the test costs no disk; the file path's offsets past 2 GiB work, and a counting source shows nothing of the
  // 3 GiB is read.
  const uint64_t huge = uint64_t{3} << 30;
  const std::string node = Node("GroupQueryAttention", "com.microsoft");
  const std::string tensor_head = Bytes(8, "w") + Tag(9, 2) + Varint(huge);
  const uint64_t tensor_size = tensor_head.size() + huge;
  const std::string init_head = Tag(5, 2) + Varint(tensor_size);
  const uint64_t graph_size = init_head.size() + tensor_size + node.size();
  const std::string head = Int(1, 8) + Tag(7, 2) + Varint(graph_size) + init_head + tensor_head;
  const fs::path path = TempPath("huge.onnx");
  {
    std::ofstream out(path, std::ios::binary);
    out << head;
    out.seekp(static_cast<std::streamoff>(head.size() + huge));
    out << node;
  }
  CHECK_EQ(fs::file_size(path), head.size() + huge + node.size());
  const OnnxOpScan scan = ScanOnnxOpsFile(path.string());
  CHECK(scan.ok());
  CHECK(scan.Has("com.microsoft", "GroupQueryAttention"));
  // The same model from a source that counts what is read: the 3 GiB are skipped, not read.
  CountingSource counted(head.size() + huge + node.size());
  counted.Put(0, head);
  counted.Put(head.size() + huge, node);
  const OnnxOpScan again = ScanOnnxOps(counted);
  CHECK(again.ok());
  CHECK(again.ops == scan.ops);
  CHECK(counted.read < (uint64_t{1} << 20));
  // The same file cut 1 byte short: the graph runs past the end of the file.
  fs::resize_file(path, head.size() + huge + node.size() - 1);
  const OnnxOpScan cut = ScanOnnxOpsFile(path.string());
  CHECK(cut.status == OnnxScanStatus::kTruncated);
  fs::remove(path);
}

TEST_MAIN()
