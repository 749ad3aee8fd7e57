// The addon's glibc floor: a tokmeter.node built on any newer glibc loads on glibc 2.28 (Node 20's own floor).
//
// Why: the addon links libstdc++ statically (so it needs no GLIBCXX version newer than the bundled ONNX Runtime's),
// and the static libstdc++, our code and the static libraries reference glibc functions under the newest version of
// the build machine's glibc: pthread_* and dl* moved into libc in 2.34, exp/log got new versions in 2.29, stat and
// friends became real functions in 2.33, __libc_single_threaded appeared in 2.32 and arc4random in 2.36.
//
// How: the link passes `-Wl,--wrap=NAME` for every NAME below (scripts/link-flags.cjs derives the list from the
// `__wrap_` definitions in this file), so every reference in every object, including those inside libstdc++.a,
// resolves to `__wrap_NAME` here. Each wrapper calls the oldest version of the function (bound with `.symver`), or,
// where no old version exists, does the work itself with a system call. `npm run test:pack` reads the versioned
// symbols of the shipped binaries and fails, naming the symbol, when one needs a newer glibc than the floor; a new
// reference that appears there gets its wrapper here.
//
// Thread affinity and ownership: none; these are stateless forwarders.
#include <cstddef>  // defines __GLIBC__ where glibc is the C library

#if defined(__linux__) && defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#define TOKMETER_GLIBC_BASE "GLIBC_2.2.5"
#else
#define TOKMETER_GLIBC_BASE "GLIBC_2.17"
#endif

// Binds `old_NAME` to NAME's oldest version and defines `__wrap_NAME` forwarding to it.
#define TOKMETER_OLD(ret, name, params, args)                      \
  extern "C" ret old_##name params;                                \
  __asm__(".symver old_" #name "," #name "@" TOKMETER_GLIBC_BASE); \
  extern "C" __attribute__((visibility("hidden"))) ret __wrap_##name params { return old_##name args; }

TOKMETER_OLD(int, pthread_create, (pthread_t * t, const pthread_attr_t* a, void* (*f)(void*), void* p), (t, a, f, p))
TOKMETER_OLD(int, pthread_join, (pthread_t t, void** r), (t, r))
TOKMETER_OLD(int, pthread_detach, (pthread_t t), (t))
TOKMETER_OLD(int, pthread_once, (pthread_once_t * o, void (*f)(void)), (o, f))
TOKMETER_OLD(int, pthread_key_create, (pthread_key_t * k, void (*d)(void*)), (k, d))
TOKMETER_OLD(int, pthread_key_delete, (pthread_key_t k), (k))
TOKMETER_OLD(void*, pthread_getspecific, (pthread_key_t k), (k))
TOKMETER_OLD(int, pthread_setspecific, (pthread_key_t k, const void* v), (k, v))
TOKMETER_OLD(int, pthread_rwlock_rdlock, (pthread_rwlock_t * l), (l))
TOKMETER_OLD(int, pthread_rwlock_wrlock, (pthread_rwlock_t * l), (l))
TOKMETER_OLD(int, pthread_rwlock_unlock, (pthread_rwlock_t * l), (l))
TOKMETER_OLD(int, pthread_rwlock_init, (pthread_rwlock_t * l, const pthread_rwlockattr_t* a), (l, a))
TOKMETER_OLD(int, pthread_rwlock_destroy, (pthread_rwlock_t * l), (l))
TOKMETER_OLD(int, pthread_attr_setstacksize, (pthread_attr_t * a, size_t s), (a, s))
TOKMETER_OLD(int, pthread_mutexattr_init, (pthread_mutexattr_t * a), (a))
TOKMETER_OLD(int, pthread_mutexattr_settype, (pthread_mutexattr_t * a, int t), (a, t))
TOKMETER_OLD(int, pthread_mutexattr_destroy, (pthread_mutexattr_t * a), (a))
TOKMETER_OLD(void*, dlopen, (const char* f, int m), (f, m))
TOKMETER_OLD(void*, dlsym, (void* h, const char* s), (h, s))
TOKMETER_OLD(int, dlclose, (void* h), (h))
TOKMETER_OLD(char*, dlerror, (void), ())
TOKMETER_OLD(int, dladdr, (const void* a, Dl_info* i), (a, i))
TOKMETER_OLD(double, exp, (double x), (x))
TOKMETER_OLD(double, log, (double x), (x))
TOKMETER_OLD(double, pow, (double x, double y), (x, y))
TOKMETER_OLD(float, expf, (float x), (x))
TOKMETER_OLD(float, logf, (float x), (x))
TOKMETER_OLD(float, powf, (float x, float y), (x, y))

// stat and friends: before glibc 2.33 they were inline wrappers around __xstat and exported under no version, so
// there is no old symbol to bind to. On x86_64 and aarch64 the kernel's struct stat is glibc's, so the system calls
// fill it directly.
namespace {
int StatResult(long rc) {
  if (rc < 0) {
    errno = static_cast<int>(-rc);
    return -1;
  }
  return 0;
}
long StatAt(int dirfd, const char* path, struct stat* st, int flags) {
  return syscall(SYS_newfstatat, dirfd, path, st, flags) == 0 ? 0 : -errno;
}
}  // namespace

extern "C" __attribute__((visibility("hidden"))) int __wrap_stat(const char* path, struct stat* st) {
  return StatResult(StatAt(AT_FDCWD, path, st, 0));
}
extern "C" __attribute__((visibility("hidden"))) int __wrap_lstat(const char* path, struct stat* st) {
  return StatResult(StatAt(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW));
}
extern "C" __attribute__((visibility("hidden"))) int __wrap_fstat(int fd, struct stat* st) {
  return StatResult(StatAt(fd, "", st, AT_EMPTY_PATH));
}
extern "C" __attribute__((visibility("hidden"))) int __wrap_fstatat(int dirfd, const char* path, struct stat* st,
                                                                    int flags) {
  return StatResult(StatAt(dirfd, path, st, flags));
}
// On these 64-bit targets struct stat64 is struct stat.
extern "C" __attribute__((visibility("hidden"))) int __wrap_stat64(const char* path, struct stat* st) {
  return __wrap_stat(path, st);
}
extern "C" __attribute__((visibility("hidden"))) int __wrap_lstat64(const char* path, struct stat* st) {
  return __wrap_lstat(path, st);
}
extern "C" __attribute__((visibility("hidden"))) int __wrap_fstat64(int fd, struct stat* st) {
  return __wrap_fstat(fd, st);
}
extern "C" __attribute__((visibility("hidden"))) int __wrap_fstatat64(int dirfd, const char* path, struct stat* st,
                                                                      int flags) {
  return __wrap_fstatat(dirfd, path, st, flags);
}

// libstdc++ reads this to skip atomic reference counting while a process has one thread. Zero means "assume other
// threads": always correct, which matters in Node, where libuv's threads exist before any addon loads.
extern "C" {
__attribute__((visibility("hidden"))) char __wrap___libc_single_threaded = 0;
}

// std::random_device's default source in libstdc++ built against glibc 2.36: getrandom(2), the same kernel source,
// with /dev/urandom for kernels that lack the call.
namespace {
bool ReadUrandom(unsigned char* p, size_t n) {
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  while (n > 0) {
    ssize_t got = read(fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    p += got;
    n -= static_cast<size_t>(got);
  }
  close(fd);
  return n == 0;
}
}  // namespace

extern "C" __attribute__((visibility("hidden"))) void __wrap_arc4random_buf(void* buf, size_t n) {
  auto* p = static_cast<unsigned char*>(buf);
  while (n > 0) {
    long got = syscall(SYS_getrandom, p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (ReadUrandom(p, n)) return;
      // No kernel source of randomness at all: a seed from the clock and an address (never a crash in Node).
      uint64_t x = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)) ^ static_cast<uint64_t>(n);
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      x ^= static_cast<uint64_t>(ts.tv_nsec) * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(ts.tv_sec);
      for (; n > 0; --n, ++p) {
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
        *p = static_cast<unsigned char>((x * 0x2545F4914F6CDD1Dull) >> 56);
      }
      return;
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
}
extern "C" __attribute__((visibility("hidden"))) uint32_t __wrap_arc4random(void) {
  uint32_t v;
  __wrap_arc4random_buf(&v, sizeof v);
  return v;
}

#endif
