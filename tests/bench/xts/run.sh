#!/usr/bin/env bash
# Compares XtsSectorTransform with `openssl speed` on this machine and prints
# a markdown table of bytes/s and ratios to stdout.
#
#   tests/bench/xts/run.sh [path/to/xts_bench]
#
# Default binary: build/tests/bench/xts/xts_bench (cmake --build build
# --target xts_bench). OPENSSL_SECONDS (default 3) and BENCH_MIN_TIME
# (default 2, seconds per case) tune the run length.
#
# openssl speed is run before AND after the benchmark binary and the higher
# figure is the baseline, so a neighbour (a VM, a build) that slows only one
# of the two runs makes the ratios pessimistic, never optimistic. Goals:
# 1 thread >= 0.95 x openssl, 2 threads >= 1.9 x openssl (single-threaded).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bench=${1:-$here/../../../build/tests/bench/xts/xts_bench}
osecs=${OPENSSL_SECONDS:-3}
min_time=${BENCH_MIN_TIME:-2}

[ -x "$bench" ] || { echo "run.sh: no benchmark binary at $bench" >&2; exit 2; }

openssl_bps() {
  openssl speed -evp aes-256-xts -bytes 4096 -seconds "$osecs" 2>/dev/null |
    awk '/^AES-256-XTS/ { v = $2; sub(/k$/, "", v); printf "%.0f\n", v * 1000 }'
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

ossl_before=$(openssl_bps)
"$bench" --benchmark_format=json --benchmark_min_time="$min_time" \
  >"$tmp" 2>/dev/null
ossl_after=$(openssl_bps)

python3 - "$tmp" "$ossl_before" "$ossl_after" <<'PY'
import json, os, sys

path, before, after = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
with open(path) as f:
    data = json.load(f)
bps = {b["name"]: b["bytes_per_second"] for b in data["benchmarks"]
       if "bytes_per_second" in b}
ossl = max(before, after)

def gbs(v):
    return f"{v / 1e9:.2f}"

def row(label, v, goal=""):
    print(f"| {label} | {gbs(v)} | {v / ossl:.3f} | {goal} |")

ctx = data.get("context", {})
print(f"Host: {os.uname().nodename}, {ctx.get('num_cpus', '?')} CPUs, "
      f"{ctx.get('mhz_per_cpu', '?')} MHz; load average "
      f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
print(f"openssl speed: {gbs(before)} GB/s before, {gbs(after)} GB/s after "
      f"(baseline = higher)")
print()
print("| case (4 KiB sectors, 64 MiB buffer) | GB/s | / openssl | goal |")
print("|---|---:|---:|---|")
row("openssl speed -evp aes-256-xts -bytes 4096", ossl)
names = [
    ("BM_RawEvpSameIv/real_time", "raw EVP, no per-sector init (as openssl speed)", ""),
    ("BM_RawEvpIvOnly/real_time", "raw EVP, keyed once, IV per sector", ""),
    ("BM_RawEvpRekeyPerSector/real_time", "raw EVP, key + IV per sector", ""),
    ("BM_Transform/threads:1/encrypt:1/real_time", "XtsSectorTransform 1 thread, encrypt", ">= 0.95"),
    ("BM_Transform/threads:1/encrypt:0/real_time", "XtsSectorTransform 1 thread, decrypt", ">= 0.95"),
    ("BM_Transform/threads:2/encrypt:1/real_time", "XtsSectorTransform 2 threads, encrypt", ">= 1.9"),
    ("BM_Transform/threads:2/encrypt:0/real_time", "XtsSectorTransform 2 threads, decrypt", ">= 1.9"),
]
for key, label, goal in names:
    if key in bps:
        row(label, bps[key], goal)
    else:
        print(f"| {label} | missing ({key}) | | {goal} |")
PY
