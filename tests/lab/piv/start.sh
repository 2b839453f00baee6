#!/usr/bin/env bash
# usage: start.sh RUNDIR [VPCD_PORT]
# Starts a private pcscd (own socket RUNDIR/pcscd.comm, own reader config, own vpcd port pair)
# and then the virtual PIV card with its state in RUNDIR/card-state. Waits until the card is
# visible in "Virtual PCD 00 00". Clients: `. RUNDIR/env` (sets PCSCLITE_CSOCK_NAME, OPENSC_CONF).
# VPCD_PORT defaults to a free port pair (vpcd opens PORT and PORT+1).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
run="$(rundir_arg "${1:-}")"
port="${2:-}"

command -v "$PCSCD_BIN" > /dev/null && [ -f "$VPCD_DRIVER" ] || die "pcscd/vpcd missing: run tests/lab/piv/install.sh"
pid_file_alive "$run/pcscd.pid" pcscd && die "pcscd already running for $run (pid $(cat "$run/pcscd.pid"))"

if [ -z "$port" ]; then
    port="$("$PYTHON3" - <<'PY'
import socket
for _ in range(50):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        p = probe.getsockname()[1]
    if p >= 65535:
        continue
    try:
        with socket.socket() as b, socket.socket() as c:
            b.bind(("0.0.0.0", p))
            c.bind(("0.0.0.0", p + 1))
    except OSError:
        continue
    print(p)
    break
PY
)"
    [ -n "$port" ] || die "no free port pair for vpcd"
fi

mkdir -p "$run/reader.conf.d" "$run/card-state"
printf 'FRIENDLYNAME "Virtual PCD"\nDEVICENAME   /dev/null:0x%X\nLIBPATH      %s\nCHANNELID    0x%X\n' \
    "$port" "$VPCD_DRIVER" "$port" > "$run/reader.conf.d/vpcd"
# OpenSC: no on-disk cache (fresh virtual cards share one serial number) and PUK unblock
# through C_SetPIN in an unlogged session.
cat > "$run/opensc.conf" <<CONF
app default {
    framework pkcs15 {
        use_file_caching = no;
    }
}
app opensc-pkcs11 {
    pkcs11 {
        user_pin_unblock_style = set_pin_in_unlogged_session;
    }
}
CONF
cat > "$run/env" <<ENV
export PCSCLITE_CSOCK_NAME="$run/pcscd.comm"
export OPENSC_CONF="$run/opensc.conf"
export PIV_VPCD_PORT=$port
export PIV_READER="$PIV_READER"
export PIV_RUN_DIR="$run"
ENV

: > "$run/pcscd.log"
"$PYTHON3" "$PIV_LAB_DIR/socket-activate.py" "$run/pcscd.comm" \
    "$PCSCD_BIN" --foreground --info -c "$run/reader.conf.d" >> "$run/pcscd.log" 2>&1 < /dev/null &
echo $! > "$run/pcscd.pid"
wait_until 10 grep -q 'daemon ready' "$run/pcscd.log" \
    || { cat "$run/pcscd.log" >&2; die "pcscd did not become ready"; }
grep -q 'Started by systemd' "$run/pcscd.log" || die "pcscd ignored the passed socket"

start_card "$run"
log "ready: pcscd pid $(cat "$run/pcscd.pid"), card pid $(cat "$run/card.pid"), vpcd port $port; . $run/env"
