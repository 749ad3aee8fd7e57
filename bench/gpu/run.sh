#!/usr/bin/env bash
# Runs on the GPU machine (CUDA 13 driver, PyTorch in python3, no Node, no internet), from a copy of the repository
# root sent there with each command. Three modes:
#
#   bash bench/gpu/run.sh receive build-gpu-pack/pN    # store one part (a command per part, machine kept warm);
#                                                     # checks it against the manifest, says which parts are missing
#   bash bench/gpu/run.sh run [--quick]                # verify + unpack the parts, then tests and bench
#        [--compute fp16]                             # rerun option: the 1.1B model computing in fp16 (README)
#   bash bench/gpu/run.sh probe                        # only the GPU / library / tool checks (a few seconds)
#
# Everything is unpacked outside the repo, in /tmp/tokmeter-gpu (lost when the machine goes back). The run:
#   1. checks the chunks against manifest.txt and unpacks them;
#   2. finds the CUDA 13 libraries ONNX Runtime's CUDA provider needs (libcublasLt.so.13, libcublas.so.13,
#      libcurand.so.10, libcudart.so.13; libcuda.so.1 from the driver) in the Python environment's nvidia wheels,
#      then the CUDA toolkit, puts them on LD_LIBRARY_PATH, and runs ldd on the provider: a missing one is named;
#   3. starts making the 1.1B model in the background (CPU only, ~1 min) while the GPU checks run:
#      nvidia-smi; the plug-in's C++ tests (kernels vs the CPU engine; device-'cuda' errors, with and without the
#      provider); compute-sanitizer memcheck of the kernel test when the tool is there (bounded, reported), and
#      racecheck while the model maker still runs;
#      device memory bandwidth with PyTorch (device-to-device copy, bytes read + written / time);
#   4. node dist/gpu/bench.mjs: CPU-vs-CUDA parity on the tiny model, then the 1.1B benchmark, with a deadline.
# Every step is bounded by `timeout` and by RUN_BUDGET_S (default 420 s) for the whole run, so the command ends well
# inside an 8-minute limit. Output: printed, and in $OUT (run.log, summary.txt,
# make.log, sanitizer.log, racecheck.log); without OUT, in /tmp/tokmeter-gpu/out. Exit status: 0 all passed; 1 a check failed;
# 3 only benchmark configurations failed or were skipped.
set -uo pipefail
base=/tmp/tokmeter-gpu
budget="${RUN_BUDGET_S:-420}"
start=$(date +%s)
elapsed() { echo $(($(date +%s) - start)); }
left() { echo $((budget - $(elapsed))); }
step() { echo "== [$(elapsed) s] $*"; }
# The libraries the ORT CUDA provider links (readelf -d libonnxruntime_providers_cuda.so), besides the driver's.
needed_libs=(libcublasLt.so.13 libcublas.so.13 libcurand.so.10 libcudart.so.13)
# dlopened by the provider only for ops this model does not use (convolutions, FFT, run-time compilation).
optional_libs=(libcudnn.so.9 libcufft.so.12 libnvrtc.so.13)

# Folders that may hold the CUDA 13 libraries, best first: the nvidia wheels of each python3 (their package path, so
# any venv layout works: nvidia/cu13/lib for CUDA 13 wheels, nvidia/<name>/lib for older ones), then toolkits.
candidate_dirs() {
  local py seen=""
  # CUDA_LIB_DIRS=dir1:dir2 (for a rerun after the probe showed where the libraries are) comes first.
  tr ':' '\n' <<<"${CUDA_LIB_DIRS:-}"
  for py in /opt/torch/.venv/bin/python3 "$(command -v python3 2>/dev/null)"; do
    [ -x "$py" ] || continue
    [[ " $seen " == *" $py "* ]] && continue # (not readlink -f: a venv's python resolves outside the venv)
    seen="$seen $py"
    # The nvidia namespace package's folders (no import of torch: that takes seconds).
    timeout 20 "$py" - <<'PY' 2>/dev/null
import glob, importlib.util, os
try:
    import nvidia
    for p in nvidia.__path__:
        for d in sorted(glob.glob(os.path.join(p, "cu13", "lib"))) + sorted(glob.glob(os.path.join(p, "*", "lib"))):
            print(d)
except Exception:
    pass
spec = importlib.util.find_spec("torch")
if spec is not None and spec.origin:
    print(os.path.join(os.path.dirname(spec.origin), "lib"))
PY
  done
  ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/{cu13,*}/lib 2>/dev/null
  ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64 \
    /usr/local/cuda-13*/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu 2>/dev/null
}

# Sets LD_LIBRARY_PATH so that each needed library comes from the first candidate folder holding it, and prints
# where each one was found. Returns 1 when a needed library is nowhere.
setup_cuda_libs() {
  local dirs=() d lib found missing=0 chosen=()
  while IFS= read -r d; do
    [ -d "$d" ] || continue
    case "$d" in */stubs* | */compat*) continue ;; esac # stubs are link-time fakes; compat would replace the driver
    [[ " ${dirs[*]} " == *" $d "* ]] || dirs+=("$d")
  done < <(candidate_dirs)
  found=""
  for d in "${dirs[@]}"; do [ -e "$d/libcublasLt.so.13" ] && found="$d" && break; done
  if [ -z "$found" ]; then
    # Last resort: search the disk (bounded), in case the wheels live somewhere unexpected.
    while IFS= read -r d; do
      case "$d" in */stubs* | */compat*) continue ;; esac
      [[ " ${dirs[*]} " == *" $d "* ]] || dirs+=("$d")
    done < <(timeout 30 find /opt /usr/local /usr/lib /root -xdev \( -name 'libcublasLt.so.13*' -o -name 'libcudart.so.13*' \
      -o -name 'libcurand.so.10*' \) 2>/dev/null | xargs -r -n1 dirname | sort -u)
  fi
  for lib in "${needed_libs[@]}" "${optional_libs[@]}"; do
    found=""
    for d in "${dirs[@]}"; do
      if [ -e "$d/$lib" ]; then
        found="$d"
        break
      fi
    done
    if [ -n "$found" ]; then
      printf '  %-20s %s\n' "$lib" "$found/$lib"
      [[ " ${chosen[*]} " == *" $found "* ]] || chosen+=("$found")
    elif [[ " ${needed_libs[*]} " == *" $lib "* ]]; then
      printf '  %-20s MISSING (needed by the ORT CUDA provider)\n' "$lib"
      missing=1
    else
      printf '  %-20s not found (optional: dlopened only for ops this model does not use)\n' "$lib"
    fi
  done
  # The driver's library: from the loader's cache, else the usual driver folders.
  if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
    printf '  %-20s %s\n' libcuda.so.1 "$(ldconfig -p | awk '/libcuda\.so\.1 /{print $NF; exit}') (loader cache)"
  else
    found=""
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib/wsl/lib; do
      [ -e "$d/libcuda.so.1" ] && found="$d" && break
    done
    if [ -n "$found" ]; then
      printf '  %-20s %s\n' libcuda.so.1 "$found/libcuda.so.1"
      chosen+=("$found")
    else
      printf '  %-20s MISSING (the NVIDIA driver library: is this a GPU machine?)\n' libcuda.so.1
      missing=1
    fi
  fi
  local joined
  joined=$(IFS=:; echo "${chosen[*]}")
  export LD_LIBRARY_PATH="${joined}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "  LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  [ "$missing" -eq 0 ]
}

find_sanitizer() {
  local s
  for s in "$(command -v compute-sanitizer 2>/dev/null)" /usr/local/cuda/bin/compute-sanitizer \
    /usr/local/cuda-13*/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer \
    /opt/nvidia/compute-sanitizer/compute-sanitizer; do
    [ -n "$s" ] && [ -x "$s" ] && { echo "$s"; return 0; }
  done
  return 1
}

probe() {
  step "probe"
  timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm --format=csv ||
    echo "  nvidia-smi failed or is missing"
  echo "  python3: $(command -v python3) ($(timeout 10 python3 --version 2>&1))"
  echo "  compute-sanitizer: $(find_sanitizer || echo 'not found')"
  echo "  /tmp: $(df -h /tmp | awk 'NR==2{print $4 " free"}'); cores: $(nproc); $(uname -r)"
  local have need
  have=$(ldd --version 2>/dev/null | head -n 1 | grep -oE '[0-9]+\.[0-9]+$')
  need=$(sed -n 's/^pack: needs glibc >= //p' "$base/parts/pack-info.txt" 2>/dev/null)
  echo "  glibc: ${have:-unknown}${need:+ (the pack needs >= $need)}"
  if [ -n "$have" ] && [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1)" != "$need" ]; then
    echo "  GLIBC TOO OLD: the packed addon and plug-in will not load here; stop, give the machine back, and" \
      "build on a system with glibc <= $have"
  fi
  echo "  CUDA libraries:"
  setup_cuda_libs || echo "  a needed CUDA library is missing: the ORT CUDA provider will not load"
}

mode="${1:-}"
case "$mode" in
  receive)
    part="${2:?usage: run.sh receive build-gpu-pack/pN}"
    [ -d "$part" ] || {
      echo "receive: $part is not here: send it beside the working tree with this command" >&2
      exit 1
    }
    src=$(cd "$part" && pwd)
    mkdir -p "$base/parts"
    cp "$src"/* "$base/parts/" || exit 1
    cd "$base/parts" || exit 1
    if [ ! -f manifest.txt ]; then
      echo "receive: stored $(cd "$src" && echo *); no manifest.txt yet (it comes with p1: send p1 too)"
      exit 0
    fi
    if [ -f "$src/pack-info.txt" ]; then cat pack-info.txt; else head -n 1 pack-info.txt 2>/dev/null; fi
    bad=0 missing=""
    while read -r sum name; do
      if [ ! -f "$name" ]; then
        missing="$missing $name"
      elif [ -f "$src/$name" ]; then
        if echo "$sum  $name" | sha256sum -c --quiet - >/dev/null 2>&1; then
          echo "receive: $name ok"
        else
          echo "receive: $name CORRUPT: send $part again"
          bad=1
        fi
      fi
    done <manifest.txt
    if [ -n "$missing" ]; then
      echo "receive: still missing:$missing"
    elif [ "$bad" -eq 0 ]; then
      echo "receive: all parts here: next, run.sh run"
    fi
    # The first part's command started the machine: a quick look at it costs seconds and shows problems early.
    [ -f "$src/manifest.txt" ] && probe
    exit "$bad"
    ;;
  probe)
    probe
    exit 0
    ;;
  run) shift ;;
  *)
    echo "usage: run.sh receive <part-folder> | run [--quick] [--compute fp16] | probe" >&2
    exit 2
    ;;
esac

out="${OUT:-$base/out}"
mkdir -p "$out"

run_all() {
  local failed=0 results=() root="$base/root" bw="" maker="" sanitizer rc
  # --compute fp16 (passed on to bench.mjs) benchmarks the model computing in fp16, kept in its own folder (bench.ts
  # appends -compute-fp16 to --model-dir); the background maker makes that one. Without it: bench-1b, as always.
  local model_dir="$base/bench-1b" maker_args=()
  case " $* " in *" --compute fp16 "*)
    model_dir="$base/bench-1b-compute-fp16"
    maker_args=(--compute fp16)
    ;;
  esac
  step "verify and unpack (budget ${budget} s)"
  cd "$base/parts" 2>/dev/null || {
    echo "no parts received: run.sh receive build-gpu-pack/pN for each part first"
    return 1
  }
  [ -f pack-info.txt ] && cat pack-info.txt
  if ! sha256sum -c manifest.txt; then
    echo "a part is missing or corrupt (above): send those parts again with run.sh receive, then run again"
    return 1
  fi
  if cmp -s manifest.txt "$root/.manifest"; then
    echo "already unpacked from these parts (a rerun): kept, with the 1.1B model if it was made"
  else
    rm -rf "$root" "$base/bench" "$base/bench-1b" "$base/bench-1b-compute-fp16"
    # shellcheck disable=SC2046,SC2002 # the chunk names (chunk.00 ...) have no spaces; cat joins them
    if ! cat $(awk '{print $2}' manifest.txt) | xz -d -T0 | tar -C "$base" -xf -; then
      echo "unpacking failed (disk full? df: $(df -h /tmp | awk 'NR==2{print $4}') free)"
      rm -rf "$root"
      return 1
    fi
    cp manifest.txt "$root/.manifest"
  fi
  cd "$root" || return 1
  results+=("unpack ok")
  [ -f "$base/parts/pack-info.txt" ] || echo "WARNING: a pack without pack-info.txt (older pack.sh): rebuild and re-pack if you can"
  # The plug-in cuda_sampling_test was linked with; a pack from before tests/lib existed falls back to the addon's
  # (same sources, built by the cmake-js build).
  local testlib="$root/tests/lib"
  [ -f "$testlib/libtokmeter_cuda.so" ] || testlib="$root/build/Release"

  step "CUDA libraries for the ONNX Runtime CUDA provider"
  local libs_ok=1
  if setup_cuda_libs; then results+=("libraries ok"); else
    results+=("libraries MISSING (rerun with CUDA_LIB_DIRS=dir1:dir2 once you know where they are)")
    failed=1
    libs_ok=0
  fi
  # The provider and our binaries against this machine's loader: names anything still missing (a library, or a
  # GLIBC/GLIBCXX version this system lacks).
  local f problems
  for f in build/Release/libonnxruntime_providers_cuda.so build/Release/libonnxruntime.so.1 build/Release/tokmeter.node \
    build/Release/libtokmeter_cuda.so tests/cuda_sampling_test tests/cuda_device_errors_test bin/node; do
    problems=$(LD_LIBRARY_PATH="$testlib:$LD_LIBRARY_PATH" ldd "$f" 2>&1 | grep -E 'not found|version .* not found')
    [ -z "$problems" ] || echo "  ldd $f:"$'\n'"$problems"
  done

  if [ -f "$model_dir/made.json" ]; then
    step "the 1.1B model is already made ($model_dir)"
  else
    step "making the 1.1B model in the background (CPU, ~1 min; log: make.log)"
    timeout -k 5 "$(($(left) - 60))" ./bin/node --enable-source-maps dist/gpu/bench.mjs --make-model "$model_dir" \
      ${maker_args[@]+"${maker_args[@]}"} >"$out/make.log" 2>&1 &
    maker=$!
  fi

  step "nvidia-smi"
  timeout 20 nvidia-smi || echo "nvidia-smi failed or is missing"

  step "C++ test: CUDA kernels vs the CPU engine (cuda_sampling_test)"
  # tests/lib holds the libtokmeter_cuda.so this test was linked with (its RUNPATH names the build machine's folder).
  LD_LIBRARY_PATH="$testlib:$LD_LIBRARY_PATH" timeout -k 5 120 ./tests/cuda_sampling_test | tee "$base/sampling.log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    results+=("cuda_sampling_test FAILED (exit $rc)")
    failed=1
  elif grep -q 'SKIPPED' "$base/sampling.log"; then
    results+=("cuda_sampling_test SKIPPED its GPU checks (no usable GPU?)")
    failed=1
  else results+=("cuda_sampling_test ok"); fi

  step "C++ test: device 'cuda' entry points (cuda_device_errors_test), with and without the provider"
  mkdir -p "$base/ort-alone" && cp build/Release/libonnxruntime.so.1 "$base/ort-alone/"
  for ort in "$root/build/Release/libonnxruntime.so.1" "$base/ort-alone/libonnxruntime.so.1"; do
    timeout -k 5 120 ./tests/cuda_device_errors_test "$ort" "$root/build/Release/libtokmeter_cuda.so"
    rc=$?
    if [ "$rc" -eq 0 ]; then results+=("cuda_device_errors_test ($ort) ok"); else
      results+=("cuda_device_errors_test ($ort) FAILED (exit $rc)")
      failed=1
    fi
  done

  if sanitizer=$(find_sanitizer); then
    step "compute-sanitizer memcheck of cuda_sampling_test (at most 90 s; log: sanitizer.log)"
    LD_LIBRARY_PATH="$testlib:$LD_LIBRARY_PATH" timeout -k 5 90 "$sanitizer" --tool memcheck --error-exitcode 86 \
      --print-limit 30 ./tests/cuda_sampling_test >"$out/sanitizer.log" 2>&1
    rc=$?
    tail -n 15 "$out/sanitizer.log"
    case $rc in
      0) results+=("memcheck ok") ;;
      86)
        results+=("memcheck FOUND ERRORS (sanitizer.log)")
        failed=1
        ;;
      124 | 137) results+=("memcheck timed out at 90 s (not a failure)") ;;
      *) results+=("memcheck did not run cleanly (exit $rc; see sanitizer.log; not counted as a failure)") ;;
    esac
    # racecheck (shared-memory races in the reductions) only while the model maker still runs: then it costs nothing.
    if [ -n "$maker" ] && kill -0 "$maker" 2>/dev/null; then
      step "compute-sanitizer racecheck of cuda_sampling_test (at most 60 s; log: racecheck.log)"
      LD_LIBRARY_PATH="$testlib:$LD_LIBRARY_PATH" timeout -k 5 60 "$sanitizer" --tool racecheck \
        --error-exitcode 86 --print-limit 30 ./tests/cuda_sampling_test >"$out/racecheck.log" 2>&1
      rc=$?
      tail -n 5 "$out/racecheck.log"
      case $rc in
        0) results+=("racecheck ok") ;;
        86)
          results+=("racecheck FOUND RACES (racecheck.log)")
          failed=1
          ;;
        124 | 137) results+=("racecheck timed out at 60 s (not a failure)") ;;
        *) results+=("racecheck did not run cleanly (exit $rc; see racecheck.log; not counted as a failure)") ;;
      esac
    fi
  else results+=("memcheck skipped: no compute-sanitizer"); fi

  step "device memory bandwidth (PyTorch, 2 GiB device-to-device copy)"
  bw=$(PYTHONUNBUFFERED=1 timeout -k 5 90 python3 - <<'PY'
import torch
n = 1 << 30  # 2 GiB of fp16 in each buffer
x = torch.rand(n, dtype=torch.float16, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
torch.cuda.synchronize()
times = []
for _ in range(20):
    a = torch.cuda.Event(enable_timing=True); b = torch.cuda.Event(enable_timing=True)
    a.record(); y.copy_(x); b.record(); b.synchronize(); times.append(a.elapsed_time(b) / 1e3)
times.sort()
print(f"{2 * x.numel() * x.element_size() / times[len(times) // 2] / 1e9:.0f}")
PY
  )
  rc=$?
  bw=$(echo "$bw" | tail -n 1)
  if [ "$rc" -eq 0 ] && [[ "$bw" =~ ^[0-9]+$ ]]; then
    echo "bandwidth: $bw GB/s (read + written, median of 20)"
    results+=("bandwidth $bw GB/s")
  else
    echo "bandwidth: not measured (exit $rc; output above); the bench prints no bound"
    results+=("bandwidth not measured")
    bw=""
  fi

  if [ -n "$maker" ] && [ "$libs_ok" -eq 0 ]; then
    # The bench will stop at its CUDA check: no need to wait a minute for the model.
    kill "$maker" 2>/dev/null
    wait "$maker" 2>/dev/null
    echo "model maker stopped: the CUDA libraries are missing, so the bench only reports what is missing"
  elif [ -n "$maker" ]; then
    step "waiting for the 1.1B model"
    wait "$maker"
    rc=$?
    tail -n 5 "$out/make.log"
    [ "$rc" -eq 0 ] || echo "the background model maker failed (exit $rc): the bench makes the model itself"
  fi

  local bench_s=$(($(left) - 10))
  step "bench (${bench_s} s left of the budget)"
  export TOKMETER_ORT_LIBRARY="$root/build/Release/libonnxruntime.so.1"
  export TOKMETER_CUDA_PLUGIN="$root/build/Release/libtokmeter_cuda.so"
  if [ "$bench_s" -lt 60 ]; then
    results+=("bench NOT RUN: only ${bench_s} s left")
    failed=1
  else
    timeout -k 5 "$bench_s" ./bin/node --enable-source-maps dist/gpu/bench.mjs --out "$base/bench" --model-dir "$base/bench-1b" \
      --summary "$out/summary.txt" --deadline-s $((bench_s - 15)) ${bw:+--bandwidth-gbps "$bw"} "$@"
    rc=$?
    case $rc in
      0) results+=("bench ok") ;;
      3) results+=("bench: some configurations failed or were skipped (summary.txt)") ;;
      124 | 137)
        results+=("bench KILLED at ${bench_s} s (summary.txt holds what was measured)")
        failed=1
        ;;
      *)
        results+=("bench FAILED (exit $rc; summary.txt)")
        failed=1
        ;;
    esac
    [ "$failed" -eq 0 ] && [ "$rc" -eq 3 ] && failed=3
  fi

  step "results"
  printf '  %s\n' "${results[@]}"
  {
    echo "run.sh results (exit $failed):"
    printf '  %s\n' "${results[@]}"
  } >>"$out/summary.txt"
  return "$failed"
}

# Everything goes to the screen and to $out/run.log as it is printed, so a run stopped by a time limit
# still leaves its log.
run_all "$@" 2>&1 | tee "$out/run.log"
status=${PIPESTATUS[0]}
echo "== [$(elapsed) s] done (exit $status)" | tee -a "$out/run.log"
exit "$status"
