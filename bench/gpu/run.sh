#!/usr/bin/env bash
# Runs on the GPU machine (CUDA 13 driver, PyTorch in python3, no Node, no internet), from the repo root that the
# device tool copied there. Two modes:
#
#   bash bench/gpu/run.sh receive build-gpu-pack/pN    # store one part (a call per part, machine kept warm)
#   bash bench/gpu/run.sh run [--quick]                # verify + unpack the parts, then tests and bench
#
# Everything is unpacked outside the repo, in /tmp/tokmeter-gpu (lost when the machine goes back). The run:
#   1. checks the chunks against manifest.txt and unpacks them;
#   2. puts the CUDA 13 libraries of the Python environment (nvidia-cublas, -cuda-runtime, -curand wheels) on
#      LD_LIBRARY_PATH for ONNX Runtime's CUDA provider;
#   3. nvidia-smi; the plug-in's C++ tests (kernels vs the CPU engine; device-'cuda' errors);
#   4. measures device memory bandwidth with PyTorch (device-to-device copy, bytes read + written / time);
#   5. node dist/gpu/bench.mjs: CPU-vs-CUDA parity on the tiny model, then the 1B benchmark.
# Results: printed, and copied to $OUT (summary.txt, run.log) when the device tool sets OUT.
set -uo pipefail
base=/tmp/tokmeter-gpu
mode="${1:-}"
case "$mode" in
  receive)
    part="${2:?usage: run.sh receive build-gpu-pack/pN}"
    mkdir -p "$base/parts"
    cp "$part"/* "$base/parts/"
    ls -la "$base/parts"
    exit 0
    ;;
  run) shift ;;
  *) echo "usage: run.sh receive <part-folder> | run [--quick]" >&2; exit 2 ;;
esac

log="${OUT:-$base}/run.log"
mkdir -p "$(dirname "$log")"
exec > >(tee "$log") 2>&1
start=$(date +%s)
step() { echo "== [$(( $(date +%s) - start )) s] $*"; }

step "verify and unpack"
cd "$base/parts" || { echo "no parts received"; exit 1; }
sha256sum -c manifest.txt || { echo "a part is missing or corrupt: send it again"; exit 1; }
rm -rf "$base/root"
cat $(awk '{print $2}' manifest.txt) | xz -d -T0 | tar -C "$base" -xf - || exit 1
root="$base/root"
cd "$root" || exit 1

step "CUDA libraries for the ONNX Runtime CUDA provider"
libdirs=$(find /opt /usr/local /usr/lib /usr/lib64 -xdev \( -name 'libcublasLt.so.13*' -o -name 'libcublas.so.13*' \
  -o -name 'libcudart.so.13*' -o -name 'libcurand.so.10*' \) 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:-}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true

failed=0
step "C++ tests: CUDA kernels vs the CPU engine"
./tests/cuda_sampling_test || failed=1
step "C++ tests: device 'cuda' entry points"
./tests/cuda_device_errors_test "$root/build/Release/libonnxruntime.so.1" "$root/build/Release/libtokmeter_cuda.so" || failed=1

step "device memory bandwidth (PyTorch)"
bw=$(python3 - <<'PY' 2>/dev/null
import time, torch
n = 1 << 30  # 2 GiB of fp16
x = torch.empty(n, dtype=torch.float16, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
torch.cuda.synchronize(); t = time.perf_counter(); k = 20
for _ in range(k): y.copy_(x)
torch.cuda.synchronize(); dt = (time.perf_counter() - t) / k
print(f"{2 * x.numel() * x.element_size() / dt / 1e9:.0f}")
PY
)
echo "bandwidth: ${bw:-unknown} GB/s (read + written)"

step "bench (budget: 8 minutes in all)"
export TOKMETER_ORT_LIBRARY="$root/build/Release/libonnxruntime.so.1"
export TOKMETER_CUDA_PLUGIN="$root/build/Release/libtokmeter_cuda.so"
timeout 420 ./bin/node dist/gpu/bench.mjs --out "$base/bench" ${bw:+--bandwidth-gbps "$bw"} "$@" || failed=1
[ -n "${OUT:-}" ] && cp "$base/bench/summary.txt" "$OUT/" 2>/dev/null
step "done (exit $failed)"
exit $failed
