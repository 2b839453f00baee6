#!/usr/bin/env bash
# Multi-instance benchmarks (issue 12), all ratios from one run on this machine:
#
#  1. POST /v1/auth/validate on a PostgreSQL-backed instance vs a SQLite-backed one
#     (target >= 0.9), the PostgreSQL instance counting its rate limit in process
#     (--rate-limit-scope per-instance), so the ratio is the key cache's alone; and the
#     database transactions per validate (pg_stat_database, heartbeats included: a
#     cached key should make none).
#  2. The shared rate limit's cost per request: the same PostgreSQL instance with the
#     shared limit (one rate_limit_take round trip per request) vs per-instance:
#     req/s ratio, server CPU per request, PostgreSQL CPU per request, transactions
#     per request.
#  3. Two instances behind HAProxy vs one behind the same HAProxy (shared limit, the
#     PostgreSQL default): req/s and CPU per request of servers, HAProxy and PostgreSQL,
#     for the scaling model (per-core throughput = 1e6 / CPU us per request).
#  4. Revocation propagation: p50/p99 over 100 revokes with 3 instances running
#     (benches/revocation_propagation.rs), and the same for 100 tenant disables and
#     enables (benches/tenant_disable_propagation.rs).
#
# Runs itself under server/tests/with-postgres.sh (a private cluster, fsync off — the
# numbers are the servers' and the protocol's, not a disk's). wrk and haproxy are
# Debian packages (server/install-test-deps.sh installs haproxy; wrk as bench.sh does).
# Not part of CI.
#
# Usage: server/bench-multi-instance.sh [seconds per run (default 6)] [all|propagation]
#   propagation: step 4 only (no wrk runs).
#   BENCH_ROUNDS (default 3): alternating rounds of 1 and 2; medians are printed.
#   BENCH_BIN=path skips the build of the server (bench profile).
set -euo pipefail
DURATION="${1:-6}"
STEPS="${2:-all}"
case "$STEPS" in all | propagation) ;; *) echo "usage: $0 [seconds] [all|propagation]" >&2; exit 2 ;; esac
ROUNDS="${BENCH_ROUNDS:-3}"
CONNS=32
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

if [ -z "${SECURESIGN_TEST_POSTGRES_URL:-}" ]; then
  exec "$ROOT/server/tests/with-postgres.sh" "$0" "$@"
fi
if ! command -v wrk >/dev/null; then apt-get install -y wrk >/dev/null; fi
command -v haproxy >/dev/null || { echo "haproxy missing: run server/install-test-deps.sh" >&2; exit 1; }

# shellcheck source=server/bench-common.sh
. "$ROOT/server/bench-common.sh"
bench_binary
bench_setup
bench_postgres_setup
SQLITE_ARGS=(--db "$DB")

# measure NAME URL KEY SERVER_PIDS... -> RPS, CPU_US (servers), PG_US, XACT (per request)
measure() {
  local name="$1" url="$2" key="$3"
  shift 3
  local out s0 s1 p0 p1 x0 x1 n
  curl -fsS -X POST "$url" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"origin":"https://portal.example.gov.in","platform":"web"}' >/dev/null
  sleep 1.5
  x0="$(transactions)"; s0="$(ticks "$@")"; p0="$(ticks $(postgres_pids))"
  out="$(BENCH_KEY="$key" WRK_DELAY_MS=0 wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$WORK/post.lua" "$url")"
  s1="$(ticks "$@")"; p1="$(ticks $(postgres_pids))"
  sleep 1.5
  x1="$(transactions)"
  n="$(awk '/requests in/ {print $1}' <<<"$out")"
  RPS="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  CPU_US="$(awk -v a="$s0" -v b="$s1" -v t="$CLK_TCK" -v n="$n" 'BEGIN {printf "%.2f", (b - a) / t * 1e6 / n}')"
  PG_US="$(awk -v a="$p0" -v b="$p1" -v t="$CLK_TCK" -v n="$n" 'BEGIN {printf "%.2f", (b - a) / t * 1e6 / n}')"
  XACT="$(awk -v a="$x0" -v b="$x1" -v n="$n" 'BEGIN {printf "%.4f", (b - a) / n}')"
  local non2xx
  non2xx="$(awk '/Non-2xx/ {print $5}' <<<"$out")"
  [ -z "$non2xx" ] || echo "warning: $name had $non2xx non-2xx answers" >&2
  printf '%-34s %9s req/s   servers %6s us/req   postgres %6s us/req   db transactions %s/req\n' \
    "$name" "$RPS" "$CPU_US" "$PG_US" "$XACT"
}

if [ "$STEPS" = all ]; then
echo "== 1+2: validate, SQLite vs PostgreSQL (per-instance limit) vs PostgreSQL (shared limit)"
echo "wrk: 1 thread, $CONNS connections, ${DURATION}s per run, $ROUNDS rounds, bench build, $(nproc) CPUs shared; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start_server sqlite SQLITE_ARGS
start_server pglocal PGARGS --rate-limit-scope per-instance
start_server pgshared PGARGS --rate-limit-scope shared
R_PG=(); R_SHARED=(); X_LOCAL=(); X_SHARED=(); C_SQLITE=(); C_LOCAL=(); C_SHARED=(); PGC_SHARED=()
for round in $(seq "$ROUNDS"); do
  measure "sqlite (per-instance limit)" "$BASE_sqlite/v1/auth/validate" "$(new_key)" "$PID_sqlite"
  SQ="$RPS"; C_SQLITE+=("$CPU_US")
  measure "postgres (per-instance limit)" "$BASE_pglocal/v1/auth/validate" "$(new_pg_key)" "$PID_pglocal"
  PL="$RPS"; C_LOCAL+=("$CPU_US"); X_LOCAL+=("$XACT")
  measure "postgres (shared limit)" "$BASE_pgshared/v1/auth/validate" "$(new_pg_key)" "$PID_pgshared"
  PS="$RPS"; C_SHARED+=("$CPU_US"); X_SHARED+=("$XACT"); PGC_SHARED+=("$PG_US")
  R_PG+=("$(awk -v a="$PL" -v b="$SQ" 'BEGIN {printf "%.3f", a / b}')")
  R_SHARED+=("$(awk -v a="$PS" -v b="$PL" 'BEGIN {printf "%.3f", a / b}')")
  echo "  round $round: postgres/sqlite ${R_PG[-1]}; shared/per-instance ${R_SHARED[-1]}"
done
printf 'median ratio postgres-instance/sqlite-instance: %.2f (target >= 0.9); db transactions per validate (cached key, heartbeats included): %s\n' \
  "$(median "${R_PG[@]}")" "$(median "${X_LOCAL[@]}")"
printf 'shared rate limit: median req/s ratio shared/per-instance %.2f; server CPU %s -> %s us/req; postgres CPU %s us/req; db transactions %s/req\n' \
  "$(median "${R_SHARED[@]}")" "$(median "${C_LOCAL[@]}")" "$(median "${C_SHARED[@]}")" \
  "$(median "${PGC_SHARED[@]}")" "$(median "${X_SHARED[@]}")"
stop_server

echo "== 3: HAProxy in front of 1 vs 2 instances (PostgreSQL, shared limit)"
haproxy_start() { # haproxy_start PORTS... -> HAPROXY_PID, LB
  local port cfg="$WORK/haproxy.cfg" i=0
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  {
    printf 'global\n    maxconn 1024\n    nbthread 1\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n'
    printf 'frontend api\n    bind 127.0.0.1:%s\n    default_backend servers\nbackend servers\n    balance roundrobin\n' "$port"
    for p in "$@"; do printf '    server s%d 127.0.0.1:%s\n' "$i" "$p"; i=$((i + 1)); done
  } >"$cfg"
  haproxy -db -f "$cfg" >"$WORK/haproxy.log" 2>&1 &
  HAPROXY_PID=$!
  SERVER_PIDS+=("$HAPROXY_PID")
  LB="http://127.0.0.1:$port"
  for _ in $(seq 50); do curl -s -o /dev/null "$LB/healthz" && break; sleep 0.1; done
}
start_server one PGARGS
start_server two PGARGS
port_of() { sed -n 's/^listening on .*://p' "$WORK/$1.out"; }
S1=(); S2=(); CPU1=(); CPU2=(); H1=(); H2=()
for round in $(seq "$ROUNDS"); do
  haproxy_start "$(port_of one)"
  measure "haproxy -> 1 instance" "$LB/v1/auth/validate" "$(new_pg_key)" "$PID_one"
  S1+=("$RPS"); CPU1+=("$CPU_US")
  H1+=("$(ticks "$HAPROXY_PID")")
  kill "$HAPROXY_PID"; wait "$HAPROXY_PID" 2>/dev/null || true
  haproxy_start "$(port_of one)" "$(port_of two)"
  measure "haproxy -> 2 instances" "$LB/v1/auth/validate" "$(new_pg_key)" "$PID_one" "$PID_two"
  S2+=("$RPS"); CPU2+=("$CPU_US")
  kill "$HAPROXY_PID"; wait "$HAPROXY_PID" 2>/dev/null || true
done
printf 'median req/s: 1 instance %s, 2 instances %s (ratio %.2f on %s shared CPUs); server CPU per request: %s vs %s us (per-core throughput %.0f vs %.0f req/s)\n' \
  "$(median "${S1[@]}")" "$(median "${S2[@]}")" \
  "$(awk -v a="$(median "${S2[@]}")" -v b="$(median "${S1[@]}")" 'BEGIN {print a / b}')" "$(nproc)" \
  "$(median "${CPU1[@]}")" "$(median "${CPU2[@]}")" \
  "$(awk -v c="$(median "${CPU1[@]}")" 'BEGIN {print 1e6 / c}')" "$(awk -v c="$(median "${CPU2[@]}")" 'BEGIN {print 1e6 / c}')"
stop_server

fi

echo "== 4: revocation and tenant disable propagation (3 instances, admin changes through the store)"
start_server r1 PGARGS
start_server r2 PGARGS
start_server r3 PGARGS
SECURESIGN_BENCH_DATABASE_URL="$PGURL" SECURESIGN_BENCH_SECRETS_KEY="$WORK/pg.secrets-key" \
  SECURESIGN_BENCH_TENANT="$PGTENANT" SECURESIGN_BENCH_INSTANCES="$BASE_r1,$BASE_r2,$BASE_r3" \
  cargo bench -q -p securesign-server --manifest-path "$ROOT/Cargo.toml" --bench revocation_propagation 2>/dev/null
SECURESIGN_BENCH_DATABASE_URL="$PGURL" SECURESIGN_BENCH_SECRETS_KEY="$WORK/pg.secrets-key" \
  SECURESIGN_BENCH_INSTANCES="$BASE_r1,$BASE_r2,$BASE_r3" \
  cargo bench -q -p securesign-server --manifest-path "$ROOT/Cargo.toml" --bench tenant_disable_propagation 2>/dev/null
stop_server
