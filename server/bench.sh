#!/usr/bin/env bash
# Load benchmark: POST /v1/auth/validate (API key + key cache freshness check + rate
# limiter + origin check) against POST /v1/bench/trivial (a handler answering a fixed
# small JSON body, behind the same global layers) in the same server process and the
# same run, with wrk (Debian package, installed here if missing). Prints requests/s,
# p50/p99 and the validate/trivial ratio, then p50/p99 of validate at about half its
# peak rate. Also measures, for information, POST /v1/bench/parse (the trivial answer
# after reading and parsing the same body), which splits validate's extra cost into
# "reading a request body" and "authenticating". Not part of CI.
#
# Usage: server/bench.sh [seconds (default 8)] [unpinned|pinned|both]
#   unpinned (default): server and wrk share all CPUs, as the scheduler likes.
#   pinned: the server on CPU 0, wrk on CPU 1 (taskset, util-linux), so the two never
#           take cycles from each other; needs at least 2 CPUs.
#   both: one after the other, each with its own server process.
# Trivial and validate alternate for BENCH_ROUNDS rounds (default 5), so a burst of
# load from another process hits both; each round's ratio is printed, then the median.
# BENCH_BIN=path/to/securesign-server skips the build and uses that binary (default: the
# `bench` profile — full speed, unlike the size-tuned release profile of the app).
set -euo pipefail
DURATION="${1:-8}"
SETUP="${2:-unpinned}"
ROUNDS="${BENCH_ROUNDS:-5}"
CONNS=32
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

case "$SETUP" in
  unpinned | pinned) SETUPS=("$SETUP") ;;
  both) SETUPS=(unpinned pinned) ;;
  *) echo "usage: $0 [seconds] [unpinned|pinned|both]" >&2; exit 2 ;;
esac
if [ "${SETUPS[-1]}" = pinned ] && [ "$(nproc)" -lt 2 ]; then
  echo "pinned needs at least 2 CPUs (nproc: $(nproc))" >&2
  exit 2
fi

if ! command -v wrk >/dev/null; then
  apt-get install -y wrk >/dev/null
fi
# shellcheck source=server/bench-common.sh
. "$ROOT/server/bench-common.sh"
bench_binary
bench_setup
# A fresh key for each validate run; the warning below says when a run got 429s.
declare -A KEYS
for setup in "${SETUPS[@]}"; do
  for round in $(seq "$ROUNDS"); do KEYS[$setup-peak-$round]="$(new_key)"; done
  KEYS[$setup-half]="$(new_key)"
done

# start_server PREFIX... -> sets SERVER_PID and BASE
start_server() {
  RUST_LOG=warn "$@" "$BIN" --db "$DB" serve --listen 127.0.0.1:0 --bench-routes \
    >"$WORK/out" 2>"$WORK/err" &
  SERVER_PID=$!
  for _ in $(seq 100); do grep -q "listening on" "$WORK/out" 2>/dev/null && break; sleep 0.1; done
  BASE="http://$(sed -n 's/^listening on //p' "$WORK/out")"
  curl -fsS -X POST "$BASE/v1/auth/validate" -H "Authorization: Bearer $BENCH_KEY" \
    -H 'Content-Type: application/json' \
    -d '{"origin":"https://portal.example.gov.in","platform":"web"}' >/dev/null
}

# Server CPU time (user + system) so far, in clock ticks.
server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
CLK_TCK="$(getconf CLK_TCK)"

# run NAME PATH -> sets RPS P50 P99 (latencies as wrk prints them) and CPU_US (server
# CPU time per answered request, in µs: less sensitive to other load than req/s)
run() {
  local out ticks_before ticks_after requests
  ticks_before="$(server_ticks)"
  out="$(BENCH_KEY="$BENCH_KEY" WRK_DELAY_MS="${WRK_DELAY_MS:-0}" "${WRK_PREFIX[@]}" wrk -t1 -c"${CONNS}" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$BASE$2")"
  ticks_after="$(server_ticks)"
  RPS="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  P50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  P99="$(awk '$1=="99%" {print $2}' <<<"$out")"
  requests="$(awk '/requests in/ {print $1}' <<<"$out")"
  CPU_US="$(awk -v a="$ticks_before" -v b="$ticks_after" -v t="$CLK_TCK" -v n="$requests" \
    'BEGIN {printf "%.2f", (b - a) / t * 1e6 / n}')"
  local non2xx
  non2xx="$(awk '/Non-2xx/ {print $5}' <<<"$out")"
  if [ -n "$non2xx" ]; then echo "warning: $1 had $non2xx non-2xx answers" >&2; fi
  printf '%-22s %10s req/s   p50 %9s   p99 %9s   server CPU %6s us/req\n' "$1" "$RPS" "$P50" "$P99" "$CPU_US"
}

for setup in "${SETUPS[@]}"; do
  if [ "$setup" = pinned ]; then
    SERVER_PREFIX=(taskset -c 0)
    WRK_PREFIX=(taskset -c 1)
    WHERE="pinned: server on CPU 0, wrk on CPU 1 (taskset)"
  else
    SERVER_PREFIX=(env)
    WRK_PREFIX=(env)
    WHERE="unpinned: server and wrk share all $(nproc) CPUs"
  fi
  export BENCH_KEY="${KEYS[$setup-peak-1]}"
  start_server "${SERVER_PREFIX[@]}"
  echo "== setup: $WHERE"
  echo "wrk: 1 thread, $CONNS connections, ${DURATION}s per run, $ROUNDS rounds, bench build; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  RATIOS=()
  VALIDATE_RATES=()
  CPU_RATIOS=()
  for round in $(seq "$ROUNDS"); do
    BENCH_KEY="${KEYS[$setup-peak-$round]}"
    run "trivial (baseline)" /v1/bench/trivial
    TRIVIAL_RPS="$RPS"
    TRIVIAL_CPU="$CPU_US"
    run "validate" /v1/auth/validate
    VALIDATE_RATES+=("$RPS")
    RATIOS+=("$(awk -v v="$RPS" -v t="$TRIVIAL_RPS" 'BEGIN {printf "%.3f", v / t}')")
    CPU_RATIOS+=("$(awk -v v="$CPU_US" -v t="$TRIVIAL_CPU" 'BEGIN {printf "%.3f", t / v}')")
    echo "  round $round ratio validate/trivial: ${RATIOS[-1]} (server CPU per request, trivial/validate: ${CPU_RATIOS[-1]})"
  done
  run "parse only (info)" /v1/bench/parse
  echo "  (the trivial answer after reading and parsing the same JSON body; not part of the ratio)"
  median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
  VALIDATE_RPS="$(median "${VALIDATE_RATES[@]}")"
  printf 'median ratio validate/trivial: %.2f (target >= 0.8); median validate %s req/s; median CPU ratio %.2f\n' \
    "$(median "${RATIOS[@]}")" "$VALIDATE_RPS" "$(median "${CPU_RATIOS[@]}")"

  # About half of validate's peak: each connection pauses 1 ms (wrk's delay() counts
  # whole milliseconds) after each answer. A pause plus an answer take longer than 1 ms,
  # so two 2 s calibration runs find how many connections give half the peak.
  HALF_CONNS="$(awk -v v="$VALIDATE_RPS" 'BEGIN {c = int(v / 2000 + 0.5); if (c < 1) c = 1; print c}')"
  for _ in 1 2; do
    HALF_RPS="$(BENCH_KEY="${KEYS[$setup-half]}" WRK_DELAY_MS=1 "${WRK_PREFIX[@]}" wrk -t1 -c"$HALF_CONNS" -d2s \
      -s "$WORK/post.lua" "$BASE/v1/auth/validate" | awk '/^Requests\/sec:/ {print $2}')"
    HALF_CONNS="$(awk -v v="$VALIDATE_RPS" -v r="$HALF_RPS" -v c="$HALF_CONNS" \
      'BEGIN {n = int(c * (v / 2) / r + 0.5); if (n < 1) n = 1; print n}')"
  done
  BENCH_KEY="${KEYS[$setup-half]}" CONNS="$HALF_CONNS" WRK_DELAY_MS=1 run "validate @ ~half peak" /v1/auth/validate
  awk -v r="$RPS" -v v="$VALIDATE_RPS" -v c="$HALF_CONNS" \
    'BEGIN {printf "(half-peak run: %d connections, 1 ms pause each: %.0f%% of the peak; target p99 <= 2 ms)\n", c, 100 * r / v}'
  stop_server
done
