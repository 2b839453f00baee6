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
# Usage: server/bench.sh [seconds (default 8)] [unpinned|pinned|both] [sqlite|postgres|compare]
#   unpinned (default): server and wrk share all CPUs, as the scheduler likes.
#   pinned: the server on CPU 0, wrk on CPU 1 (taskset, util-linux), so the two never
#           take cycles from each other; needs at least 2 CPUs.
#   both: one after the other, each with its own server process.
#   sqlite (default): the server on a SQLite file.
#   postgres: the same benchmark with the server on PostgreSQL, its rate limit counted
#           in process (--rate-limit-scope per-instance; BENCH_RATE_LIMIT_SCOPE=shared for
#           the shared one), and each run's database round trips per request: the
#           statements PostgreSQL logged during the run (log_statement = all), with and
#           without those the instance runs on its timers whatever its load (LISTEN
#           heartbeat, outbox poll, usage flush). A cached key should need none.
#   compare: validate on a SQLite instance and on a PostgreSQL one (per-instance limit)
#           in alternating rounds: the ratio PostgreSQL/SQLite (target >= 0.9) and the
#           round trips per validate; then, on its own, the shared rate limit's cost: a
#           third instance with --rate-limit-scope shared vs the per-instance one (req/s,
#           server and PostgreSQL CPU per request, database transactions per request
#           from pg_stat_database, statement logging off).
#   postgres and compare run this script under server/tests/with-postgres.sh: a private
#   cluster (fsync off: the numbers are the server's, not a disk's) started and stopped
#   around it; PostgreSQL itself is never pinned.
# Trivial and validate alternate for BENCH_ROUNDS rounds (default 5), so a burst of
# load from another process hits both; each round's ratio is printed, then the median.
# BENCH_BIN=path/to/securesign-server skips the build and uses that binary (default: the
# `bench` profile — full speed, unlike the size-tuned release profile of the app).
set -euo pipefail
DURATION="${1:-8}"
SETUP="${2:-unpinned}"
DATABASE="${3:-sqlite}"
ROUNDS="${BENCH_ROUNDS:-5}"
SCOPE="${BENCH_RATE_LIMIT_SCOPE:-per-instance}"
CONNS=32
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
usage() { echo "usage: $0 [seconds] [unpinned|pinned|both] [sqlite|postgres|compare]" >&2; exit 2; }

case "$SETUP" in
  unpinned | pinned) SETUPS=("$SETUP") ;;
  both) SETUPS=(unpinned pinned) ;;
  *) usage ;;
esac
case "$DATABASE" in sqlite | postgres | compare) ;; *) usage ;; esac
case "$SCOPE" in per-instance | shared) ;; *) echo "BENCH_RATE_LIMIT_SCOPE: per-instance or shared" >&2; exit 2 ;; esac
if [ "${SETUPS[-1]}" = pinned ] && [ "$(nproc)" -lt 2 ]; then
  echo "pinned needs at least 2 CPUs (nproc: $(nproc))" >&2
  exit 2
fi
if [ "$DATABASE" != sqlite ] && [ -z "${SECURESIGN_TEST_POSTGRES_URL:-}" ]; then
  exec "$ROOT/server/tests/with-postgres.sh" "$0" "$@"
fi

if ! command -v wrk >/dev/null; then
  apt-get install -y wrk >/dev/null
fi
# shellcheck source=server/bench-common.sh
. "$ROOT/server/bench-common.sh"
bench_binary
bench_setup
SQLITE_ARGS=(--db "$DB")
if [ "$DATABASE" != sqlite ]; then
  bench_postgres_setup
fi

# shellcheck disable=SC2046 # one PID per word
postgres_ticks() { ticks $(postgres_pids); }
per_request() { awk -v a="$1" -v b="$2" -v n="$3" -v s="$4" 'BEGIN {printf "%.2f", (b - a) * s / n}'; }

# run NAME URL [PID] -> RPS P50 P99 (latencies as wrk prints them) and CPU_US (CPU time
# of PID, default SERVER_PID, per answered request in µs: less sensitive to other load
# than req/s). With MEASURE (the database being measured): postgres-statements also
# sets PG_US (PostgreSQL's CPU per request), STATEMENTS and REQUEST_STATEMENTS (logged
# statements per request, all / without the timers'), the run's statements in
# $WORK/statements; postgres-transactions sets PG_US and TRANSACTIONS (per request, from
# pg_stat_database: its counts reach the view up to a second late, hence the pauses).
MEASURE=none
run() {
  local name="$1" url="$2" pid="${3:-$SERVER_PID}"
  local out ticks_before ticks_after requests pg_before pg_after log_before x_before x_after
  curl -fsS -o /dev/null -X POST "$url" -H "Authorization: Bearer $BENCH_KEY" \
    -H 'Content-Type: application/json' -d '{"origin":"https://portal.example.gov.in","platform":"web"}'
  if [ "$MEASURE" = postgres-transactions ]; then sleep 1.5; x_before="$(transactions)"; fi
  if [ "$MEASURE" = postgres-statements ]; then log_before="$(log_size)"; fi
  if [ "$MEASURE" != none ]; then pg_before="$(postgres_ticks)"; fi
  ticks_before="$(ticks "$pid")"
  out="$(BENCH_KEY="$BENCH_KEY" WRK_DELAY_MS="${WRK_DELAY_MS:-0}" "${WRK_PREFIX[@]}" wrk -t1 -c"${CONNS}" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$url")"
  ticks_after="$(ticks "$pid")"
  if [ "$MEASURE" != none ]; then pg_after="$(postgres_ticks)"; fi
  RPS="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  P50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  P99="$(awk '$1=="99%" {print $2}' <<<"$out")"
  requests="$(awk '/requests in/ {print $1}' <<<"$out")"
  CPU_US="$(per_request "$ticks_before" "$ticks_after" "$requests" "$(awk -v t="$CLK_TCK" 'BEGIN {print 1e6 / t}')")"
  local non2xx db=""
  non2xx="$(awk '/Non-2xx/ {print $5}' <<<"$out")"
  if [ -n "$non2xx" ]; then echo "warning: $name had $non2xx non-2xx answers" >&2; fi
  if [ "$MEASURE" != none ]; then
    PG_US="$(per_request "$pg_before" "$pg_after" "$requests" "$(awk -v t="$CLK_TCK" 'BEGIN {print 1e6 / t}')")"
    db="   postgres CPU ${PG_US} us/req"
  fi
  if [ "$MEASURE" = postgres-statements ]; then
    statements_since "$log_before" >"$WORK/statements"
    STATEMENTS="$(awk -v a="$(wc -l <"$WORK/statements")" -v n="$requests" 'BEGIN {printf "%.5f", a / n}')"
    REQUEST_STATEMENTS="$(awk -v a="$(grep -Evc "$TIMER_STATEMENTS" "$WORK/statements" || true)" -v n="$requests" 'BEGIN {printf "%.5f", a / n}')"
    db="$db   db round trips ${STATEMENTS}/req (timers' excluded: ${REQUEST_STATEMENTS})"
  fi
  if [ "$MEASURE" = postgres-transactions ]; then
    sleep 1.5
    x_after="$(transactions)"
    TRANSACTIONS="$(awk -v a="$x_before" -v b="$x_after" -v n="$requests" 'BEGIN {printf "%.4f", (b - a) / n}')"
    db="$db   db transactions ${TRANSACTIONS}/req"
  fi
  printf '%-24s %10s req/s   p50 %9s   p99 %9s   server CPU %6s us/req%s\n' "$1" "$RPS" "$P50" "$P99" "$CPU_US" "$db"
}
largest() { printf '%s\n' "$@" | sort -g | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }

# The statements of the last measured run, grouped (what the round trips were).
show_statements() {
  echo "  statements PostgreSQL logged during the last run ($(wc -l <"$WORK/statements") in all; timers' match /$TIMER_STATEMENTS/):"
  cut -c1-90 "$WORK/statements" | sort | uniq -c | sort -rn | head -n 8 | sed 's/^/    /'
}

# validate_vs_trivial: the rounds, the median ratio, and validate at half its peak, on
# the server at BASE_main.
validate_vs_trivial() {
  local RATIOS=() VALIDATE_RATES=() CPU_RATIOS=() ROUND_TRIPS=() round
  for round in $(seq "$ROUNDS"); do
    BENCH_KEY="$(new_bench_key)"
    MEASURE=none run "trivial (baseline)" "$BASE_main/v1/bench/trivial"
    TRIVIAL_RPS="$RPS"
    TRIVIAL_CPU="$CPU_US"
    run "validate" "$BASE_main/v1/auth/validate"
    VALIDATE_RATES+=("$RPS")
    if [ "$MEASURE" = postgres-statements ]; then ROUND_TRIPS+=("$REQUEST_STATEMENTS"); fi
    RATIOS+=("$(ratio "$RPS" "$TRIVIAL_RPS")")
    CPU_RATIOS+=("$(ratio "$TRIVIAL_CPU" "$CPU_US")")
    echo "  round $round ratio validate/trivial: ${RATIOS[-1]} (server CPU per request, trivial/validate: ${CPU_RATIOS[-1]})"
  done
  BENCH_KEY="$(new_bench_key)"
  MEASURE=none run "parse only (info)" "$BASE_main/v1/bench/parse"
  echo "  (the trivial answer after reading and parsing the same JSON body; not part of the ratio)"
  VALIDATE_RPS="$(median "${VALIDATE_RATES[@]}")"
  printf 'median ratio validate/trivial: %.2f (target >= 0.8); median validate %s req/s; median CPU ratio %.2f\n' \
    "$(median "${RATIOS[@]}")" "$VALIDATE_RPS" "$(median "${CPU_RATIOS[@]}")"
  if [ "$MEASURE" = postgres-statements ]; then
    echo "database round trips per validate, timers' excluded: at most $(largest "${ROUND_TRIPS[@]}") over the rounds"
    show_statements
  fi

  # About half of validate's peak: each connection pauses 1 ms (wrk's delay() counts
  # whole milliseconds) after each answer. A pause plus an answer take longer than 1 ms,
  # so two 2 s calibration runs find how many connections give half the peak.
  BENCH_KEY="$(new_bench_key)"
  HALF_CONNS="$(awk -v v="$VALIDATE_RPS" 'BEGIN {c = int(v / 2000 + 0.5); if (c < 1) c = 1; print c}')"
  for _ in 1 2; do
    HALF_RPS="$(BENCH_KEY="$BENCH_KEY" WRK_DELAY_MS=1 "${WRK_PREFIX[@]}" wrk -t1 -c"$HALF_CONNS" -d2s \
      -s "$WORK/post.lua" "$BASE_main/v1/auth/validate" | awk '/^Requests\/sec:/ {print $2}')"
    HALF_CONNS="$(awk -v v="$VALIDATE_RPS" -v r="$HALF_RPS" -v c="$HALF_CONNS" \
      'BEGIN {n = int(c * (v / 2) / r + 0.5); if (n < 1) n = 1; print n}')"
  done
  CONNS="$HALF_CONNS" WRK_DELAY_MS=1 MEASURE=none run "validate @ ~half peak" "$BASE_main/v1/auth/validate"
  awk -v r="$RPS" -v v="$VALIDATE_RPS" -v c="$HALF_CONNS" \
    'BEGIN {printf "(half-peak run: %d connections, 1 ms pause each: %.0f%% of the peak; target p99 <= 2 ms)\n", c, 100 * r / v}'
}

# postgres_vs_sqlite: validate on BASE_sqlite vs BASE_postgres (per-instance limit), then
# BASE_shared (shared limit) vs BASE_postgres.
postgres_vs_sqlite() {
  local R_PG=() CPU_PG=() TRIPS=() R_SHARED=() C_LOCAL=() C_SHARED=() PG_SHARED=() X_SHARED=() round sqlite_rps sqlite_cpu
  echo "-- validate: SQLite instance vs PostgreSQL instance (both counting the rate limit in process)"
  statement_log_on
  for round in $(seq "$ROUNDS"); do
    BENCH_KEY="$(new_key)"
    MEASURE=none run "sqlite" "$BASE_sqlite/v1/auth/validate" "$PID_sqlite"
    sqlite_rps="$RPS"
    sqlite_cpu="$CPU_US"
    BENCH_KEY="$(new_pg_key)"
    MEASURE=postgres-statements run "postgres" "$BASE_postgres/v1/auth/validate" "$PID_postgres"
    R_PG+=("$(ratio "$RPS" "$sqlite_rps")")
    CPU_PG+=("$(ratio "$sqlite_cpu" "$CPU_US")")
    TRIPS+=("$REQUEST_STATEMENTS")
    echo "  round $round ratio postgres/sqlite: ${R_PG[-1]} (server CPU per request, sqlite/postgres: ${CPU_PG[-1]})"
  done
  statement_log_off
  printf 'median ratio postgres-instance/sqlite-instance: %.2f (target >= 0.9); median CPU ratio %.2f\n' \
    "$(median "${R_PG[@]}")" "$(median "${CPU_PG[@]}")"
  echo "database round trips per cached validate, timers' excluded: at most $(largest "${TRIPS[@]}") over the rounds"
  show_statements
  echo "-- the shared rate limit on its own: PostgreSQL instance, --rate-limit-scope shared vs per-instance"
  for round in $(seq "$ROUNDS"); do
    BENCH_KEY="$(new_pg_key)"
    MEASURE=postgres-transactions run "postgres, per-instance" "$BASE_postgres/v1/auth/validate" "$PID_postgres"
    local_rps="$RPS"
    C_LOCAL+=("$CPU_US")
    BENCH_KEY="$(new_pg_key)"
    MEASURE=postgres-transactions run "postgres, shared limit" "$BASE_shared/v1/auth/validate" "$PID_shared"
    R_SHARED+=("$(ratio "$RPS" "$local_rps")")
    C_SHARED+=("$CPU_US")
    PG_SHARED+=("$PG_US")
    X_SHARED+=("$TRANSACTIONS")
    echo "  round $round ratio shared/per-instance: ${R_SHARED[-1]}"
  done
  printf 'shared rate limit: median req/s ratio shared/per-instance %.2f; server CPU %s -> %s us/req; postgres CPU %s us/req; db transactions %s/req\n' \
    "$(median "${R_SHARED[@]}")" "$(median "${C_LOCAL[@]}")" "$(median "${C_SHARED[@]}")" \
    "$(median "${PG_SHARED[@]}")" "$(median "${X_SHARED[@]}")"
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
  echo "== setup: $WHERE; database: $DATABASE"
  echo "wrk: 1 thread, $CONNS connections, ${DURATION}s per run, $ROUNDS rounds, bench build; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  case "$DATABASE" in
    sqlite)
      new_bench_key() { new_key; }
      start_server main SQLITE_ARGS --bench-routes
      SERVER_PID="$PID_main" MEASURE=none validate_vs_trivial
      ;;
    postgres)
      new_bench_key() { new_pg_key; }
      start_server main PGARGS --bench-routes --rate-limit-scope "$SCOPE"
      echo "PostgreSQL instance, rate limit scope: $SCOPE"
      statement_log_on
      SERVER_PID="$PID_main" MEASURE=postgres-statements validate_vs_trivial
      statement_log_off
      ;;
    compare)
      start_server sqlite SQLITE_ARGS --bench-routes
      start_server postgres PGARGS --bench-routes --rate-limit-scope per-instance
      start_server shared PGARGS --bench-routes --rate-limit-scope shared
      postgres_vs_sqlite
      ;;
  esac
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  stop_server
done
