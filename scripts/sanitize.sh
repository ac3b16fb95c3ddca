#!/usr/bin/env bash
# Builds the C++ test suites with sanitizers and runs them through ctest.
#
#   scripts/sanitize.sh          ASan+UBSan (build-asan): every C++ suite;
#                                then TSan (build-tsan): engine_tests,
#                                http_tests, grpc_tests
#   scripts/sanitize.sh --ci     ASan+UBSan on the unit suites only (no
#                                subprocess/end-to-end tests; see CI_EXCLUDE)
#   scripts/sanitize.sh --asan | --tsan   one half of the full run
#
# Any sanitizer report fails the test it comes from (UBSan made fatal with
# -fno-sanitize-recover=all; ASan and TSan exit non-zero), and so the script.
# JavaScript, deployment, container and GPU tests are never run here.
# Extra arguments after the mode go to ctest (e.g. -R BlockPool).
# Compiler: $CXX (default g++); ccache when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

MODE=full
case "${1:-}" in
  --ci) MODE=ci; shift ;;
  --asan) MODE=asan; shift ;;
  --tsan) MODE=tsan; shift ;;
  --full) shift ;;
  -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
esac
JOBS=${FOX_SANITIZE_JOBS:-$(nproc)}

# Not C++ suites, or not for this machine: the Node clients, the deployment
# files, the container image, the GPU kernels.
NON_CXX_LABELS='e2e|bench-client|deploy|container|gpu'
# --ci: end-to-end tests of C++ suites that start `foxserve` processes
# (minutes each under ASan) and the long randomized/streaming soaks.
CI_EXCLUDE='^(GenerateCliTest|TokenizeCliTest|HttpManyStreams)\.|_NOT_BUILT$'

CMAKE_ARGS=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFOX_ENABLE_CUDA=OFF)
if command -v ccache > /dev/null; then
  export CCACHE_BASEDIR="$ROOT"
  CMAKE_ARGS+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
[[ -n "${CXX:-}" ]] && CMAKE_ARGS+=(-DCMAKE_CXX_COMPILER="$CXX")

# Tests run side by side with more OpenMP threads than cores (as test.sh).
export OMP_WAIT_POLICY=passive
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1:history_size=4:suppressions=$ROOT/scripts/tsan.supp}"

seconds() { date +%s; }

build() {  # dir sanitizers targets...
  local dir=$1 sanitize=$2
  shift 2
  local start
  start=$(seconds)
  cmake -S . -B "$dir" "${CMAKE_ARGS[@]}" -DFOX_SANITIZE="$sanitize" \
    -DCMAKE_CXX_FLAGS="-fno-sanitize-recover=all" > "$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; return 1; }
  nice -n 10 cmake --build "$dir" -j "$JOBS" --target "$@"
  echo "sanitize: built $dir in $(($(seconds) - start)) s"
}

run_ctest() {  # dir ctest-args...
  local dir=$1 start
  shift
  start=$(seconds)
  local status=0
  (cd "$dir" && ctest --output-on-failure -j "$JOBS" --timeout 1800 -LE "$NON_CXX_LABELS" "$@") ||
    status=$?
  echo "sanitize: ctest in $dir took $(($(seconds) - start)) s (exit $status)"
  return $status
}

failed=0
if [[ $MODE == ci || $MODE == full || $MODE == asan ]]; then
  mkdir -p build-asan
  build build-asan address,undefined kernels_tests models_tests engine_tests server_tests \
    http_tests grpc_tests foxserve fox_embedded_model
  if [[ $MODE == ci ]]; then
    run_ctest build-asan -E "$CI_EXCLUDE" "$@" || failed=1
  else
    run_ctest build-asan -E '_NOT_BUILT$' "$@" || failed=1
  fi
fi
if [[ $MODE == full || $MODE == tsan ]]; then
  mkdir -p build-tsan
  build build-tsan thread engine_tests http_tests grpc_tests fox_embedded_model
  # Only these three suites are built; ctest lists the others as _NOT_BUILT.
  # libgomp is not TSan-instrumented, so its barriers look like no
  # synchronisation at all: the kernels run on one OpenMP thread here (the
  # engine, HTTP and gRPC threads are what this run is about).
  OMP_NUM_THREADS=1 run_ctest build-tsan -E '_NOT_BUILT$' "$@" || failed=1
fi
exit $failed
