#!/usr/bin/env bash
# Load benchmark: POST /v1/auth/validate (API key + SQLite lookups + rate limiter +
# origin check) against POST /v1/bench/trivial (a handler doing nothing) in the same
# server process and the same run, with wrk (Debian package, installed here if missing).
# Prints requests/s, p50/p99 and the validate/trivial ratio, then p50/p99 of validate
# at about half its peak rate. Not part of CI. Usage: server/bench.sh [seconds]
# BENCH_BIN=path/to/securesign-server skips the build and uses that binary (default: the
# `bench` profile — full speed, unlike the size-tuned release profile of the app).
set -euo pipefail
DURATION="${1:-10}"
CONNS=32
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

if ! command -v wrk >/dev/null; then
  apt-get install -y wrk >/dev/null
fi
if [ -n "${BENCH_BIN:-}" ]; then
  BIN="$BENCH_BIN"
else
  cargo build --profile bench -p securesign-server --manifest-path "$ROOT/Cargo.toml" >&2
  BIN="$ROOT/target/release/securesign-server"
fi

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

DB="$WORK/bench.db"
TENANT="$("$BIN" --db "$DB" tenant create --name "Bench Portal" 2>/dev/null)"
"$BIN" --db "$DB" domain add --tenant "$TENANT" https://portal.example.gov.in >/dev/null
KEY="$("$BIN" --db "$DB" key create --tenant "$TENANT" --mode live --rpm 1000000 2>/dev/null)"

RUST_LOG=warn "$BIN" --db "$DB" serve --listen 127.0.0.1:0 --bench-routes >"$WORK/out" 2>"$WORK/err" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/out" 2>/dev/null && break; sleep 0.1; done
ADDR="$(sed -n 's/^listening on //p' "$WORK/out")"
BASE="http://$ADDR"

cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"origin":"https://portal.example.gov.in","platform":"web"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if delay_ms > 0 then function delay() return delay_ms end end
LUA

# run NAME PATH -> sets RPS P50 P99 (latencies in ms)
run() {
  local out
  out="$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$BASE$2")"
  RPS="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  P50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  P99="$(awk '$1=="99%" {print $2}' <<<"$out")"
  local non2xx
  non2xx="$(awk '/Non-2xx/ {print $5}' <<<"$out")"
  if [ -n "$non2xx" ]; then echo "warning: $1 had $non2xx non-2xx answers" >&2; fi
  printf '%-22s %10s req/s   p50 %9s   p99 %9s\n' "$1" "$RPS" "$P50" "$P99"
}

curl -fsS -X POST "$BASE/v1/auth/validate" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' -d '{"origin":"https://portal.example.gov.in","platform":"web"}' >/dev/null

echo "wrk: 1 thread, $CONNS connections, ${DURATION}s each, release build, 2-core machine"
run "trivial (baseline)" /v1/bench/trivial
TRIVIAL_RPS="$RPS"
run "validate" /v1/auth/validate
VALIDATE_RPS="$RPS"
awk -v v="$VALIDATE_RPS" -v t="$TRIVIAL_RPS" 'BEGIN {printf "ratio validate/trivial: %.2f (target >= 0.8)\n", v / t}'

# Half of validate's peak: each connection waits delay_ms between requests.
DELAY_MS="$(awk -v v="$VALIDATE_RPS" -v c="$CONNS" 'BEGIN {d = c * 1000 / (v / 2); if (d < 1) d = 1; printf "%d", d + 0.5}')"
WRK_DELAY_MS="$DELAY_MS" run "validate @ ~half peak" /v1/auth/validate
echo "(half-peak run: ${DELAY_MS} ms pause per connection; target p99 <= 2 ms)"
