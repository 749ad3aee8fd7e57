#include "js_tokenizer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "js_addon_data.h"
#include "js_async.h"
#include "js_convert.h"
#include "js_errors.h"
#include "tokenizer/big_alloc.h"
#include "tokenizer/parallel.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tokmeter::addon {
namespace {

namespace tk = tokmeter::tokenizer;
constexpr const char* kTokClass = "NativeTokenizer";
constexpr const char* kStreamClass = "NativeDecodeStream";

// ---- strings ------------------------------------------------------------------------------------------------

// An uninitialised buffer of T from BigAlloc (2 MiB pages from 1 MB on), for text copied out of V8 on the JS thread
// (its pages are first touched there, and a zero-filled std::string / std::u16string in 4 KiB pages made that touch
// cost more than the copy, see TextArena) and for whole files (BigBlock). Reserve() does not keep the contents:
// callers reserve before writing.
template <class T>
class RawBuffer {
 public:
  RawBuffer() = default;
  RawBuffer(const RawBuffer&) = delete;
  RawBuffer& operator=(const RawBuffer&) = delete;
  ~RawBuffer() { Free(); }
  T* data() const { return data_; }
  size_t capacity() const { return capacity_; }
  void Reserve(size_t n) {
    if (capacity_ >= n) return;
    Free();
    data_ = tk::BigAlloc<T>().allocate(n);
    capacity_ = n;
  }
  void Free() {
    if (data_ != nullptr) tk::BigAlloc<T>().deallocate(data_, capacity_);
    data_ = nullptr;
    capacity_ = 0;
  }
  // Hands the buffer over: the caller frees it with BigAlloc<T>().deallocate(data, the capacity before the call).
  T* release() {
    T* d = data_;
    data_ = nullptr;
    capacity_ = 0;
    return d;
  }

 private:
  T* data_ = nullptr;
  size_t capacity_ = 0;
};

// Copies a JS string as UTF-8 into `buf` in one pass (lone surrogates become U+FFFD, as everywhere in Node). The
// bytes are returned as a view of `buf`.
std::string_view Utf8Into(Napi::Env env, napi_value v, RawBuffer<char>& buf) {
  size_t len16 = 0;
  napi_status st = napi_get_value_string_utf16(env, v, nullptr, 0, &len16);
  if (st != napi_ok) ThrowTypeError(env, "expected a string");
  size_t need = len16 * 3 + 1;
  if (len16 > (1u << 16)) {
    // Long strings: measure first rather than reserving 3x the length.
    size_t exact = 0;
    napi_get_value_string_utf8(env, v, nullptr, 0, &exact);
    need = exact + 1;
  }
  if (buf.capacity() < need) buf.Reserve(std::max(need, std::min<size_t>(buf.capacity() * 2, 1u << 20)));
  size_t written = 0;
  napi_get_value_string_utf8(env, v, buf.data(), need, &written);
  return {buf.data(), written};
}

// The per-thread call buffer keeps its capacity between calls, except after a very large input.
void ReleaseIfHuge(RawBuffer<char>& buf) {
  if (buf.capacity() > (16u << 20)) buf.Free();
}

RawBuffer<char>& CallBuffer() {
  thread_local RawBuffer<char> buf;
  return buf;
}

// ---- classes --------------------------------------------------------------------------------------------------

class JsTokenizer : public Napi::ObjectWrap<JsTokenizer> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit JsTokenizer(const Napi::CallbackInfo& info);
  ~JsTokenizer() override { tok_.reset(); }

  const std::shared_ptr<const tk::Tokenizer>& Get(Napi::Env env) const {
    if (!tok_) throw MakeJsError(env, "ERR_DISPOSED", "the tokenizer was disposed");
    return tok_;
  }

 private:
  static Napi::Value Create(const Napi::CallbackInfo& info);
  Napi::Value Encode(const Napi::CallbackInfo& info);
  Napi::Value Count(const Napi::CallbackInfo& info);
  Napi::Value EncodeIntoArray(const Napi::CallbackInfo& info);
  Napi::Value CountBatch(const Napi::CallbackInfo& info);
  Napi::Value EncodeBatch(const Napi::CallbackInfo& info);
  Napi::Value Decode(const Napi::CallbackInfo& info);
  Napi::Value TokenToId(const Napi::CallbackInfo& info);
  Napi::Value IdToToken(const Napi::CallbackInfo& info);
  Napi::Value IsSpecial(const Napi::CallbackInfo& info);
  Napi::Value VocabSize(const Napi::CallbackInfo& info);
  Napi::Value NewDecodeStream(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<const tk::Tokenizer> tok_;
};

class JsDecodeStream : public Napi::ObjectWrap<JsDecodeStream> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit JsDecodeStream(const Napi::CallbackInfo& info);

 private:
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value Flush(const Napi::CallbackInfo& info);
  std::unique_ptr<tk::DecodeStream> stream_;
};

bool BoolArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsBoolean())
    ThrowTypeError(info.Env(), std::string("expected a boolean for ") + what);
  return info[i].As<Napi::Boolean>().Value();
}

Napi::Uint32Array ToJsIds(Napi::Env env, const std::vector<uint32_t>& ids) {
  auto arr = Napi::Uint32Array::New(env, ids.size());
  if (!ids.empty()) std::memcpy(arr.Data(), ids.data(), ids.size() * sizeof(uint32_t));
  return arr;
}

// A batch's texts as the strings' UTF-16 code units, back to back in one buffer: text i is units [ends[i-1],
// ends[i]). Copying units out of V8 is a memcpy (or a widening copy for one-byte strings), ~20x faster than V8's
// UTF-8 writer (646 kB of corpus text: 0.03 ms against 0.53 ms), so the JS thread hands the texts over at once and
// the threads that count them transcode them to UTF-8 (utf8::FromUtf16), in parallel. Buffers are reused from batch
// to batch (TakeArena / GiveArena): a fresh buffer per text and per call put every batch's bytes in newly faulted
// pages. A new or grown buffer is neither zero-filled nor made of 4 KiB pages (RawBuffer): its first touch is on
// the JS thread. The first batch of 64 texts of 180 kB (11.5 MB) blocked the loop for 64-68 ms
// with a zero-filled std::u16string, and for 3-5 ms in most first calls with this buffer (fresh processes, 2-core
// VM; a call that meets memory the VM has never touched still pays its host's faults).
struct TextArena {
  RawBuffer<char16_t> units;  // the first `used` code units hold the texts
  size_t used = 0;
  std::vector<size_t> ends;
  size_t size() const { return ends.size(); }
  std::u16string_view operator[](size_t i) const {
    size_t b = i == 0 ? 0 : ends[i - 1];
    return std::u16string_view(units.data() + b, ends[i] - b);
  }
};

std::mutex& ArenaMutex() {
  static std::mutex mu;
  return mu;
}
std::vector<std::unique_ptr<TextArena>>& FreeArenas() {
  static auto* free = new std::vector<std::unique_ptr<TextArena>>();  // never destroyed: workers may outlive exit
  return *free;
}
std::unique_ptr<TextArena> TakeArena() {
  {
    std::lock_guard<std::mutex> lock(ArenaMutex());
    auto& free = FreeArenas();
    if (!free.empty()) {
      auto a = std::move(free.back());
      free.pop_back();
      return a;
    }
  }
  return std::make_unique<TextArena>();
}
// Keeps up to 4 buffers of up to 64 MB for the next batches; anything beyond is freed.
void GiveArena(std::unique_ptr<TextArena> a) {
  if (!a || a->units.capacity() > (32u << 20)) return;
  a->used = 0;
  a->ends.clear();
  std::lock_guard<std::mutex> lock(ArenaMutex());
  if (FreeArenas().size() < 4) FreeArenas().push_back(std::move(a));
}

unsigned ThreadsArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return std::max(1u, std::thread::hardware_concurrency());
  if (!info[i].IsNumber()) ThrowTypeError(info.Env(), "expected a positive integer for threads");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 256) || d != static_cast<double>(static_cast<int>(d)))
    ThrowTypeError(info.Env(), "expected an integer in [1, 256] for threads, got " + std::to_string(d));
  return static_cast<unsigned>(d);
}

// A whole file read into a BigAlloc block (2 MiB pages where the kernel has them). A 10 MB tokenizer.json read by
// fs.readFile lands in fresh 4 KiB pages: ~30-40 ms of first-touch faults on this machine, a quarter of loading the
// file. Worker thread only.
struct BigBlock {
  RawBuffer<uint8_t> bytes;
  size_t size = 0;
  std::string_view view() const { return {reinterpret_cast<const char*>(bytes.data()), size}; }
};

// Throws Error(ERR_INVALID_ARGUMENT, "<what> <path>: <strerror> (errno n)") when the file cannot be read.
void ReadWholeFile(const std::string& path, BigBlock& out) {
  auto fail = [&](const char* what, int e) {
    throw Error(codes::kInvalidArgument,
                std::string(what) + " " + path + ": " + std::strerror(e) + " (errno " + std::to_string(e) + ")");
  };
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open", errno);
  struct stat st{};
  if (fstat(fd, &st) != 0) {
    const int e = errno;
    close(fd);
    fail("stat", e);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    throw Error(codes::kInvalidArgument, path + " is not a regular file");
  }
  const size_t capacity = static_cast<size_t>(st.st_size) + 1;
  out.bytes.Reserve(capacity);
  size_t done = 0;
  for (;;) {
    if (done == capacity) break;  // grew while being read: keep what fits
    const ssize_t n = read(fd, out.bytes.data() + done, capacity - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      close(fd);
      fail("read", e);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  close(fd);
  out.size = done;
}

std::optional<std::string> OptString(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (!v.IsString()) ThrowTypeError(o.Env(), std::string("expected a string for ") + key);
  return v.As<Napi::String>().Utf8Value();
}

std::optional<bool> OptBool(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (!v.IsBoolean()) ThrowTypeError(o.Env(), std::string("expected a boolean for ") + key);
  return v.As<Napi::Boolean>().Value();
}

// tiktoken special tokens as [content, id] pairs.
std::vector<std::pair<std::string, uint32_t>> SpecialTokens(Napi::Env env, const Napi::Value& v) {
  if (!v.IsArray()) ThrowTypeError(env, "expected an array of [content, id] for specialTokens");
  auto list = v.As<Napi::Array>();
  std::vector<std::pair<std::string, uint32_t>> out;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value e = list.Get(i);
    const std::string what = "specialTokens[" + std::to_string(i) + "]";
    if (!e.IsArray() || e.As<Napi::Array>().Length() != 2) ThrowTypeError(env, "expected [content, id] for " + what);
    auto pair = e.As<Napi::Array>();
    Napi::Value content = pair.Get(0u), id = pair.Get(1u);
    if (!content.IsString() || !id.IsNumber()) ThrowTypeError(env, "expected [content, id] for " + what);
    double d = id.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 4294967280.0) || d != static_cast<double>(static_cast<uint32_t>(d)))
      ThrowTypeError(env, "expected a non-negative integer id for " + what);
    out.emplace_back(content.As<Napi::String>().Utf8Value(), static_cast<uint32_t>(d));
  }
  return out;
}

// createTokenizer(source) -> Promise<NativeTokenizer>: reads the file (or takes the given bytes) and builds the
// tokenizer on a worker thread (tokenizer/tokenizer.h FromJson / FromTiktoken). See src/native/tokenizer-contract.ts.
class CreateWorker final : public PromiseWorker {
 public:
  CreateWorker(Napi::Env env, const Napi::Object& src) : PromiseWorker(env, "tokmeter:createTokenizer") {
    const std::string format = OptString(src, "format").value_or("");
    if (format != "tokenizer.json" && format != "tiktoken")
      ThrowTypeError(env, "expected format 'tokenizer.json' or 'tiktoken'");
    tiktoken_ = format == "tiktoken";
    Napi::Value bytes = src.Get("bytes");
    if (bytes.IsBuffer()) {
      auto b = bytes.As<Napi::Buffer<char>>();
      bytes_ = std::string_view(b.Data(), b.Length());
      keep_ = Napi::Persistent(b.As<Napi::Object>());
    } else if (!bytes.IsUndefined()) {
      ThrowTypeError(env, "expected a Buffer for bytes");
    } else {
      path_ = ToPath(src.Get("file"), "the tokenizer file");
    }
    name_ = OptString(src, "name").value_or(path_.empty() ? format : path_);
    if (tiktoken_) {
      tiktoken_options_.pattern = OptString(src, "pattern");
      Napi::Value st = src.Get("specialTokens");
      if (!st.IsUndefined() && !st.IsNull()) tiktoken_options_.special_tokens = SpecialTokens(env, st);
    } else {
      options_.bos_token = OptString(src, "bosToken");
      options_.eos_token = OptString(src, "eosToken");
      options_.add_bos_token = OptBool(src, "addBosToken");
      options_.add_eos_token = OptBool(src, "addEosToken");
    }
  }

 protected:
  void Work() override {
    BigBlock block;
    std::string_view doc = bytes_;
    if (!path_.empty()) {
      try {
        ReadWholeFile(path_, block);
      } catch (const Error& e) {
        throw Error("ERR_TOKENIZER_SPEC", "invalid tokenizer: " + name_ + ": cannot read: " + e.what());
      }
      doc = block.view();
    }
    // About one token per 12 bytes of text, each costing ~3x its bytes plus ~48 bytes.
    external_ = static_cast<int64_t>(doc.size()) * 7;
    tok_ = tiktoken_ ? tk::Tokenizer::FromTiktoken(doc, tiktoken_options_, name_)
                     : tk::Tokenizer::FromJson(doc, options_, name_);
  }
  Napi::Value Resolve(Napi::Env env) override {
    auto ext = Napi::External<std::shared_ptr<const tk::Tokenizer>>::New(env, &tok_);
    return AddonData::Of(env).Constructor(kTokClass).New({ext, Napi::Number::New(env, static_cast<double>(external_))});
  }

 private:
  bool tiktoken_ = false;
  std::string path_, name_;
  std::string_view bytes_;
  Napi::ObjectReference keep_;  // holds the Buffer bytes_ points into while the worker lives
  tk::LoadOptions options_;
  tk::TiktokenOptions tiktoken_options_;
  std::shared_ptr<const tk::Tokenizer> tok_;
  int64_t external_ = 0;
};

// readFileBig(path) -> Promise<Buffer>: a whole file read on a worker thread into a BigAlloc block (see BigBlock).
// The block is freed by the Buffer's finalizer and reported to V8 as external memory meanwhile.
class ReadFileWorker final : public PromiseWorker {
 public:
  ReadFileWorker(Napi::Env env, std::string path)
      : PromiseWorker(env, "tokmeter:readFileBig"), path_(std::move(path)) {}

 protected:
  void Work() override { ReadWholeFile(path_, block_); }
  Napi::Value Resolve(Napi::Env env) override {
    const size_t capacity = block_.bytes.capacity(), size = block_.size;
    uint8_t* data = block_.bytes.release();  // the Buffer owns it now
    Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(capacity));
    return Napi::Buffer<uint8_t>::New(env, data, size, [capacity](Napi::Env e, uint8_t* p) {
      tk::BigAlloc<uint8_t>().deallocate(p, capacity);
      Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>(capacity));
    });
  }

 private:
  std::string path_;
  BigBlock block_;
};

Napi::Value ReadFileBig(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) ThrowTypeError(env, "expected a path string");
    auto* w = new ReadFileWorker(env, ToPath(info[0], "the file path"));
    auto p = w->Promise();
    w->Queue();
    return p;
  });
}

class BatchWorker final : public PromiseWorker {
 public:
  BatchWorker(Napi::Env env, std::shared_ptr<const tk::Tokenizer> tok, bool add_special, unsigned threads, bool encode)
      : PromiseWorker(env, encode ? "tokmeter:encodeBatch" : "tokmeter:countBatch"),
        tok_(std::move(tok)),
        texts_(TakeArena()),
        add_special_(add_special),
        threads_(threads),
        encode_(encode) {}
  ~BatchWorker() override {
    run_.reset();  // waits for the helpers (they read texts_)
    GiveArena(std::move(texts_));
  }

  // Below this many UTF-16 units in all (32-96 kB of UTF-8), a batch runs on the calling (JS) thread: handing it to
  // threads costs more (a libuv queue hop and pool wake-ups, tens of microseconds, plus caches that are warm on the
  // JS thread) than the few hundred microseconds of work, which blocks the event loop no longer than one count() of
  // a string that size.
  static constexpr size_t kInlineUnits = 32 * 1024;
  bool Small() const { return !run_; }

  // Copies the JS texts' code units (JS thread). A large batch is cut into chunks of consecutive documents by length,
  // and the pool's helpers start on each chunk as soon as its texts are copied.
  void Start(Napi::Env env, Napi::Array a) {
    const uint32_t n = a.Length();
    std::vector<napi_value> vals(n);
    std::vector<size_t> len(n);
    size_t total16 = 0;
    for (uint32_t i = 0; i < n; ++i) {
      Napi::Value v = a.Get(i);
      if (!v.IsString()) ThrowTypeError(env, "expected a string for texts[" + std::to_string(i) + "]");
      napi_get_value_string_utf16(env, v, nullptr, 0, &len[i]);
      vals[i] = v;
      total16 += len[i];
    }
    TextArena& t = *texts_;
    t.units.Reserve(total16 + 1);  // never reallocated while helpers read it
    t.ends.assign(n, 0);
    if (encode_)
      ids_.resize(n);
    else
      counts_.resize(n);
    chunk_ = [this](size_t c) {
      uint32_t have;
      while ((have = converted_.load(std::memory_order_acquire)) < starts_[c + 1]) converted_.wait(have);
      if (cancelled_.load(std::memory_order_relaxed)) return;
      for (size_t i = starts_[c]; i < starts_[c + 1]; ++i) One(i);
    };
    // Chunks of about 1/32 of the batch per thread (at least 4k units): a repeated batch keeps its chunks on the
    // same threads (parallel.h lanes), and the last chunk, which one thread finishes while the other has none
    // left, stays short.
    starts_.clear();
    if (total16 >= kInlineUnits) {
      const size_t target = std::max<size_t>(4 * 1024, total16 / (32 * std::max(threads_, 1u)));
      starts_.assign(1, 0);
      for (size_t i = 0, acc = 0; i + 1 < n; ++i) {
        acc += len[i];
        if (acc >= target) {
          starts_.push_back(i + 1);
          acc = 0;
        }
      }
      starts_.push_back(n);
    }
    const bool pipelined = !starts_.empty();
    struct Cancel {  // a copy that throws must release the waiting helpers before they are waited for
      BatchWorker& w;
      bool done = false;
      ~Cancel() {
        if (done) return;
        w.cancelled_.store(true);
        w.converted_.store(0xFFFFFFFFu, std::memory_order_release);
        w.converted_.notify_all();
      }
    } cancel{*this};
    size_t next_chunk = 1;
    for (uint32_t i = 0; i < n; ++i) {
      size_t written = 0;
      napi_get_value_string_utf16(env, vals[i], t.units.data() + t.used, len[i] + 1, &written);
      t.used += written;
      t.ends[i] = t.used;
      if (pipelined && i + 1 == starts_[next_chunk]) {  // a chunk's texts are all there
        converted_.store(i + 1, std::memory_order_release);
        converted_.notify_all();
        // The helpers are woken once the first chunk is ready: copying runs far ahead of counting, so they rarely
        // wait again (a helper woken before any text was there slept once more, a second wake-up that costs
        // milliseconds on a loaded machine).
        if (next_chunk == 1)
          run_ = std::make_unique<tk::PoolRun>(starts_.size() - 1, threads_, tk::FnRef<void(size_t)>(chunk_));
        ++next_chunk;
      }
    }
    cancel.done = true;
  }

 protected:
  void Work() override {
    if (run_) {  // libuv thread: only waits (its caches are cold on most calls; the pool's helpers have theirs warm)
      run_->Wait();
      return;
    }
    for (size_t i = 0; i < texts_->size(); ++i) One(i);  // a small batch, by RunHere on the JS thread
  }

  Napi::Value Resolve(Napi::Env env) override {
    if (!encode_) return ToJsIds(env, counts_);
    auto out = Napi::Array::New(env, ids_.size());
    for (size_t i = 0; i < ids_.size(); ++i) out.Set(static_cast<uint32_t>(i), ToJsIds(env, ids_[i]));
    return out;
  }

 private:
  // Text i, transcoded into this thread's buffer (kept between batches unless it grew past 48 MB).
  void One(size_t i) {
    const std::u16string_view units = (*texts_)[i];
    thread_local RawBuffer<char> utf8;
    utf8.Reserve(units.size() * 3 + 16);
    const std::string_view text(utf8.data(), tk::utf8::FromUtf16(units.data(), units.size(), utf8.data()));
    if (encode_)
      tok_->EncodeInto(text, add_special_, ids_[i]);
    else
      counts_[i] = static_cast<uint32_t>(std::min<size_t>(tok_->Count(text, add_special_), 0xFFFFFFFFu));
    if (utf8.capacity() > (48u << 20)) utf8.Free();
  }

  std::shared_ptr<const tk::Tokenizer> tok_;
  std::unique_ptr<TextArena> texts_;
  bool add_special_;
  unsigned threads_;
  bool encode_;
  std::vector<uint32_t> counts_;
  std::vector<std::vector<uint32_t>> ids_;
  // Large batches: chunk c is documents [starts_[c], starts_[c+1]); converted_ counts the documents converted so
  // far (published at chunk ends).
  std::vector<size_t> starts_;
  std::atomic<uint32_t> converted_{0};
  std::atomic<bool> cancelled_{false};
  std::function<void(size_t)> chunk_;
  std::unique_ptr<tk::PoolRun> run_;  // declared last: destroyed (waited for) first
};

void JsTokenizer::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, kTokClass,
                                   {
                                       InstanceMethod<&JsTokenizer::Encode>("encode"),
                                       InstanceMethod<&JsTokenizer::Count>("count"),
                                       InstanceMethod<&JsTokenizer::EncodeIntoArray>("encodeInto"),
                                       InstanceMethod<&JsTokenizer::CountBatch>("countBatch"),
                                       InstanceMethod<&JsTokenizer::EncodeBatch>("encodeBatch"),
                                       InstanceMethod<&JsTokenizer::Decode>("decode"),
                                       InstanceMethod<&JsTokenizer::TokenToId>("tokenToId"),
                                       InstanceMethod<&JsTokenizer::IdToToken>("idToToken"),
                                       InstanceMethod<&JsTokenizer::IsSpecial>("isSpecial"),
                                       InstanceMethod<&JsTokenizer::VocabSize>("vocabSize"),
                                       InstanceMethod<&JsTokenizer::NewDecodeStream>("decodeStream"),
                                       InstanceMethod<&JsTokenizer::Dispose>("dispose"),
                                   });
  AddonData::Of(env).constructors[kTokClass] = Napi::Persistent(cls);
  exports.Set("createTokenizer", Napi::Function::New<&JsTokenizer::Create>(env, "createTokenizer"));
  exports.Set("readFileBig", Napi::Function::New<&ReadFileBig>(env, "readFileBig"));
}

JsTokenizer::JsTokenizer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsTokenizer>(info) {
  if (info.Length() < 1 || !info[0].IsExternal())
    ThrowTypeError(info.Env(), "NativeTokenizer cannot be constructed directly; use createTokenizer()");
  tok_ = *info[0].As<Napi::External<std::shared_ptr<const tk::Tokenizer>>>().Data();
  if (info.Length() > 1 && info[1].IsNumber())
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), info[1].As<Napi::Number>().Int64Value());
}

Napi::Value JsTokenizer::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) ThrowTypeError(env, "expected a tokenizer source object");
    auto* w = new CreateWorker(env, info[0].As<Napi::Object>());
    auto p = w->Promise();
    w->Queue();
    return p;
  });
}

Napi::Value JsTokenizer::Encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& tok = Get(env);
    if (info.Length() < 1 || !info[0].IsString()) ThrowTypeError(env, "expected a string for text");
    bool add = BoolArg(info, 1, "addSpecialTokens");
    RawBuffer<char>& buf = CallBuffer();
    const std::string_view text = Utf8Into(env, info[0], buf);
    thread_local std::vector<uint32_t> ids;
    ids.clear();
    tok->EncodeInto(text, add, ids);
    ReleaseIfHuge(buf);
    auto out = ToJsIds(env, ids);
    if (ids.capacity() > (4u << 20)) std::vector<uint32_t>().swap(ids);
    return out;
  });
}

// encodeInto(text, addSpecialTokens, out: Uint32Array) -> number of ids; writes them when they fit. Saves creating
// a typed array in native code per call (the JS side slices a reused array), which dominated short-string encode.
Napi::Value JsTokenizer::EncodeIntoArray(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& tok = Get(env);
    if (info.Length() < 1 || !info[0].IsString()) ThrowTypeError(env, "expected a string for text");
    bool add = BoolArg(info, 1, "addSpecialTokens");
    if (info.Length() < 3 || !info[2].IsTypedArray() ||
        info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      ThrowTypeError(env, "expected a Uint32Array for out");
    auto out = info[2].As<Napi::Uint32Array>();
    RawBuffer<char>& buf = CallBuffer();
    const std::string_view text = Utf8Into(env, info[0], buf);
    thread_local std::vector<uint32_t> ids;
    ids.clear();
    tok->EncodeInto(text, add, ids);
    ReleaseIfHuge(buf);
    if (ids.size() <= out.ElementLength() && !ids.empty())
      std::memcpy(out.Data(), ids.data(), ids.size() * sizeof(uint32_t));
    size_t n = ids.size();
    if (ids.capacity() > (4u << 20)) std::vector<uint32_t>().swap(ids);
    return Napi::Number::New(env, static_cast<double>(n));
  });
}

Napi::Value JsTokenizer::Count(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& tok = Get(env);
    if (info.Length() < 1 || !info[0].IsString()) ThrowTypeError(env, "expected a string for text");
    bool add = BoolArg(info, 1, "addSpecialTokens");
    RawBuffer<char>& buf = CallBuffer();
    const std::string_view text = Utf8Into(env, info[0], buf);
    size_t n = tok->Count(text, add);
    ReleaseIfHuge(buf);
    return Napi::Number::New(env, static_cast<double>(n));
  });
}

Napi::Value JsTokenizer::CountBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto tok = Get(env);
    if (info.Length() < 1 || !info[0].IsArray()) ThrowTypeError(env, "expected an array of strings for texts");
    bool add = BoolArg(info, 1, "addSpecialTokens");
    unsigned threads = ThreadsArg(info, 2);
    auto w = std::make_unique<BatchWorker>(env, tok, add, threads, false);
    w->Start(env, info[0].As<Napi::Array>());
    auto p = w->Promise();
    if (w->Small())
      w->RunHere();
    else
      w.release()->Queue();
    return p;
  });
}

Napi::Value JsTokenizer::EncodeBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto tok = Get(env);
    if (info.Length() < 1 || !info[0].IsArray()) ThrowTypeError(env, "expected an array of strings for texts");
    bool add = BoolArg(info, 1, "addSpecialTokens");
    unsigned threads = ThreadsArg(info, 2);
    auto w = std::make_unique<BatchWorker>(env, tok, add, threads, true);
    w->Start(env, info[0].As<Napi::Array>());
    auto p = w->Promise();
    if (w->Small())
      w->RunHere();
    else
      w.release()->Queue();
    return p;
  });
}

Napi::Value JsTokenizer::Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& tok = Get(env);
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      ThrowTypeError(env, "expected a Uint32Array for ids");
    auto a = info[0].As<Napi::Uint32Array>();
    bool skip = BoolArg(info, 1, "skipSpecialTokens");
    std::string s = tok->Decode(std::span<const uint32_t>(a.Data(), a.ElementLength()), skip);
    return Napi::String::New(env, s);
  });
}

Napi::Value JsTokenizer::TokenToId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& tok = Get(env);
    if (info.Length() < 1 || !info[0].IsString()) ThrowTypeError(env, "expected a string for token");
    auto id = tok->TokenToId(info[0].As<Napi::String>().Utf8Value());
    return id ? Napi::Number::New(env, *id) : env.Undefined();
  });
}

Napi::Value JsTokenizer::IdToToken(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& tok = Get(env);
    if (info.Length() < 1 || !info[0].IsNumber()) ThrowTypeError(env, "expected an integer for id");
    double d = info[0].As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d < 4294967296.0) || d != static_cast<double>(static_cast<uint32_t>(d))) return env.Undefined();
    auto t = tok->IdToToken(static_cast<uint32_t>(d));
    return t ? Napi::String::New(env, *t) : env.Undefined();
  });
}

Napi::Value JsTokenizer::IsSpecial(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& tok = Get(env);
    if (info.Length() < 1 || !info[0].IsNumber()) ThrowTypeError(env, "expected an integer for id");
    double d = info[0].As<Napi::Number>().DoubleValue();
    bool ok = d >= 0 && d < 4294967296.0 && d == static_cast<double>(static_cast<uint32_t>(d));
    return Napi::Boolean::New(env, ok && tok->IsSpecial(static_cast<uint32_t>(d)));
  });
}

Napi::Value JsTokenizer::VocabSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value { return Napi::Number::New(env, Get(env)->VocabSize()); });
}

Napi::Value JsTokenizer::NewDecodeStream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto tok = Get(env);
    bool skip = BoolArg(info, 0, "skipSpecialTokens");
    auto* holder = new std::shared_ptr<const tk::Tokenizer>(tok);
    auto ext = Napi::External<std::shared_ptr<const tk::Tokenizer>>::New(
        env, holder, [](Napi::Env, std::shared_ptr<const tk::Tokenizer>* p) { delete p; });
    return AddonData::Of(env).Constructor(kStreamClass).New({ext, Napi::Boolean::New(env, skip)});
  });
}

Napi::Value JsTokenizer::Dispose(const Napi::CallbackInfo& info) {
  tok_.reset();
  return info.Env().Undefined();
}

void JsDecodeStream::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, kStreamClass,
                                   {
                                       InstanceMethod<&JsDecodeStream::Step>("step"),
                                       InstanceMethod<&JsDecodeStream::Flush>("flush"),
                                   });
  AddonData::Of(env).constructors[kStreamClass] = Napi::Persistent(cls);
  (void)exports;
}

JsDecodeStream::JsDecodeStream(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsDecodeStream>(info) {
  if (info.Length() < 2 || !info[0].IsExternal() || !info[1].IsBoolean())
    ThrowTypeError(info.Env(), "NativeDecodeStream cannot be constructed directly; use tokenizer.decodeStream()");
  auto tok = *info[0].As<Napi::External<std::shared_ptr<const tk::Tokenizer>>>().Data();
  stream_ = std::make_unique<tk::DecodeStream>(tok, info[1].As<Napi::Boolean>().Value());
}

Napi::Value JsDecodeStream::Step(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsNumber()) ThrowTypeError(env, "expected a token id");
    double d = info[0].As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d < 4294967296.0) || d != static_cast<double>(static_cast<uint32_t>(d)))
      ThrowTypeError(env, "expected a non-negative integer token id, got " + std::to_string(d));
    return Napi::String::New(env, stream_->Step(static_cast<uint32_t>(d)));
  });
}

Napi::Value JsDecodeStream::Flush(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value { return Napi::String::New(env, stream_->Flush()); });
}

}  // namespace

void InitTokenizer(Napi::Env env, Napi::Object exports) {
  JsTokenizer::Init(env, exports);
  JsDecodeStream::Init(env, exports);
}

std::shared_ptr<const tokmeter::tokenizer::Tokenizer> UnwrapTokenizer(Napi::Value v) {
  Napi::Env env = v.Env();
  Napi::Function cls = AddonData::Of(env).Constructor(kTokClass);
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(cls)) ThrowTypeError(env, "expected a NativeTokenizer");
  return JsTokenizer::Unwrap(v.As<Napi::Object>())->Get(env);
}

}  // namespace tokmeter::addon
