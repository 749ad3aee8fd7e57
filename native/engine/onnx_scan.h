// ONNX op scan — which operators (domain, op_type) an .onnx file's graph uses, read from the file itself, because
// ONNX Runtime's API cannot list a session's nodes. CausalLm::Load uses it to give graphs with com.microsoft
// GroupQueryAttention (which takes lengths, not the mask, and assumes right padding) a right-padded running batch;
// a file the scan cannot read to the end runs one sequence per step.
//
// What is read: ModelProto.graph (field 7) → GraphProto.node (field 1) → NodeProto.op_type (4) and domain (7); also
// the subgraphs in node attributes (AttributeProto.g 6 / graphs 11: If, Loop, Scan bodies) and the bodies of
// model-local functions (ModelProto.functions 25 → FunctionProto.node 7), so an op cannot hide in either.
// Everything else — initializers above all, which can fill a 2 GB file — is skipped by its length with a seek: the
// file is never read whole; the reader holds one 64 KiB window.
// Bounds: every length is checked against its enclosing message and the file size before it is used, so truncated
// or malformed input ends the scan with a status (never a crash, a huge allocation or a hang: each field read
// advances the position by at least one byte); subgraph nesting deeper than kMaxOnnxScanDepth, an op_type or domain
// longer than kMaxOnnxScanName bytes and protobuf groups (which ONNX never uses) are malformed.
// Plain C++ (no ORT), unit-tested in test/onnx_scan_test.cc. Thread-safe (no shared state); blocking file I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tokmeter::engine {

inline constexpr int kMaxOnnxScanDepth = 16;
inline constexpr size_t kMaxOnnxScanName = 1024;

enum class OnnxScanStatus {
  kOk,         // the whole ModelProto was walked; `ops` is complete
  kIoError,    // the file could not be opened or read
  kTruncated,  // a field runs past the end of its message or of the file
  kMalformed,  // not a protobuf ONNX could have written (bad varint, wire type, group, depth, name length)
};

struct OnnxOp {
  std::string domain;  // as written: "" and "ai.onnx" both mean the default domain
  std::string opType;
  bool operator==(const OnnxOp&) const = default;
};

struct OnnxOpScan {
  OnnxScanStatus status = OnnxScanStatus::kOk;
  std::string error;        // why the scan stopped (with the byte offset); empty when ok()
  std::vector<OnnxOp> ops;  // distinct (domain, op_type) pairs, first-seen order; partial unless ok()
  uint64_t nodes = 0;       // nodes seen (all graphs and functions)

  bool ok() const noexcept { return status == OnnxScanStatus::kOk; }
  // Whether a node with this op_type in this domain was seen ("" matches "ai.onnx" and the reverse).
  bool Has(std::string_view domain, std::string_view opType) const noexcept;
};

// Reads size bytes at offset into dst; returns the number read (less only at the end of the data or on an error).
class OnnxByteSource {
 public:
  virtual ~OnnxByteSource() = default;
  virtual uint64_t size() const = 0;
  virtual size_t ReadAt(uint64_t offset, void* dst, size_t size) = 0;
};

OnnxOpScan ScanOnnxOps(OnnxByteSource& source);
OnnxOpScan ScanOnnxOps(std::string_view bytes);  // an in-memory model (tests)
OnnxOpScan ScanOnnxOpsFile(const std::string& path);

const char* OnnxScanStatusName(OnnxScanStatus status) noexcept;

}  // namespace tokmeter::engine
