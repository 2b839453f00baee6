#!/usr/bin/env bash
# usage: kill-card.sh RUNDIR — SIGKILLs the card process (the card is yanked out of the
# reader mid-whatever) and waits until pcscd reports the reader empty. pcscd stays up.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
run="$(rundir_arg "${1:-}")"
load_run_env "$run"
pid_file_alive "$run/card.pid" securesign-virtual-piv || die "no card running for $run"
stop_pid_file "$run/card.pid" securesign-virtual-piv KILL
wait_until 10 card_state_is absent || die "pcscd still reports a card"
