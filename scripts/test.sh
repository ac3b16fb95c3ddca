#!/usr/bin/env bash
# Sets up, builds, and runs the whole test suite through ctest. Tests labelled
# `gpu` skip, loudly, where no GPU answers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd "${FOX_BUILD_DIR:-build}"
# Tests run side by side, more OpenMP threads than cores: threads that sleep
# at barriers instead of spinning keep that from slowing every test tenfold.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
ctest --output-on-failure -j "$(nproc)" --timeout 1200
