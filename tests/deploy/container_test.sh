#!/usr/bin/env bash
# Builds the CPU runtime image of deploy/Containerfile with buildah from the
# host's build (its `prebuilt` stage, so nothing compiles in the image), runs
# it with podman and checks it as a user would: the server comes up as the
# non-root user, streams a completion over SSE, has its healthcheck, and exits
# 0 on SIGTERM.
#
#   bash tests/deploy/container_test.sh [BUILD_DIR]
#
# BUILD_DIR (default $FOX_BUILD_DIR or build/) must hold a built foxserve and
# its embedded model. Exits 77 (ctest's skip) when buildah, podman or
# debootstrap is missing or when not run as root. The runtime base image,
# localhost/debian:12-slim, is made once with debootstrap and kept, with the
# image storage (vfs), under $FOX_CONTAINER_STATE (/var/tmp/foxserve-containers).
set -euo pipefail

src_dir=$(cd "$(dirname "$0")/../.." && pwd)
build_dir=$(cd "${1:-${FOX_BUILD_DIR:-$src_dir/build}}" && pwd)
state=${FOX_CONTAINER_STATE:-/var/tmp/foxserve-containers}
base_image=localhost/debian:12-slim
image=localhost/foxserve:test
debian_mirror=${FOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}

skip() {
  echo "container_image: SKIPPED: $*" >&2
  exit 77
}
log() { echo "[container_test $(date +%T)] $*"; }

for tool in buildah podman debootstrap curl python3; do
  command -v "$tool" >/dev/null || skip "$tool not installed: skipping (scripts/setup.sh installs it)"
done
[ "$(id -u)" = 0 ] || skip "not root: skipping (the test runs buildah and podman rootful)"
# runc handles the cgroup v1 and hybrid hierarchies that crun refuses.
runtime=
for r in runc crun; do
  if command -v "$r" >/dev/null; then runtime=$(command -v "$r"); break; fi
done
[ -n "$runtime" ] || skip "neither runc nor crun installed: skipping"

started=$(date +%s)
mkdir -p "$state"
# One run at a time on this machine: the image storage is shared.
exec 9>"$state/lock"
flock 9

store=(--root "$state/storage" --runroot "$state/run" --storage-driver vfs)
buildah_() { buildah "${store[@]}" "$@"; }
podman_() {
  podman "${store[@]}" --runtime "$runtime" --cgroup-manager cgroupfs \
    --events-backend file "$@"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/foxserve-container.XXXXXX")
container=foxserve-test-$$
cleanup() {
  podman_ rm -f -t 0 "$container" >/dev/null 2>&1 || true
  buildah_ rmi "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- the runtime base: Debian 12 minbase from debootstrap, kept ------------
if ! buildah_ images --quiet "$base_image" >/dev/null 2>&1; then
  log "making $base_image with debootstrap (once; kept in $state)"
  rootfs="$state/rootfs.tmp"
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$debian_mirror" > "$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log"; echo "debootstrap failed" >&2; exit 1; }
  # What debian:12-slim leaves out: package caches and lists, docs, manuals.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  tar -C "$rootfs" --numeric-owner -c . \
    | podman_ import --change 'CMD ["bash"]' - "$base_image" >/dev/null
  rm -rf "$rootfs"
fi
log "base image $base_image ready"

# --- stage the host's install tree, build the image -----------------------
ctx="$work/context"
cmake --install "$build_dir" --prefix "$ctx/opt/foxserve" > "$work/install.log"
test -x "$ctx/opt/foxserve/bin/foxserve"
test -f "$ctx/opt/foxserve/share/foxserve/models/fox-tiny/config.json"
log "staged $(du -sh "$ctx" | cut -f1) from $build_dir; building $image"
# --format docker: the OCI format has no field for the HEALTHCHECK. No
# --layers: on vfs every cached layer is a full copy of the root filesystem.
buildah_ bud --isolation chroot --format docker --pull=never \
  --build-arg RUNTIME_BASE="$base_image" --build-arg BUILD_BASE="$base_image" \
  --target prebuilt -t "$image" -f "$src_dir/deploy/Containerfile" "$ctx" \
  > "$work/bud.log" 2>&1 \
  || { tail -n 40 "$work/bud.log"; echo "buildah bud failed" >&2; exit 1; }
log "built $image"

inspect() { podman_ image inspect --format "$1" "$image"; }
[ "$(inspect '{{.Config.User}}')" = "10001:10001" ] \
  || { echo "image user: $(inspect '{{.Config.User}}'), want 10001:10001" >&2; exit 1; }
[ "$(inspect '{{json .Config.Entrypoint}}')" = '["foxserve","serve","--host","0.0.0.0"]' ] \
  || { echo "image entrypoint: $(inspect '{{json .Config.Entrypoint}}')" >&2; exit 1; }
[ "$(inspect '{{.Config.StopSignal}}')" = SIGTERM ] \
  || { echo "image stop signal: $(inspect '{{.Config.StopSignal}}')" >&2; exit 1; }
healthcheck=$(inspect '{{json .HealthCheck}}')
case "$healthcheck" in
  *curl*/health*) ;;
  *) echo "image healthcheck: $healthcheck, want curl on /health" >&2; exit 1 ;;
esac
for port in 8000 50051; do
  inspect '{{json .Config.ExposedPorts}}' | grep -q "\"$port/tcp\"" \
    || { echo "image does not expose $port" >&2; exit 1; }
done

# --- run it ---------------------------------------------------------------
read -r http_port grpc_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
# Podman raises the container's open-file and process limits by default,
# which a sandboxed machine may refuse: ask for no more than this shell has.
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] && nofile=65536
{ [ "$nproc" = unlimited ] || [ "$nproc" -gt 8192 ]; } && nproc=8192
# No healthcheck timer (that needs systemd); `podman healthcheck run` below
# runs the image's check by hand.
podman_ run -d --name "$container" --network host \
  --ulimit nofile="$nofile:$nofile" --ulimit nproc="$nproc:$nproc" \
  --health-interval disable \
  -e FOXSERVE_HTTP_PORT="$http_port" -e OMP_WAIT_POLICY=passive \
  "$image" --http-port "$http_port" --grpc-port "$grpc_port" \
  --threads 1 --kv-cache-memory 256MiB > /dev/null 2> "$work/run.err" \
  || { cat "$work/run.err" >&2; echo "podman run failed" >&2; exit 1; }
log "started $container (HTTP $http_port, gRPC $grpc_port)"
base_url="http://127.0.0.1:$http_port"
fail() {
  echo "FAIL: $*" >&2
  echo "--- container log ---" >&2
  podman_ logs "$container" >&2 || true
  exit 1
}
for _ in $(seq 1 240); do
  curl -fsS -o /dev/null "$base_url/health" 2>/dev/null && break
  [ "$(podman_ inspect --format '{{.State.Running}}' "$container")" = true ] \
    || fail "the container exited before /health answered"
  sleep 0.5
done
curl -fsS -o /dev/null "$base_url/health" || fail "/health did not answer within 120 s"
podman_ logs "$container" 2>/dev/null | grep -q '"event":"serving"' \
  || fail "no serving line in the container's log"
log "/health answers"

# PID 1 of the container is foxserve, running as the non-root user.
pid1_uid=$(podman_ exec "$container" awk '/^Uid:/ {print $2}' /proc/1/status)
[ "$pid1_uid" = 10001 ] || fail "foxserve runs as uid $pid1_uid, want 10001"
[ "$(podman_ exec "$container" id -u)" = 10001 ] || fail "exec runs as $(podman_ exec "$container" id -u)"
podman_ exec "$container" cat /proc/1/cmdline | tr '\0' ' ' | grep -q '^foxserve serve --host 0.0.0.0 ' \
  || fail "PID 1 is not foxserve serve"

# The healthcheck command itself passes against the running server.
podman_ healthcheck run "$container" || fail "podman healthcheck run failed"

# A streamed completion.
curl -fsSN --max-time 120 "$base_url/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model": "fox-tiny", "prompt": "The forget gate decides", "max_tokens": 4,
       "temperature": 0, "stream": true}' > "$work/sse.txt" \
  || fail "the streamed completion failed"
grep -v '^$' "$work/sse.txt" | tail -n 1 | grep -qx 'data: \[DONE\]' \
  || { cat "$work/sse.txt" >&2; fail "the stream does not end with data: [DONE]"; }
grep -q '^data: {.*"text":"[^"]' "$work/sse.txt" \
  || { cat "$work/sse.txt" >&2; fail "no data: chunk with text in the stream"; }
log "streamed $(grep -c '^data: {' "$work/sse.txt") chunks ending with data: [DONE]"

# SIGTERM (the image's stop signal) drains and exits 0.
podman_ stop -t 40 "$container" > /dev/null 2> "$work/stop.err" \
  || { cat "$work/stop.err" >&2; fail "podman stop failed"; }
exit_code=$(podman_ inspect --format '{{.State.ExitCode}}' "$container")
[ "$exit_code" = 0 ] || fail "foxserve exited $exit_code on SIGTERM, want 0"
log "stopped with SIGTERM: exit 0"

echo "container_image: PASSED in $(( $(date +%s) - started )) s"
