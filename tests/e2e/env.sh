# Shared set-up for the end-to-end tests (run.sh) and the demo (scripts/demo.sh). Sourced,
# not run. Everything started here is recorded in E2E_PIDS and stopped by PID in e2e_cleanup;
# every temp file lives under E2E_WORK.
#
# Needs: ROOT (the repository), E2E_WORK (a fresh temp dir).

E2E_PIDS=()
E2E_LABS=()      # securesign-lab token dirs to remove
E2E_PIV_RUNS=()  # virtual PIV card runs to stop

e2e_cleanup() {
  local pid run
  for run in "${E2E_PIV_RUNS[@]}"; do "$ROOT/tests/lab/piv/stop.sh" "$run" >/dev/null 2>&1 || true; done
  for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for run in "${E2E_LABS[@]}"; do rm -rf "$run"; done
}

# The debug binaries of the app, the server, the token lab and the CLI (it reads a PIV
# card's exact tries for the tests).
e2e_build() {
  (cd "$ROOT" && cargo build -q -p securesign-app -p securesign-server -p securesign-testlab -p securesign-cli --bins)
  E2E_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
  export SS_E2E_APP="${SS_E2E_APP:-$E2E_BIN/securesign-app}"
  export SS_E2E_CLI="$E2E_BIN/securesign"
}

# e2e_pki: the run's lab PKI (root "CCA India Lab Root" -> "SecureSign Lab Licensed CA"), made
# once under E2E_WORK, with current CRLs. Every token of the run is issued by it and the server
# trusts its root, so the order of e2e_server and e2e_token does not matter. Exports
# SECURESIGN_LAB_TRUST_ANCHORS (root PEM), SECURESIGN_LAB_INTERMEDIATES (licensed CA PEM),
# SECURESIGN_LAB_CRL_DIR (ca.crl, root.crl) and SECURESIGN_LAB_PKI_DIR.
e2e_pki() {
  [[ -n "${SECURESIGN_LAB_PKI_DIR:-}" && -f "$SECURESIGN_LAB_PKI_DIR/urls.txt" ]] && return 0
  "$E2E_BIN/securesign-lab" pki "$E2E_WORK/pki" > "$E2E_WORK/pki.env" || return 1
  # shellcheck disable=SC1091
  . "$E2E_WORK/pki.env"
  export SECURESIGN_LAB_PKI_DIR SECURESIGN_LAB_TRUST_ANCHORS SECURESIGN_LAB_INTERMEDIATES SECURESIGN_LAB_CRL_DIR
}

# e2e_token KIND FILE: provisions a SoftHSM2 or kryoptic token that outlives the command, its
# certificates issued by the run's lab PKI (e2e_pki), and writes its environment (module,
# config, PIN, the PKI's files) to FILE.
e2e_token() {
  e2e_pki || return 1
  "$E2E_BIN/securesign-lab" "$1" --pki "$SECURESIGN_LAB_PKI_DIR" > "$2" || return 1
  E2E_LABS+=("$(sed -n "s/^export SECURESIGN_LAB_DIR='\(.*\)'$/\1/p" "$2")")
}

# e2e_piv_card RUN: a provisioned virtual PIV card behind its own pcscd; taken out and put
# back once so that it starts like a card fresh in the reader (PIN not verified).
e2e_piv_card() {
  local run="$1" piv="$ROOT/tests/lab/piv"
  e2e_pki || return 1  # provision.sh has the card's certificates issued by the run's lab CA
  "$piv/start.sh" "$run" >/dev/null
  E2E_PIV_RUNS+=("$run")
  "$piv/provision.sh" "$run" >/dev/null
  "$piv/kill-card.sh" "$run" >/dev/null
  "$piv/restart-card.sh" "$run" >/dev/null
}

# The REST API on a free loopback port with a tenant, its whitelisted portal origin and a
# live key, trusting the run's lab PKI (e2e_pki: --trust-anchors root, --intermediates the
# licensed CA, --crl-dir its current CRLs). Exports SS_E2E_API, SS_E2E_API_KEY, SS_E2E_PORTAL.
e2e_server() {
  local db="$E2E_WORK/securesign.db" tenant
  e2e_pki || return 1
  srv() { "$E2E_BIN/securesign-server" --db "$db" "$@"; }
  export SS_E2E_PORTAL="https://portal.example.gov.in"
  tenant="$(srv tenant create --name "Example Portal")"
  srv domain add --tenant "$tenant" "$SS_E2E_PORTAL" >/dev/null
  SS_E2E_API_KEY="$(srv key create --tenant "$tenant" --mode live)"
  export SS_E2E_API_KEY
  "$E2E_BIN/securesign-server" --db "$db" serve --listen 127.0.0.1:0 \
    --trust-anchors "$SECURESIGN_LAB_TRUST_ANCHORS" \
    --intermediates "$SECURESIGN_LAB_INTERMEDIATES" \
    --crl-dir "$SECURESIGN_LAB_CRL_DIR" \
    >"$E2E_WORK/server.out" 2>"$E2E_WORK/server.log" &
  E2E_PIDS+=($!)
  local _
  for _ in $(seq 100); do grep -q "listening on" "$E2E_WORK/server.out" 2>/dev/null && break; sleep 0.1; done
  local addr
  addr="$(sed -n 's/^listening on //p' "$E2E_WORK/server.out" | head -1)"
  [[ -n "$addr" ]] || { cat "$E2E_WORK/server.log" >&2; return 1; }
  export SS_E2E_API="http://$addr"
}

# Xvfb on a free display unless one is set (and reachable). Exports DISPLAY.
e2e_display() {
  [[ -n "${DISPLAY:-}" ]] && return 0
  local n
  for n in $(seq 90 140); do
    [[ -e "/tmp/.X$n-lock" || -e "/tmp/.X11-unix/X$n" ]] && continue
    Xvfb ":$n" -screen 0 1280x900x24 -nolisten tcp >"$E2E_WORK/xvfb.log" 2>&1 &
    E2E_PIDS+=($!)
    sleep 0.5
    if kill -0 "${E2E_PIDS[-1]}" 2>/dev/null; then export DISPLAY=":$n"; return 0; fi
  done
  return 1
}

# XDG dirs of this run (the dev scheme registration for `gio open` writes there).
e2e_xdg() {
  mkdir -p "$E2E_WORK/xdg/data" "$E2E_WORK/xdg/config"
  export XDG_DATA_HOME="$E2E_WORK/xdg/data" XDG_CONFIG_HOME="$E2E_WORK/xdg/config"
  export SECURESIGN_REGISTER_SCHEME=1
  SS_E2E_TAURI_DRIVER="$(command -v tauri-driver || echo "$HOME/.cargo/bin/tauri-driver")"
  export SS_E2E_TAURI_DRIVER
}
