#include "engine/onnx_scan.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

namespace tokmeter::engine {
namespace {

// Protobuf wire types.
constexpr uint32_t kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5;

// Field numbers (onnx/onnx.proto3).
constexpr uint64_t kModelGraph = 7, kModelFunctions = 25;
constexpr uint64_t kGraphNode = 1;
constexpr uint64_t kNodeOpType = 4, kNodeAttribute = 5, kNodeDomain = 7;
constexpr uint64_t kAttributeGraph = 6, kAttributeGraphs = 11;
constexpr uint64_t kFunctionNode = 7;

struct Stop {
  OnnxScanStatus status;
  std::string message;
};

// Positioned reads through one window; every read is bounded by `end` (the enclosing message's end).
class Reader {
 public:
  explicit Reader(OnnxByteSource& source) : source_(source), size_(source.size()) {}

  uint64_t size() const noexcept { return size_; }

  uint8_t Byte(uint64_t pos, uint64_t end) {
    if (pos >= end) throw Stop{OnnxScanStatus::kTruncated, At(pos, "field runs past the end of its message")};
    if (pos < window_start_ || pos >= window_start_ + window_len_) Fill(pos);
    return window_[pos - window_start_];
  }

  uint64_t Varint(uint64_t& pos, uint64_t end) {
    uint64_t value = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      const uint8_t b = Byte(pos, end);
      ++pos;
      if (shift == 63 && b > 1) break;  // a tenth byte may only carry the top bit
      value |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return value;
    }
    throw Stop{OnnxScanStatus::kMalformed, At(pos, "varint longer than 64 bits")};
  }

  std::string String(uint64_t pos, uint64_t len) {
    if (len > kMaxOnnxScanName) {
      throw Stop{OnnxScanStatus::kMalformed,
                 At(pos, "op_type or domain longer than " + std::to_string(kMaxOnnxScanName) + " bytes")};
    }
    std::string s(static_cast<size_t>(len), '\0');
    for (uint64_t i = 0; i < len; ++i) s[static_cast<size_t>(i)] = static_cast<char>(Byte(pos + i, pos + len));
    return s;
  }

  static std::string At(uint64_t pos, const std::string& what) { return what + " at byte " + std::to_string(pos); }

 private:
  void Fill(uint64_t pos) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kWindow, size_ - pos));
    const size_t got = source_.ReadAt(pos, window_, want);
    if (got == 0) throw Stop{OnnxScanStatus::kIoError, At(pos, "read failed")};
    window_start_ = pos;
    window_len_ = got;
  }

  static constexpr size_t kWindow = 64 * 1024;
  OnnxByteSource& source_;
  uint64_t size_;
  uint8_t window_[kWindow];
  uint64_t window_start_ = 0;
  size_t window_len_ = 0;
};

struct Field {
  uint64_t number;
  uint32_t wire;
  uint64_t start;  // length-delimited: the payload's first byte
  uint64_t end;    // length-delimited: one past the payload
};

class Scanner {
 public:
  explicit Scanner(OnnxByteSource& source) : reader_(source) {}

  OnnxOpScan Run() {
    try {
      ForEachField(0, reader_.size(), [&](const Field& f) {
        if (f.wire != kLengthDelimited) return;
        if (f.number == kModelGraph) Graph(f.start, f.end, 1);
        if (f.number == kModelFunctions) Nodes(f.start, f.end, kFunctionNode, 1);
      });
    } catch (const Stop& stop) {
      result_.status = stop.status;
      result_.error = stop.message;
    }
    return std::move(result_);
  }

 private:
  // Calls fn for each field of the message in [pos, end); skips every payload it is not handed.
  template <typename Fn>
  void ForEachField(uint64_t pos, uint64_t end, Fn&& fn) {
    while (pos < end) {
      const uint64_t at = pos;
      const uint64_t tag = reader_.Varint(pos, end);
      Field f{tag >> 3, static_cast<uint32_t>(tag & 7), 0, 0};
      if (f.number == 0) throw Stop{OnnxScanStatus::kMalformed, Reader::At(at, "field number 0")};
      switch (f.wire) {
        case kVarint: reader_.Varint(pos, end); break;
        case kFixed64:
        case kFixed32: {
          const uint64_t n = f.wire == kFixed64 ? 8 : 4;
          if (end - pos < n) throw Stop{OnnxScanStatus::kTruncated, Reader::At(pos, "fixed field past its end")};
          pos += n;
          break;
        }
        case kLengthDelimited: {
          const uint64_t len = reader_.Varint(pos, end);
          if (len > end - pos) {
            throw Stop{OnnxScanStatus::kTruncated,
                       Reader::At(pos, "a " + std::to_string(len) + "-byte field runs past the end of its message")};
          }
          f.start = pos;
          f.end = pos + len;
          pos = f.end;
          break;
        }
        case kStartGroup:
        case kEndGroup: throw Stop{OnnxScanStatus::kMalformed, Reader::At(at, "protobuf group (not used by ONNX)")};
        default: throw Stop{OnnxScanStatus::kMalformed, Reader::At(at, "wire type " + std::to_string(f.wire))};
      }
      fn(f);
    }
  }

  void Graph(uint64_t start, uint64_t end, int depth) { Nodes(start, end, kGraphNode, depth); }

  // The nodes (field `nodeField`) of a GraphProto or FunctionProto.
  void Nodes(uint64_t start, uint64_t end, uint64_t nodeField, int depth) {
    if (depth > kMaxOnnxScanDepth) {
      throw Stop{OnnxScanStatus::kMalformed,
                 Reader::At(start, "graphs nested deeper than " + std::to_string(kMaxOnnxScanDepth))};
    }
    ForEachField(start, end, [&](const Field& f) {
      if (f.number == nodeField && f.wire == kLengthDelimited) Node(f.start, f.end, depth);
    });
  }

  void Node(uint64_t start, uint64_t end, int depth) {
    OnnxOp op;
    ForEachField(start, end, [&](const Field& f) {
      if (f.wire != kLengthDelimited) return;
      if (f.number == kNodeOpType) op.opType = reader_.String(f.start, f.end - f.start);
      if (f.number == kNodeDomain) op.domain = reader_.String(f.start, f.end - f.start);
      if (f.number == kNodeAttribute) {
        ForEachField(f.start, f.end, [&](const Field& a) {
          if (a.wire == kLengthDelimited && (a.number == kAttributeGraph || a.number == kAttributeGraphs))
            Graph(a.start, a.end, depth + 1);
        });
      }
    });
    ++result_.nodes;
    if (std::find(result_.ops.begin(), result_.ops.end(), op) == result_.ops.end()) result_.ops.push_back(op);
  }

  Reader reader_;
  OnnxOpScan result_;
};

class MemorySource final : public OnnxByteSource {
 public:
  explicit MemorySource(std::string_view bytes) : bytes_(bytes) {}
  uint64_t size() const override { return bytes_.size(); }
  size_t ReadAt(uint64_t offset, void* dst, size_t size) override {
    if (offset >= bytes_.size()) return 0;
    const size_t n = std::min<size_t>(size, bytes_.size() - static_cast<size_t>(offset));
    std::memcpy(dst, bytes_.data() + offset, n);
    return n;
  }

 private:
  std::string_view bytes_;
};

class FileSource final : public OnnxByteSource {
 public:
  FileSource(std::FILE* file, uint64_t size) : file_(file), size_(size) {}  // does not own file
  uint64_t size() const override { return size_; }
  size_t ReadAt(uint64_t offset, void* dst, size_t size) override {
    if (fseeko(file_, static_cast<off_t>(offset), SEEK_SET) != 0) return 0;
    return std::fread(dst, 1, size, file_);
  }

 private:
  std::FILE* file_;
  uint64_t size_;
};

bool DefaultDomain(std::string_view d) { return d.empty() || d == "ai.onnx"; }

}  // namespace

bool OnnxOpScan::Has(std::string_view domain, std::string_view opType) const noexcept {
  for (const auto& op : ops) {
    if (op.opType != opType) continue;
    if (op.domain == domain || (DefaultDomain(op.domain) && DefaultDomain(domain))) return true;
  }
  return false;
}

OnnxOpScan ScanOnnxOps(OnnxByteSource& source) {
  // The reader's window is 64 KiB: keep it off the caller's stack.
  auto scanner = std::make_unique<Scanner>(source);
  return scanner->Run();
}

OnnxOpScan ScanOnnxOps(std::string_view bytes) {
  MemorySource source(bytes);
  return ScanOnnxOps(source);
}

OnnxOpScan ScanOnnxOpsFile(const std::string& path) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  const off_t size = file && fseeko(file.get(), 0, SEEK_END) == 0 ? ftello(file.get()) : -1;
  if (size < 0) {
    OnnxOpScan failed;
    failed.status = OnnxScanStatus::kIoError;
    failed.error = (file ? "cannot size " : "cannot open ") + path;
    return failed;
  }
  FileSource source(file.get(), static_cast<uint64_t>(size));
  return ScanOnnxOps(source);
}

const char* OnnxScanStatusName(OnnxScanStatus status) noexcept {
  switch (status) {
    case OnnxScanStatus::kOk: return "ok";
    case OnnxScanStatus::kIoError: return "io-error";
    case OnnxScanStatus::kTruncated: return "truncated";
    case OnnxScanStatus::kMalformed: return "malformed";
  }
  return "unknown";
}

}  // namespace tokmeter::engine
