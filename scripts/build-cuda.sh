#!/usr/bin/env bash
# CI check for the CUDA plug-in: compile and link it, never touching the CPU build.
#
#   scripts/build-cuda.sh            # cmake-js with TOKMETER_CUDA=1 into build-cuda/, then the checks below
#   JOBS=4 scripts/build-cuda.sh     # parallel jobs (default 2)
#   SKIP_TESTS=1 scripts/build-cuda.sh
#
# 1. `TOKMETER_CUDA=1 cmake-js compile --out build-cuda` builds tokmeter.node and libtokmeter_cuda.so side by side in
#    build-cuda/Release/ (build/ — the CPU addon npm uses — is left alone).
# 2. Asserts the plug-in exports exactly the versioned entry point and links no CUDA shared library (the CUDA runtime
#    is static; the driver is dlopened at run time).
# 3. Asserts that no tokmeter.node — the one built here, build/Release's, the node-gyp build's and every prebuild —
#    depends on, or imports a symbol from, CUDA or the plug-in.
# 4. Builds and runs the plug-in's C++ tests (native/cuda/test) in build-cuda/native-tests: without a GPU they check
#    the host side, print SKIPPED for the kernels and pass; on a GPU they compare the kernels with the CPU engine.
# Needs nvcc 13 (PATH, /usr/local/cuda/bin, or CUDACXX) and what `npm run build` needs. No GPU needed.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-2}"
fail() { echo "build-cuda: FAIL: $*" >&2; exit 1; }

if ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ] && [ -z "${CUDACXX:-}" ]; then
  fail "nvcc (CUDA 13 toolkit) not found: install it or set CUDACXX"
fi

echo "build-cuda: cmake-js (TOKMETER_CUDA=1) into build-cuda/"
TOKMETER_CUDA=1 npx --no-install cmake-js compile --out build-cuda --parallel "$JOBS"

out=build-cuda/Release
plugin="$out/libtokmeter_cuda.so"
[ -f "$plugin" ] || fail "$plugin was not built"
[ -f "$out/tokmeter.node" ] || fail "$out/tokmeter.node was not built"

cuda_deps='libcudart|libcuda\.so|libcublas|libcurand|libcudnn|libnvrtc|libtokmeter_cuda'
exports=$(nm -D --defined-only "$plugin" | awk '{print $3}' | sort)
[ "$exports" = "TokmeterCudaGetInterface" ] || fail "the plug-in must export only TokmeterCudaGetInterface, got: $exports"
if readelf -d "$plugin" | grep NEEDED | grep -E "$cuda_deps"; then
  fail "the plug-in links a CUDA shared library (the runtime must be static)"
fi
echo "build-cuda: ok: $plugin exports TokmeterCudaGetInterface; NEEDED: $(readelf -d "$plugin" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')"

check_cpu_addon() {
  local node_file="$1"
  if readelf -d "$node_file" | grep NEEDED | grep -E "$cuda_deps"; then
    fail "$node_file depends on CUDA (readelf -d above)"
  fi
  if nm -D --undefined-only "$node_file" | grep -E ' (cuda|cu[A-Z]|cublas|Tokmeter)'; then
    fail "$node_file imports CUDA symbols (nm -D above)"
  fi
  if ldd "$node_file" 2>/dev/null | grep -E "$cuda_deps"; then
    fail "$node_file pulls in CUDA through a dependency (ldd above)"
  fi
  echo "build-cuda: ok: $node_file has no CUDA dependency"
}
check_cpu_addon "$out/tokmeter.node"
for f in build/Release/tokmeter.node prebuilds/*/*.node; do
  [ -f "$f" ] && check_cpu_addon "$f"
done

if [ "${SKIP_TESTS:-}" != "1" ]; then
  echo "build-cuda: the plug-in's C++ tests (build-cuda/native-tests)"
  cmake -S native/cuda -B build-cuda/native-tests >/dev/null
  cmake --build build-cuda/native-tests -j "$JOBS"
  ctest --test-dir build-cuda/native-tests --output-on-failure
fi
echo "build-cuda: all checks passed"
