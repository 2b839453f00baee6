# Sourced by bench.sh and bench-instructions.sh: the server binary, a database with a
# whitelisted tenant, keys, and the wrk script that POSTs a validate body. Expects ROOT
# (the repository) to be set; sets BIN, WORK, DB, TENANT; SERVER_PID is stopped and WORK
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

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

bench_cleanup() {
  stop_server
  rm -rf "$WORK"
}
