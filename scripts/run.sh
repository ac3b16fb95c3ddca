#!/usr/bin/env bash
# Sets up, builds, and serves the embedded default model: OpenAI-compatible
# HTTP on 127.0.0.1:8000 and gRPC on 127.0.0.1:50051 until Ctrl-C / SIGTERM.
# Extra arguments go to `foxserve serve` (e.g. --host 0.0.0.0 --http-port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >&2
exec "${FOX_BUILD_DIR:-build}/bin/foxserve" serve "$@"
