# Sourced by bench.sh, bench-instructions.sh and bench-multi-instance.sh: the server
# binary, a database with a whitelisted tenant, keys, and the wrk script that POSTs a
# validate body; the same on PostgreSQL (bench_postgres_setup). Expects ROOT (the
# repository) to be set; sets BIN, WORK, DB, TENANT; SERVER_PID is stopped and WORK
# removed on exit.

# bench_binary: BIN = $BENCH_BIN, or the `bench` profile build (full speed, unlike the
# size-tuned release profile of the app).
bench_binary() {
  if [ -n "${BENCH_BIN:-}" ]; then
    BIN="$BENCH_BIN"
  else
    cargo build --profile bench -p securesign-server --manifest-path "$ROOT/Cargo.toml" >&2
    BIN="$ROOT/target/release/securesign-server"
  fi
}

# bench_setup: WORK, a database with the tenant "Bench Portal" (origin
# https://portal.example.gov.in whitelisted) and $WORK/post.lua. The wrk script sends
# the key in $BENCH_KEY and, when $WRK_DELAY_MS is set, pauses that long after each answer.
bench_setup() {
  WORK="$(mktemp -d)"
  SERVER_PID=""
  trap bench_cleanup EXIT
  DB="$WORK/bench.db"
  TENANT="$("$BIN" --db "$DB" tenant create --name "Bench Portal" 2>/dev/null)"
  "$BIN" --db "$DB" domain add --tenant "$TENANT" https://portal.example.gov.in >/dev/null
  cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"origin":"https://portal.example.gov.in","platform":"web"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if delay_ms > 0 then function delay() return delay_ms end end
LUA
}

# new_key: a fresh live key with a burst of 1,000,000 (a run at ~150k req/s for 8 s
# stays within it), printed.
new_key() { "$BIN" --db "$DB" key create --tenant "$TENANT" --mode live --rpm 1000000 2>/dev/null; }

# bench_postgres_setup: on the private cluster of server/tests/with-postgres.sh
# ($SECURESIGN_TEST_POSTGRES_URL), a database "bench" with the same tenant and origin.
# Sets PGBIN, PGURL, PGARGS (the server's options for it), PGTENANT and PGLOG (the
# cluster's log file, where statement_log_on makes PostgreSQL write every statement) and
# POSTMASTER (its PID).
bench_postgres_setup() {
  PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  psql_do "$SECURESIGN_TEST_POSTGRES_URL/postgres" -c "CREATE DATABASE bench"
  PGURL="$SECURESIGN_TEST_POSTGRES_URL/bench"
  PGARGS=(--database-url "$PGURL" --secrets-key "$WORK/pg.secrets-key")
  PGTENANT="$("$BIN" "${PGARGS[@]}" tenant create --name "Bench Portal" 2>/dev/null)"
  "$BIN" "${PGARGS[@]}" domain add --tenant "$PGTENANT" https://portal.example.gov.in >/dev/null
  PGLOG="$(psql_do "$PGURL" -c 'SHOW data_directory')/server.log"
  [ -r "$PGLOG" ] || { echo "no PostgreSQL log at $PGLOG (server/tests/with-postgres.sh writes it)" >&2; exit 1; }
  POSTMASTER="$(head -n 1 "$(dirname "$PGLOG")/postmaster.pid")"
}

psql_do() { "$PGBIN/psql" -X -q -At "$@"; }

# new_pg_key: new_key on the PostgreSQL database.
new_pg_key() { "$BIN" "${PGARGS[@]}" key create --tenant "$PGTENANT" --mode live --rpm 1000000 2>/dev/null; }

# statement_log_on / statement_log_off: every statement of every session to PGLOG, or
# none (ALTER SYSTEM + reload: sessions already open take it before their next command).
statement_log_on() { statement_log all; }
statement_log_off() { statement_log none; }
statement_log() {
  psql_do "$PGURL" -c "ALTER SYSTEM SET log_statement = '$1'" -c 'SELECT pg_reload_conf()' >/dev/null
  sleep 0.5
}

# log_size: PGLOG's length now (statements logged after this are past it).
log_size() { stat -c %s "$PGLOG"; }

# statements_since OFFSET: the statements PostgreSQL logged after OFFSET, one per line
# (the logged text after "statement: " or "execute <name>: "): each is one round trip
# of a client (sqlx sends a prepared statement's parse, bind and execute together).
statements_since() {
  tail -c +"$(($1 + 1))" "$PGLOG" | sed -n 's/.*LOG:  \(statement\|execute [^:]*\): //p'
}

# timer_statement: true for the statements an instance runs on its own timers, whatever
# its load: the LISTEN heartbeat (pg_notify, every second), the outbox poll (every
# second) and the usage flush (key_usage, every 5 s, in a transaction).
TIMER_STATEMENTS='pg_notify|FROM webhook_events|key_usage|^BEGIN|^COMMIT'

# start_server NAME DB_ARGS_ARRAY [SERVE_OPTION...] -> PID_<NAME>, BASE_<NAME>: a server
# on a free loopback port in the background, under SERVER_PREFIX when set (e.g. taskset),
# stopped by stop_server.
SERVER_PIDS=()
start_server() {
  local name="$1"
  local -n db_args="$2"
  shift 2
  RUST_LOG=warn ${SERVER_PREFIX[@]+"${SERVER_PREFIX[@]}"} "$BIN" "${db_args[@]}" serve --listen 127.0.0.1:0 "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  local pid=$!
  SERVER_PIDS+=("$pid")
  for _ in $(seq 100); do grep -q "listening on" "$WORK/$name.out" 2>/dev/null && break; sleep 0.1; done
  printf -v "PID_$name" '%s' "$pid"
  printf -v "BASE_$name" 'http://%s' "$(sed -n 's/^listening on //p' "$WORK/$name.out")"
}

# ticks PID...: CPU time (user + system) so far of the given PIDs, in clock ticks.
ticks() {
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] && total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}
CLK_TCK="$(getconf CLK_TCK)"

# postgres_pids: the postmaster of bench_postgres_setup's cluster and its children.
# shellcheck disable=SC2046 # one PID per word
postgres_pids() { echo "$POSTMASTER" $(ps -o pid= --ppid "$POSTMASTER"); }
# transactions: the bench database's transactions so far (pg_stat_database).
transactions() { psql_do "$PGURL" -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'bench'"; }

# median N...: the middle value (the upper one of an even count's two).
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# stop_server: stops SERVER_PID and every PID in SERVER_PIDS (several servers).
stop_server() {
  local pid
  for pid in $SERVER_PID ${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"}; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  SERVER_PID=""
  SERVER_PIDS=()
}

bench_cleanup() {
  stop_server
  rm -rf "$WORK"
}
