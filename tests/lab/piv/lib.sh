# Shared helpers for the virtual PIV lab scripts; sourced, not run.
# shellcheck shell=bash

PIV_LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$PIV_LAB_DIR/../../.." && pwd)"
VIRTUAL_PIV_DIR="$REPO_ROOT/tests/lab/virtual-piv"
export CARGO_TARGET_DIR="${VIRTUAL_PIV_TARGET_DIR:-$REPO_ROOT/target/virtual-piv}"
VIRTUAL_PIV_BIN="$CARGO_TARGET_DIR/debug/securesign-virtual-piv"
PCSCD_BIN="${PCSCD_BIN:-/usr/sbin/pcscd}"
VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
OPENSC_PKCS11=/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
PIV_READER="Virtual PCD 00 00"
# Debian's python3, not a pyenv shim that may lack a version.
PYTHON3="$(command -v /usr/bin/python3 || command -v python3)"

die() { echo "piv-lab: $*" >&2; exit 1; }
log() { echo "piv-lab: $*" >&2; }

# Resolves RUNDIR (first argument) to an absolute path; it must be given.
rundir_arg() {
    [ -n "${1:-}" ] || die "usage: $(basename "$0") RUNDIR"
    mkdir -p "$1"
    (cd "$1" && pwd)
}

# Environment for PC/SC and OpenSC clients of this run's pcscd.
load_run_env() {
    local run="$1"
    [ -f "$run/env" ] || die "$run/env missing: run start.sh $run first"
    # shellcheck disable=SC1091
    . "$run/env"
}

# True if the PID in FILE is alive and its command line contains WORD
# (guards against a recycled PID).
pid_file_alive() {
    local file="$1" word="$2" pid
    [ -f "$file" ] || return 1
    pid="$(cat "$file")"
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$word"
}

# Stops the process whose PID is in FILE (if it is still the one we started):
# SIGNAL first (default TERM), SIGKILL after 5 s; removes FILE.
stop_pid_file() {
    local file="$1" word="$2" signal="${3:-TERM}" pid i
    if pid_file_alive "$file" "$word"; then
        pid="$(cat "$file")"
        kill "-$signal" "$pid" 2>/dev/null || true
        for i in $(seq 50); do
            [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null || break
            sleep 0.1
        done
        if [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$file"
}

# Waits up to SECONDS for COMMAND to succeed.
wait_until() {
    local seconds="$1" i
    shift
    for i in $(seq $((seconds * 10))); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

card_state_is() { # present|absent
    local want="Yes"
    [ "$1" = absent ] && want="No"
    opensc-tool -l 2>/dev/null | grep -Eq "^[0-9]+ +$want +.*$PIV_READER\$"
}

# Starts the card process for RUN in the background and waits for it to be seen by pcscd.
#
# vpcd sometimes never takes the new card's connection after a card process was killed
# in the middle of an exchange (seen about 1 restart in 6 on a loaded machine: the card
# is connected, pcscd keeps reporting the reader empty). As a person would pull the card
# and put it in again, the card process is then stopped and started once more (the same
# state directory: keys, PIN and counters are kept); three attempts at most.
start_card() {
    local run="$1" attempt
    load_run_env "$run"
    [ -x "$VIRTUAL_PIV_BIN" ] || die "$VIRTUAL_PIV_BIN missing: run tests/lab/piv/build.sh"
    pid_file_alive "$run/card.pid" securesign-virtual-piv && die "card already running (pid $(cat "$run/card.pid"))"
    for attempt in 1 2 3; do
        : > "$run/card.log"
        # PIV_CARD_ARGS: extra card options, e.g. --no-quickack for the latency baseline.
        # shellcheck disable=SC2086
        "$VIRTUAL_PIV_BIN" --port "$PIV_VPCD_PORT" --state "$run/card-state" ${PIV_CARD_ARGS:-} \
            >> "$run/card.log" 2>&1 < /dev/null &
        echo $! > "$run/card.pid"
        wait_until 10 grep -q '^securesign-virtual-piv ready' "$run/card.log" \
            || { cat "$run/card.log" >&2; die "card did not report ready"; }
        wait_until 10 card_state_is present && return 0
        echo "piv-lab: pcscd does not see the card in '$PIV_READER' (attempt $attempt); inserting it again" >&2
        stop_pid_file "$run/card.pid" securesign-virtual-piv
    done
    opensc-tool -l >&2
    die "pcscd does not see the card in '$PIV_READER'"
}
