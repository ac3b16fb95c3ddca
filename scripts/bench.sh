#!/usr/bin/env bash
# The CPU benchmarks, run by hand (not in CI): machine ceilings, the 125m model
# in float32 and bfloat16 beside its rooflines, and the tokenizer's MB/s.
# Figures go to bench/RESULTS.md by hand, with this command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
B=${FOX_BUILD_DIR:-build}/bin
echo "== model (125m, CPU) =="
"$B/model_bench" "$@"
echo
echo "== tokenizer =="
"$B/tokenizer_bench" --benchmark_min_time=1
