#!/usr/bin/env bash
# End-to-end test of the SecureSign app in the real webview (WebKitGTK) under Xvfb:
# a real API server, a fresh SoftHSM2 token, tauri-driver + WebKitWebDriver, and
# WebdriverIO. Starts everything it needs, stops it by PID, exits non-zero on failure
# and prints "N passed, M failed" last.
#
#   tests/app/install.sh   # once: apt packages, npm ci, tauri-driver
#   tests/app/e2e.sh
#   tests/app/e2e.sh bench  # release binary: launch-to-PIN time, idle RSS, sizes
set -euo pipefail
mode="${1:-e2e}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d /tmp/securesign-e2e.XXXXXX)"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

cd "$root"
# Every user-visible text localised (English, Hindi) for every SS_* code: seconds, no build.
node --test "$here/i18n.test.mjs" >"$work/i18n.log" 2>&1 || { cat "$work/i18n.log"; echo "0 passed, 1 failed"; exit 1; }
cargo build -q -p securesign-app -p securesign-server -p securesign-testlab -p securesign-cli --bins
target="${CARGO_TARGET_DIR:-$root/target}/debug"
app="$target/securesign-app"
if [[ "$mode" == bench ]]; then
  app="${CARGO_TARGET_DIR:-$root/target}/release/securesign-app"
  [[ -x "$app" ]] || { echo "build the release first: (cd src-tauri && ../tests/app/node_modules/.bin/tauri build --bundles deb)"; exit 1; }
fi

# A token that outlives the provisioning command; its env goes to the app. Its certificates
# are issued by its own lab PKI (in the token dir), whose root, licensed CA and current CRLs
# (SECURESIGN_LAB_TRUST_ANCHORS / _INTERMEDIATES / _CRL_DIR) the server is started with.
eval "$("$target/securesign-lab" softhsm)"
lab_dir="$SECURESIGN_LAB_DIR"
pids_extra_cleanup() { rm -rf "$lab_dir"; }
trap 'cleanup; pids_extra_cleanup' EXIT

# The API server on a free loopback port, with a tenant, its origin and a key, trusting only
# the token's lab PKI (live-key results from other signers are refused).
db="$work/securesign.db"
srv() { "$target/securesign-server" --db "$db" "$@"; }
tenant="$(srv tenant create --name "Example Portal")"
srv domain add --tenant "$tenant" https://portal.example.gov.in >/dev/null
export SS_E2E_API_KEY="$(srv key create --tenant "$tenant" --mode live)"
# A test key too: its results complete without a trusted chain (expected-signer cases).
export SS_E2E_TEST_KEY="$(srv key create --tenant "$tenant" --mode test)"
"$target/securesign-server" --db "$db" serve --listen 127.0.0.1:0 \
  --trust-anchors "$SECURESIGN_LAB_TRUST_ANCHORS" \
  --intermediates "$SECURESIGN_LAB_INTERMEDIATES" \
  --crl-dir "$SECURESIGN_LAB_CRL_DIR" \
  >"$work/server.out" 2>"$work/server.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$work/server.out" 2>/dev/null && break; sleep 0.1; done
addr="$(sed -n 's/^listening on //p' "$work/server.out" | head -1)"
[[ -n "$addr" ]] || { echo "server did not start"; cat "$work/server.log"; echo "0 passed, 1 failed"; exit 1; }
export SS_E2E_API="http://$addr"

# App settings, XDG dirs (the dev scheme registration writes there), screenshots.
export SECURESIGN_CONFIG_DIR="$work/config"
mkdir -p "$SECURESIGN_CONFIG_DIR" "$work/xdg/data" "$work/xdg/config" "$here/screenshots"
cat >"$SECURESIGN_CONFIG_DIR/settings.json" <<JSON
{"apiBaseUrl": "$SS_E2E_API", "idleTimeoutMinutes": 15,
 "tokenSource": {"kind": "pkcs11", "modulePath": "$SECURESIGN_PKCS11_MODULE"},
 "signingKey": "01"}
JSON
export XDG_DATA_HOME="$work/xdg/data" XDG_CONFIG_HOME="$work/xdg/config"
export SECURESIGN_REGISTER_SCHEME=1
export SS_E2E_APP="$app" SS_E2E_SCREENSHOTS="$here/screenshots"
export SS_E2E_CLI="$target/securesign"

# Xvfb on a free display, stopped by PID.
display=""
for n in $(seq 90 140); do
  [[ -e "/tmp/.X$n-lock" || -e "/tmp/.X11-unix/X$n" ]] && continue
  Xvfb ":$n" -screen 0 1280x900x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
  pids+=($!)
  sleep 0.5
  if kill -0 "${pids[-1]}" 2>/dev/null; then display=":$n"; break; fi
done
[[ -n "$display" ]] || { echo "no free X display"; echo "0 passed, 1 failed"; exit 1; }
export DISPLAY="$display"

tauri_driver="$(command -v tauri-driver || echo "$HOME/.cargo/bin/tauri-driver")"
export SS_E2E_TAURI_DRIVER="$tauri_driver"

# One D-Bus session for the app, the second launch (gio open) and single-instance.
set +e
script="$here/e2e.mjs"; [[ "$mode" == bench ]] && script="$here/bench.mjs"
dbus-run-session -- node "$script"
rc=$?
set -e
if [[ "$mode" == bench && $rc -eq 0 ]]; then
  echo "idle RSS without automation (tests/app/rss.sh):"
  "$here/rss.sh" "$app"
fi
exit $rc
