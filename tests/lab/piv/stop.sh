#!/usr/bin/env bash
# usage: stop.sh RUNDIR — stops the card and pcscd started by start.sh, by their PIDs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
run="$(rundir_arg "${1:-}")"
stop_pid_file "$run/card.pid" securesign-virtual-piv
stop_pid_file "$run/pcscd.pid" pcscd
rm -f "$run/pcscd.comm"
