#!/usr/bin/env bash
# usage: selftest.sh — starts a private pcscd + virtual PIV card in a temp dir, checks the lab's
# facts with OpenSC's tools and openssl, stops everything by PID. Exits non-zero on any failure.
# Needs install.sh and build.sh to have run.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
started=$(date +%s.%N)
run="$(mktemp -d "${TMPDIR:-/tmp}/piv-selftest.XXXXXX")"
cleanup() {
    "$PIV_LAB_DIR/stop.sh" "$run" || true
    if [ "$failed" -ne 0 ]; then
        echo "--- card.log (tail)"; tail -n 20 "$run/card.log" 2>/dev/null || true
    fi
    rm -rf "$run"
}
passed=0
failed=0
trap cleanup EXIT

check() { # description command...
    local what="$1"
    shift
    if "$@"; then
        passed=$((passed + 1)); echo "ok   $what"
    else
        failed=$((failed + 1)); echo "FAIL $what"
    fi
}

SELECT_PIV="00:A4:04:00:09:A0:00:00:03:08:00:00:10:00"
SELECT_PIV_SHORT="00:A4:04:00:05:A0:00:00:03:08"
PIN_STATUS="00:20:00:80"
hex_ascii() { printf '%s' "$1" | xxd -p | sed 's/../&:/g; s/:$//'; }
VERIFY_PIN="00:20:00:80:08:$(hex_ascii 123456):FF:FF"
VERIFY_WRONG="00:20:00:80:08:$(hex_ascii 999999):FF:FF"

# Status words of the APDUs sent in one card session, one per line, e.g. "63C3".
sws() {
    local args=() a
    for a in "$@"; do args+=(-s "$a"); done
    opensc-tool -r 0 "${args[@]}" 2>/dev/null \
        | sed -n 's/^Received (SW1=0x\(..\), SW2=0x\(..\)).*/\1\2/p' | tr 'a-f' 'A-F'
}
last_sw() { sws "$@" | tail -n 1; }
pin_status() { last_sw "$SELECT_PIV" "$PIN_STATUS"; }
expect_eq() { # what expected actual
    [ "$2" = "$3" ] || { echo "     $1: expected '$2', got '$3'" >&2; return 1; }
}
p11() { pkcs11-tool --module "$OPENSC_PKCS11" "$@"; }
token_flags() { p11 -L 2>/dev/null | sed -n 's/^ *token flags *: //p' | head -n 1; }
has_flag() { token_flags | grep -q "$1"; }
lacks_flag() { ! token_flags | grep -q "$1"; }
wrong_pkcs11_login() { ! p11 --login --pin 999999 -O > /dev/null 2>&1; }

# --- start: pcscd first, then the card, both by PID ---------------------------------------
t0=$(date +%s.%N)
"$PIV_LAB_DIR/start.sh" "$run" > /dev/null 2>&1 || { cat "$run"/*.log >&2; exit 1; }
load_run_env "$run"
start_s=$(echo "$(date +%s.%N) - $t0" | bc)
check "opensc-tool -l lists a card in '$PIV_READER'" card_state_is present
check "pcscd serves this run's own socket (socket activation)" grep -q 'Started by systemd' "$run/pcscd.log"

# --- PIV basics over raw APDUs -------------------------------------------------------------
check "SELECT with the full AID answers 9000" expect_eq SELECT 9000 "$(last_sw "$SELECT_PIV")"
check "SELECT with the 5-byte AID answers 6A82" expect_eq SELECT5 6A82 "$(last_sw "$SELECT_PIV_SHORT")"
check "fresh card: PIN status 63C3 (3 tries)" expect_eq status 63C3 "$(pin_status)"
check "status checks spend no try" expect_eq status 63C3 "$(sws "$SELECT_PIV" "$PIN_STATUS" "$PIN_STATUS" "$PIN_STATUS" | tail -n 1)"
check "VERIFY then status in one session: 9000 (verified)" \
    expect_eq verified "9000 9000 9000" "$(sws "$SELECT_PIV" "$VERIFY_PIN" "$PIN_STATUS" | tr '\n' ' ' | sed 's/ $//')"
# A card reset must drop the verification: disconnect with reset, reconnect, ask.
# (OpenSC reads only the first "app default" block, so the option goes inside it.)
sed 's/^app default {$/app default {\n    reader_driver pcsc {\n        disconnect_action = reset;\n    }/' \
    "$OPENSC_CONF" > "$run/opensc-reset.conf"
OPENSC_CONF="$run/opensc-reset.conf" sws "$SELECT_PIV" "$VERIFY_PIN" > /dev/null
check "card reset drops the verified PIN (status 63C3 after reset)" \
    expect_eq after-reset 63C3 "$(OPENSC_CONF="$run/opensc-reset.conf" last_sw "$SELECT_PIV" "$PIN_STATUS")"

# --- provisioning --------------------------------------------------------------------------
t0=$(date +%s.%N)
check "provision.sh: 9A EC P-256 + 9C RSA-2048, card-signed certificates" \
    "$PIV_LAB_DIR/provision.sh" "$run"
provision_s=$(echo "$(date +%s.%N) - $t0" | bc)
prov="$run/provision"
check "9A certificate subject and India PKI policy OID" \
    bash -c "openssl x509 -in '$prov/9a.pem' -noout -subject -ext certificatePolicies \
             | tr '\n' ' ' | grep -q 'CN = Demo Signer, O = SecureSign Demo, C = IN.*2.16.356.100.2.3'"

# --- signatures through PKCS#11 verify with openssl against the certificates ---------------
head -c 1000 /dev/urandom > "$run/doc.bin"
sign_and_verify() { # id mechanism cert [extra pkcs11-tool args]
    local id="$1" mech="$2" cert="$3"
    shift 3
    p11 --login --pin 123456 --sign --id "$id" -m "$mech" "$@" \
        -i "$run/doc.bin" -o "$run/doc.sig" > /dev/null 2>&1 || return 1
    openssl x509 -in "$cert" -noout -pubkey > "$run/verify.pub"
    openssl dgst -sha256 -verify "$run/verify.pub" -signature "$run/doc.sig" "$run/doc.bin" > /dev/null
}
check "ECDSA P-256 signature (9A, pkcs11-tool --sign) verifies with openssl" \
    sign_and_verify 01 ECDSA-SHA256 "$prov/9a.pem" --signature-format openssl
check "RSA-2048 PKCS#1 v1.5 signature (9C) verifies with openssl" \
    sign_and_verify 02 SHA256-RSA-PKCS "$prov/9c.pem"
cp "$run/doc.bin" "$run/doc.tampered"; printf 'x' >> "$run/doc.tampered"
check "a signature does not verify for other data" \
    bash -c "! openssl dgst -sha256 -verify '$run/verify.pub' -signature '$run/doc.sig' '$run/doc.tampered' > /dev/null 2>&1"

# --- retry counter and blocking through OpenSC's PKCS#11 module ----------------------------
check "PKCS#11 token flags, no failure: no count-low/final-try/locked" \
    bash -c "! pkcs11-tool --module '$OPENSC_PKCS11' -L 2>/dev/null | grep -q 'user PIN \(count low\|final try\|locked\)'"
wrong_pkcs11_login
check "1 wrong PIN: card says 63C2" expect_eq status 63C2 "$(pin_status)"
# OpenSC never sets CKF_USER_PIN_COUNT_LOW for PIV; FINAL_TRY comes after the 2nd failure.
check "1 wrong PIN: token flags without final-try/locked" \
    bash -c "! pkcs11-tool --module '$OPENSC_PKCS11' -L 2>/dev/null | grep -q 'final user PIN try\|user PIN locked'"
wrong_pkcs11_login
check "2 wrong PINs: card says 63C1" expect_eq status 63C1 "$(pin_status)"
check "2 wrong PINs: token flags 'final user PIN try' (CKF_USER_PIN_FINAL_TRY)" has_flag "final user PIN try"
# Persistence: the card is pulled and comes back; the counter must not reset.
"$PIV_LAB_DIR/kill-card.sh" "$run"
check "card killed: opensc-tool -l shows the reader empty" card_state_is absent
t0=$(date +%s.%N)
"$PIV_LAB_DIR/restart-card.sh" "$run"
restart_s=$(echo "$(date +%s.%N) - $t0" | bc)
check "card back after kill: counter still 63C1" expect_eq status 63C1 "$(pin_status)"
check "card back after kill: 9A certificate still on the card" \
    bash -c "pkcs11-tool --module '$OPENSC_PKCS11' --read-object --type cert --id 01 -o '$run/rb.der' > /dev/null 2>&1 \
             && cmp -s '$run/rb.der' <(openssl x509 -in '$prov/9a.pem' -outform DER)"
wrong_pkcs11_login
check "3 wrong PINs: status query (empty VERIFY) says 63C0" expect_eq status 63C0 "$(pin_status)"
check "3 wrong PINs: VERIFY with a PIN says 6983 (blocked)" expect_eq verify 6983 "$(last_sw "$SELECT_PIV" "$VERIFY_PIN")"
check "3 wrong PINs: token flags 'user PIN locked' (CKF_USER_PIN_LOCKED)" has_flag "user PIN locked"
check "blocked: even the right PIN is refused" \
    bash -c "! pkcs11-tool --module '$OPENSC_PKCS11' --login --pin 123456 -O > /dev/null 2>&1"

# --- PUK unblock through PKCS#11 (needs user_pin_unblock_style in OPENSC_CONF) -------------
check "wrong PUK is refused" \
    bash -c "! pkcs11-tool --module '$OPENSC_PKCS11' --unlock-pin --puk 87654321 --new-pin 123456 > /dev/null 2>&1"
check "wrong PUK spent no PIN try and did not unblock (still 63C0)" expect_eq status 63C0 "$(pin_status)"
check "PUK 12345678 unblocks the PIN through C_SetPIN" \
    bash -c "pkcs11-tool --module '$OPENSC_PKCS11' --unlock-pin --puk 12345678 --new-pin 123456 > /dev/null 2>&1"
check "after unblock: 3 tries again (63C3)" expect_eq status 63C3 "$(pin_status)"
check "after unblock: token flags clear" lacks_flag "user PIN"
check "after unblock: signing works" sign_and_verify 01 ECDSA-SHA256 "$prov/9a.pem" --signature-format openssl

# --- APDU round trip: QUICKACK vs the stock loop, same run ---------------------------------
rtt_ms() { # n apdu -> ms per APDU, one session
    local n="$1" apdu="$2" args=(-s "$SELECT_PIV") i t0 t1
    for i in $(seq "$n"); do args+=(-s "$apdu"); done
    t0=$(date +%s%N)
    opensc-tool -r 0 "${args[@]}" > /dev/null 2>&1
    t1=$(date +%s%N)
    echo "scale=3; ($t1 - $t0) / 1000000 / ($n + 1)" | bc
}
# SELECT stays in the glue and the PIV app (no trussed call): the link's round trip.
# PIN status goes through trussed (the auth backend) as well.
fast=$(rtt_ms 400 "$SELECT_PIV")
fast_status=$(rtt_ms 400 "$PIN_STATUS")
"$PIV_LAB_DIR/kill-card.sh" "$run"
PIV_CARD_ARGS=--no-quickack "$PIV_LAB_DIR/restart-card.sh" "$run"
slow=$(rtt_ms 40 "$SELECT_PIV")
"$PIV_LAB_DIR/kill-card.sh" "$run"
"$PIV_LAB_DIR/restart-card.sh" "$run"
check "card restarted with TCP_QUICKACK still answers" expect_eq status 63C3 "$(pin_status)"

total_s=$(echo "$(date +%s.%N) - $started" | bc)
echo "measured: start ${start_s}s, provision ${provision_s}s, card restart ${restart_s}s"
echo "measured: APDU round trip (SELECT, opensc-tool loop) ${fast} ms with TCP_QUICKACK," \
     "${slow} ms stock (delayed ACK): ratio stock/quickack $(echo "scale=1; $slow / $fast" | bc)"
echo "measured: PIN status APDU (through trussed) ${fast_status} ms with TCP_QUICKACK"
echo "measured: selftest total ${total_s}s"
echo "selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
