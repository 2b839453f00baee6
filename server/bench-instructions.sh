#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind, for the benchmark's routes:
# POST /v1/bench/trivial, /v1/auth/validate and /v1/bench/parse (the same server and key
# setup as server/bench.sh). Unlike requests/s, the count does not move with the load or
# the speed of a shared host, so it shows what a code change does to the request path
# (user space only: system calls are not counted). Under valgrind SHA-256 runs in
# software, about 3,200 instructions more per validate than the SHA-NI path the real
# server takes. Not part of CI.
#
# Usage: server/bench-instructions.sh [seconds per route (default 3)] [sqlite|postgres]
#   postgres: the server on a private PostgreSQL cluster (server/tests/with-postgres.sh
#   starts and stops it around this script), its rate limit counted in process
#   (--rate-limit-scope per-instance), as bench.sh's postgres mode.
# BENCH_BIN=path/to/securesign-server skips the build (default: the `bench` profile).
set -euo pipefail
DURATION="${1:-3}"
DATABASE="${2:-sqlite}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
case "$DATABASE" in sqlite | postgres) ;; *) echo "usage: $0 [seconds] [sqlite|postgres]" >&2; exit 2 ;; esac
if [ "$DATABASE" = postgres ] && [ -z "${SECURESIGN_TEST_POSTGRES_URL:-}" ]; then
  exec "$ROOT/server/tests/with-postgres.sh" "$0" "$@"
fi
for tool in valgrind callgrind_control wrk; do
  if ! command -v "$tool" >/dev/null; then
    apt-get install -y valgrind wrk >/dev/null
    break
  fi
done
# shellcheck source=server/bench-common.sh
. "$ROOT/server/bench-common.sh"
bench_binary
bench_setup
if [ "$DATABASE" = postgres ]; then
  bench_postgres_setup
  BENCH_KEY="$(new_pg_key)"
  SERVER_ARGS=("${PGARGS[@]}" serve --rate-limit-scope per-instance)
else
  BENCH_KEY="$(new_key)"
  SERVER_ARGS=(--db "$DB" serve)
fi
export BENCH_KEY

RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" \
  "$BIN" "${SERVER_ARGS[@]}" --listen 127.0.0.1:0 --bench-routes >"$WORK/out" 2>"$WORK/err" &
SERVER_PID=$!
for _ in $(seq 300); do grep -q "listening on" "$WORK/out" 2>/dev/null && break; sleep 0.2; done
BASE="http://$(sed -n 's/^listening on //p' "$WORK/out")"

ROUTES=(/v1/bench/trivial /v1/auth/validate /v1/bench/parse)
for route in "${ROUTES[@]}"; do # warm-up: caches, the key cache, allocator pools
  wrk -t1 -c8 -d2s -s "$WORK/post.lua" "$BASE$route" >/dev/null
done
for route in "${ROUTES[@]}"; do
  callgrind_control -z "$SERVER_PID" >/dev/null 2>&1
  out="$(wrk -t1 -c8 -d"${DURATION}s" -s "$WORK/post.lua" "$BASE$route")"
  rm -f "$WORK"/cg.out.*
  callgrind_control -d "$SERVER_PID" >/dev/null 2>&1
  for _ in $(seq 50); do ls "$WORK"/cg.out.* >/dev/null 2>&1 && break; sleep 0.1; done
  sleep 0.2
  requests="$(awk '/requests in/ {print $1}' <<<"$out")"
  total="$(awk '/^summary:|^totals:/ {print $2; exit}' "$(ls -t "$WORK"/cg.out.* | head -1)")"
  awk -v r="$route" -v n="$requests" -v t="$total" \
    'BEGIN {printf "%-22s %8d requests  %8.0f instructions per request\n", r, n, t / n}'
done
