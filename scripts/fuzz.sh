#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang-14, ASan and UBSan into
# build-fuzz/ and runs each over its corpus.
#
#   scripts/fuzz.sh [--ci] [TARGET...]   every target (or those named, e.g.
#        tokenizer) for a bounded time: about 5 minutes in all on 2 cores,
#        the build included (each target gets an equal share of what the
#        build left of FOX_FUZZ_BUDGET=300 s, at least 20 s)
#   scripts/fuzz.sh --long [TARGET...]   each target, one after another, for
#        10 minutes or 1,000,000 executions, whichever comes first
#   scripts/fuzz.sh --build              only configure and build
#
# Per target it prints executions, exec/s, coverage (cov: edges, ft:
# features, from libFuzzer's final stats line), corpus size and time. A crash,
# leak, timeout or out-of-memory input makes the script exit non-zero; the
# input is kept as build-fuzz/artifacts/<target>/crash-* (or leak-, timeout-,
# oom-) and the log as build-fuzz/logs/<target>.log. Reproduce with
#   build-fuzz/fuzz/<target>_fuzzer build-fuzz/artifacts/<target>/crash-...
# New corpus entries go to build-fuzz/corpus/<target>/ (kept between runs);
# the committed seeds in fuzz/corpus/<target>/ are only read.
# Environment: FOX_FUZZ_SECONDS (seconds per target, overrides the budget),
# FOX_FUZZ_JOBS (targets run side by side; default: cores for --ci, 1 for --long).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=build-fuzz

MODE=ci
case "${1:-}" in
  --ci) shift ;;
  --long) MODE=long; shift ;;
  --build) MODE=build; shift ;;
  -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
esac

seconds() { date +%s; }
start_all=$(seconds)

CC_BIN=${FOX_FUZZ_CC:-clang-14}
CXX_BIN=${FOX_FUZZ_CXX:-clang++-14}
CMAKE_ARGS=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFOX_BUILD_FUZZERS=ON
            -DFOX_SANITIZE=address,undefined -DFOX_ENABLE_CUDA=OFF
            -DCMAKE_C_COMPILER="$CC_BIN" -DCMAKE_CXX_COMPILER="$CXX_BIN"
            -DCMAKE_CXX_FLAGS=-fno-sanitize-recover=all)
if command -v ccache > /dev/null; then
  export CCACHE_BASEDIR="$ROOT"
  CMAKE_ARGS+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
mkdir -p "$BUILD"
cmake -S . -B "$BUILD" "${CMAKE_ARGS[@]}" > "$BUILD/configure.log" 2>&1 ||
  { cat "$BUILD/configure.log"; exit 1; }
nice -n 10 cmake --build "$BUILD" -j "$(nproc)" --target fox_fuzzers
build_s=$(($(seconds) - start_all))
echo "fuzz: configured and built in ${build_s} s"
[[ $MODE == build ]] && exit 0

if [[ $# -gt 0 ]]; then
  TARGETS=("$@")
else
  TARGETS=()
  for source in fuzz/*_fuzzer.cc; do
    name=$(basename "$source" .cc)
    TARGETS+=("${name%_fuzzer}")
  done
fi

# Longest input per target: enough for every structure the target parses,
# short enough for thousands of executions a second.
max_len() {
  case $1 in
    tokenizer | incremental_detokenizer | json_escape) echo 1024 ;;
    grpc_request) echo 2048 ;;
    *) echo 4096 ;;
  esac
}

if [[ $MODE == long ]]; then
  JOBS=${FOX_FUZZ_JOBS:-1}
  LIMITS=(-max_total_time="${FOX_FUZZ_SECONDS:-600}" -runs=1000000)
else
  JOBS=${FOX_FUZZ_JOBS:-$(nproc)}
  budget=${FOX_FUZZ_BUDGET:-300}
  per_target=$(( (budget - build_s) * JOBS / ${#TARGETS[@]} ))
  ((per_target < 20)) && per_target=20
  LIMITS=(-max_total_time="${FOX_FUZZ_SECONDS:-$per_target}")
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export OMP_NUM_THREADS=1
mkdir -p "$BUILD/logs" "$BUILD/artifacts" "$BUILD/corpus"

run_target() {  # name
  local name=$1 binary="$BUILD/fuzz/$1_fuzzer" seeds="fuzz/corpus/$1"
  local work="$BUILD/corpus/$name" artifacts="$BUILD/artifacts/$name/" log="$BUILD/logs/$name.log"
  [[ -x $binary ]] || { echo "fuzz: no target $name ($binary)" > "$log"; return 1; }
  mkdir -p "$work" "$artifacts" "$seeds"
  local dict=()
  [[ -f fuzz/dicts/$name.dict ]] && dict=(-dict="fuzz/dicts/$name.dict")
  local start status=0
  start=$(seconds)
  nice -n 10 "$binary" "${LIMITS[@]}" -max_len="$(max_len "$name")" -timeout=10 \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$artifacts" "${dict[@]}" \
    "$work" "$seeds" > "$log" 2>&1 || status=$?
  echo "fuzz: $name exit $status after $(($(seconds) - start)) s" >> "$log"
  return $status
}
export -f run_target max_len seconds
export BUILD
LIMITS_STRING="${LIMITS[*]}"

echo "fuzz: ${#TARGETS[@]} targets, $JOBS at a time, ${LIMITS_STRING}"
failed=0
printf '%s\n' "${TARGETS[@]}" |
  LIMITS_STRING="$LIMITS_STRING" xargs -P "$JOBS" -I{} bash -c \
    'LIMITS=($LIMITS_STRING); run_target "$1" || exit 255' _ {} || failed=1

printf '\n%-24s %10s %8s %6s %7s %12s %6s  %s\n' target runs exec/s cov ft corpus time result
for name in "${TARGETS[@]}"; do
  log="$BUILD/logs/$name.log"
  final=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  [[ -z $final ]] && final=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$final")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$final")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<< "$final")
  runs=$(sed -n 's/^stat::number_of_executed_units: //p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: //p' "$log" | tail -1)
  took=$(sed -n 's/^fuzz: .* after \([0-9]*\) s$/\1/p' "$log" | tail -1)
  status=$(sed -n 's/^fuzz: .* exit \([0-9]*\) after.*/\1/p' "$log" | tail -1)
  result=ok
  if [[ $status != 0 ]]; then
    result="FAILED (exit ${status:-?}): $(ls "$BUILD/artifacts/$name" 2>/dev/null | head -3 | tr '\n' ' ')"
    failed=1
  fi
  printf '%-24s %10s %8s %6s %7s %12s %5ss  %s\n' "$name" "${runs:-?}" "${rate:-?}" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "${took:-?}" "$result"
done
echo "fuzz: done in $(($(seconds) - start_all)) s (build ${build_s} s); logs in $BUILD/logs/"
if ((failed)); then
  echo "fuzz: FAILED; inputs in $BUILD/artifacts/, logs in $BUILD/logs/" >&2
fi
exit $failed
