#!/usr/bin/env bash
# Sets up, builds, and runs foxserve's main job on the embedded default model.
# Extra arguments go to `foxserve generate`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >&2
if (($# == 0)); then
  set -- --prompt "The forget gate decides" --max-tokens 24 --temperature 0
fi
exec "${FOX_BUILD_DIR:-build}/bin/foxserve" generate "$@"
