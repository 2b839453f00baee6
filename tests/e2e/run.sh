#!/usr/bin/env bash
# End-to-end tests of issue #6 (1–7) plus the app's final-try confirmation (signing on
# kryoptic, the PIN change on OpenSC over the virtual PIV card), all real parts:
# the REST API (SQLite in a temp dir) on loopback, SoftHSM2 and kryoptic tokens, the virtual
# PIV card behind its own pcscd, and the app's real webview under Xvfb through tauri-driver.
# Starts everything it needs, stops it by PID, prints "N passed, M failed" last and exits
# non-zero on any failure.
#
#   tests/app/install.sh && tests/lab/piv/install.sh   # once (apt, npm ci, tauri-driver)
#   tests/lab/build-kryoptic.sh && tests/lab/piv/build.sh
#   tests/e2e/run.sh                       # all groups (~4 min once built)
#   SS_E2E_ONLY=piv,portal tests/e2e/run.sh   # some groups: portal, softhsm, kryoptic, piv, opensc
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
E2E_WORK="$(mktemp -d /tmp/securesign-e2e.XXXXXX)"
here="$ROOT/tests/e2e"
# shellcheck source=tests/e2e/env.sh
. "$here/env.sh"
trap 'e2e_cleanup; rm -rf "$E2E_WORK"' EXIT

fail_setup() { echo "e2e setup failed: $*"; echo "0 passed, 1 failed"; exit 1; }

cd "$ROOT"
e2e_build || fail_setup "build"
e2e_server || fail_setup "server did not start"
e2e_token softhsm "$E2E_WORK/softhsm.env" || fail_setup "SoftHSM2 token"
e2e_token kryoptic "$E2E_WORK/kryoptic.env" || fail_setup "kryoptic token"
e2e_piv_card "$E2E_WORK/piv" || fail_setup "virtual PIV card"
e2e_display || fail_setup "no X display"
e2e_xdg

export SS_E2E_ROOT="$ROOT" SS_E2E_WORK="$E2E_WORK"
export SS_E2E_SOFTHSM_ENV="$E2E_WORK/softhsm.env" SS_E2E_KRYOPTIC_ENV="$E2E_WORK/kryoptic.env"
export SS_E2E_PIV_RUN="$E2E_WORK/piv"
export SS_E2E_SCREENSHOTS="${SS_E2E_SCREENSHOTS:-$ROOT/tests/e2e/screenshots}"
rm -rf "$SS_E2E_SCREENSHOTS"; mkdir -p "$SS_E2E_SCREENSHOTS"

echo "screenshots go to $SS_E2E_SCREENSHOTS; signed files to $E2E_WORK/signed (removed at exit)"
# One D-Bus session for the apps, `gio open` and the single-instance hand-over.
exec_rc=0
dbus-run-session -- node "$here/e2e.mjs" || exec_rc=$?
exit $exec_rc
