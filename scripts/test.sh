#!/usr/bin/env bash
# Sets up, builds, and runs the whole test suite through ctest. Tests labelled
# `gpu` skip, loudly, where no GPU answers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd "${FOX_BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)" --timeout 1200
