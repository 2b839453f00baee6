#!/usr/bin/env bash
# Runs every SecureSign test: installs what the tests need (apt), builds the test tokens
# (kryoptic module, virtual PIV card), checks formatting and lints, then runs the workspace
# tests with cargo-nextest (one process per test: each provisions its own real token) and
# the lab self-tests and the app's end-to-end tests. This is the README's test command; .ci/run calls it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

section() { printf '\n==> %s (%s)\n' "$*" "$(date -u +%T)"; }

section "System packages"
tests/lab/install.sh
tests/lab/piv/install.sh
server/install-test-deps.sh
tests/app/install.sh
core/tests/ccid_qemu/setup.sh   # QEMU's usb-ccid reader + a guest kernel (the CCID peer)

section "Test tokens: kryoptic PKCS#11 module, virtual PIV card"
tests/lab/build-kryoptic.sh
tests/lab/piv/build.sh

section "Formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

section "Workspace tests (cargo nextest)"
cargo nextest run --workspace --locked
# nextest does not run doc tests; the server's include a compile-fail check (a handler
# taking the API key cannot be routed without authentication).
cargo test -p securesign-server --doc --locked

section "The server's tests again on PostgreSQL (a private cluster for the run, stopped by PID)"
server/tests/with-postgres.sh cargo nextest run -p securesign-server --locked

section "CCID host over QEMU's emulated usb-ccid reader (an independent device-side peer) in a guest"
cargo nextest run -p securesign-core --test ccid_qemu --run-ignored all --locked


section "Virtual PIV card: unit tests and lab self-test"
(cd tests/lab/virtual-piv && CARGO_TARGET_DIR="$root/target/virtual-piv" cargo nextest run --locked)
tests/lab/piv/selftest.sh

section "App end to end in the real webview under Xvfb"
tests/app/e2e.sh

section "One signing end to end: portal → API → deep link → app → token → verified result"
tests/e2e/run.sh
