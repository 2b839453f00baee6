#!/usr/bin/env bash
# usage: restart-card.sh RUNDIR — puts the same card back (same state directory: keys,
# certificates, PIN/PUK and retry counters kept) and waits until pcscd sees it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
run="$(rundir_arg "${1:-}")"
stop_pid_file "$run/card.pid" securesign-virtual-piv
start_card "$run"
