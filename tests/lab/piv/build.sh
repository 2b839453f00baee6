#!/usr/bin/env bash
# Builds securesign-virtual-piv (a separate cargo project) into target/virtual-piv.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$VIRTUAL_PIV_DIR"
cargo build --locked --quiet --bin securesign-virtual-piv
echo "piv-lab: built $VIRTUAL_PIV_BIN"
