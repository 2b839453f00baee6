#!/usr/bin/env bash
# SecureSign, the whole flow on this machine:
#   a lab PKI (root -> licensed CA), a demo token (SoftHSM2) with a DSC it issued, a local
#   REST API (SQLite in a temp dir) trusting that root, the app (under Xvfb when there is no
#   display), and a demo "portal" that validates its key, creates a 3-document CMS session and opens the deep link. The PIN is
#   typed into the app (driven through WebDriver); the portal sees `completed` and verifies
#   every signature with `openssl cms -verify` against the lab PKI's root (the server, too,
#   accepts only signers that chain to it: --trust-anchors, --intermediates, --crl-dir).
#   Screenshots of each screen and the signed files stay in tests/e2e/demo-output/.
#
# First run on a fresh Debian machine: installs packages (apt, npm, tauri-driver) and builds
# (~15 min on 2 cores); later runs take well under a minute.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Installing what the demo needs (apt, npm, tauri-driver; skipped when present)"
tests/app/install.sh
step "Building the app, the server and the token lab"
E2E_WORK="$(mktemp -d /tmp/securesign-demo.XXXXXX)"
# shellcheck source=tests/e2e/env.sh
. tests/e2e/env.sh
trap 'e2e_cleanup; rm -rf "$E2E_WORK"' EXIT
e2e_build

step "Provisioning a lab PKI (CCA India Lab Root -> SecureSign Lab Licensed CA) and a demo token (SoftHSM2) with a DSC it issued"
e2e_token softhsm "$E2E_WORK/token.env"
# shellcheck disable=SC1091
. "$E2E_WORK/token.env"
export SOFTHSM2_CONF SECURESIGN_PKCS11_MODULE SECURESIGN_LAB_USER_PIN
export SECURESIGN_LAB_TRUST_ANCHORS SECURESIGN_LAB_INTERMEDIATES SECURESIGN_LAB_CRL_DIR
echo "module $SECURESIGN_PKCS11_MODULE; demo PIN $SECURESIGN_LAB_USER_PIN (a well-known test value)"
echo "trust anchor $SECURESIGN_LAB_TRUST_ANCHORS; intermediate $SECURESIGN_LAB_INTERMEDIATES; CRLs in $SECURESIGN_LAB_CRL_DIR"

step "Starting the SecureSign REST API (SQLite in $E2E_WORK) with a demo tenant, origin and key, trusting the lab root"
e2e_server
echo "API $SS_E2E_API, portal origin $SS_E2E_PORTAL, API key ${SS_E2E_API_KEY:0:12}… (live mode)"

e2e_display
e2e_xdg
echo "display $DISPLAY"
export SS_DEMO_OUT="$ROOT/tests/e2e/demo-output"
rm -rf "$SS_DEMO_OUT"; mkdir -p "$SS_DEMO_OUT"

# One D-Bus session for the app and `gio open` (the portal's browser handing over the link).
dbus-run-session -- node tests/e2e/demo.mjs
