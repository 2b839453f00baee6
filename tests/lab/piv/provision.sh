#!/usr/bin/env bash
# usage: provision.sh RUNDIR
# Puts keys and certificates on the running virtual card, through its real interfaces only:
#   9A  EC P-256 key   generated on the card (GENERATE ASYMMETRIC KEY PAIR via piv-tool -s)
#   9C  RSA-2048 key   generated on the card
# and for each a certificate "CN=Demo Signer, O=SecureSign Demo, C=IN" with the India PKI
# policy OID 2.16.356.100.2.3, stored with PUT DATA (piv-tool -C). With SECURESIGN_LAB_PKI_DIR
# (a lab PKI made by `securesign-lab pki DIR`), the card signs a CSR (openssl + libp11's
# pkcs11 engine over opensc-pkcs11.so, PIN 123456) and the PKI's licensed CA issues the
# certificate (`openssl ca`), so a server trusting the PKI's root trusts the card's
# signatures; without it the certificate is self-signed BY THE CARD.
# OpenSC only exposes a private key once its slot holds a certificate, so a placeholder
# certificate carrying the card's public key goes in first.
# Outputs in RUNDIR/provision/: 9a.pem 9c.pem (certificates), 9a.pub.pem 9c.pub.pem.
# Management key: PIV_MGMT_KEY (hex), default 010203040506070801020304050607080102030405060708.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
run="$(rundir_arg "${1:-}")"
load_run_env "$run"
out="$run/provision"
mkdir -p "$out"
export OPENSSL_CONF=/dev/null # the system config must not pull in other engines/providers
PIN="${PIV_PIN:-123456}"
SUBJECT="/CN=Demo Signer/O=SecureSign Demo/C=IN"
POLICY_OID=2.16.356.100.2.3

printf '%s' "${PIV_MGMT_KEY:-010203040506070801020304050607080102030405060708}" | xxd -r -p > "$out/mgmt.key"
chmod 600 "$out/mgmt.key"
export PIV_EXT_AUTH_KEY="$out/mgmt.key"

# Sends one APDU after mutual authentication with the management key; prints the response
# data as hex and fails unless the card answered 9000.
admin_apdu() {
    local reply
    reply="$(piv-tool -A M:9B:03 -s "$1" 2>&1)" || true
    grep -q 'Received (SW1=0x90, SW2=0x00)' <<< "$reply" \
        || { echo "$reply" >&2; die "card refused APDU $1"; }
    awk '/^Received/{r=1;next} r{print substr($0,1,48)}' <<< "$reply" | tr -d ' \n'
}

# Hex of the value of the first TLV with tag TAG (1 byte, as 2 hex digits) in hex string DATA,
# scanning the children of the 7F49 template. Handles 1-3 byte BER lengths.
tlv_value() {
    "$PYTHON3" - "$1" "$2" <<'PY'
import sys
tag, data = int(sys.argv[1], 16), bytes.fromhex(sys.argv[2])
def read_len(b, i):
    n = b[i]
    if n < 0x80:
        return n, i + 1
    k = n & 0x7F
    return int.from_bytes(b[i + 1:i + 1 + k], "big"), i + 1 + k
assert data[:2] == b"\x7f\x49", "not a public key template"
length, i = read_len(data, 2)
end = i + length
while i < end:
    t = data[i]
    n, i = read_len(data, i + 1)
    if t == tag:
        print(data[i:i + n].hex())
        sys.exit(0)
    i += n
sys.exit("tag %02x not found" % tag)
PY
}

generate_ec_p256() { # slot -> PEM public key on stdout
    local template point
    template="$(admin_apdu "00:47:00:$1:05:AC:03:80:01:11:00")"
    point="$(tlv_value 86 "$template")"
    [ "${#point}" -eq 130 ] || die "unexpected EC point from slot $1: $point"
    echo "3059301306072a8648ce3d020106082a8648ce3d030107034200$point" | xxd -r -p \
        | openssl pkey -pubin -inform DER
}

generate_rsa_2048() { # slot -> PEM public key on stdout
    local template modulus exponent
    template="$(admin_apdu "00:47:00:$1:05:AC:03:80:01:07:00")"
    modulus="$(tlv_value 81 "$template")"
    exponent="$(tlv_value 82 "$template")"
    [ "${#modulus}" -eq 512 ] || die "unexpected RSA modulus length from slot $1"
    printf 'asn1=SEQUENCE:rsa\n[rsa]\nn=INTEGER:0x%s\ne=INTEGER:0x%s\n' "$modulus" "$exponent" \
        > "$out/rsa.genconf"
    openssl asn1parse -genconf "$out/rsa.genconf" -noout -out "$out/rsa.der"
    openssl pkey -pubin -inform DER -in "$out/rsa.der" 2>/dev/null \
        || openssl rsa -RSAPublicKey_in -inform DER -in "$out/rsa.der" -pubout 2>/dev/null
}

put_cert() { # slot pem-file
    piv-tool -A M:9B:03 -C "$1" -i "$2" > "$out/put-$1.log" 2>&1 || true
}

# The card's key signs: a self-signed certificate, or (with a lab PKI) a CSR that the PKI's
# licensed CA turns into the certificate. SLOT KEY-URI OUT.
card_signed_cert() {
    local slot="$1" key="$2" cert="$3" pki="${SECURESIGN_LAB_PKI_DIR:-}"
    local log="$out/sign-$slot.log"
    if [ -z "$pki" ]; then
        openssl req -new -x509 -engine pkcs11 -keyform engine -key "$key" -passin "pass:$PIN" \
            -subj "$SUBJECT" -days 3650 -sha256 -set_serial "0x$(openssl rand -hex 8)" \
            -addext "certificatePolicies=$POLICY_OID" \
            -addext "keyUsage=critical,digitalSignature,nonRepudiation" \
            -out "$cert" <<< "$PIN" > "$log" 2>&1 \
            || { cat "$log" >&2; die "card did not sign the certificate for $slot"; }
        openssl verify -check_ss_sig -CAfile "$cert" "$cert" > /dev/null \
            || die "certificate for $slot does not verify"
        return
    fi
    openssl req -new -engine pkcs11 -keyform engine -key "$key" -passin "pass:$PIN" \
        -subj "$SUBJECT" -sha256 -out "$out/$slot.csr" <<< "$PIN" > "$log" 2>&1 \
        || { cat "$log" >&2; die "card did not sign the CSR for $slot"; }
    openssl req -verify -noout -in "$out/$slot.csr" > /dev/null 2>&1 \
        || die "the CSR for $slot is not signed by the card's key"
    printf '%s\n' "[ ext ]" "basicConstraints = critical, CA:false" \
        "keyUsage = critical, digitalSignature, nonRepudiation" \
        "certificatePolicies = $POLICY_OID" "subjectKeyIdentifier = hash" \
        "authorityKeyIdentifier = keyid" > "$out/$slot.ext"
    openssl ca -batch -notext -config "$pki/ca/openssl.cnf" -cert "$pki/ca.pem" \
        -keyfile "$pki/ca/key.pem" -in "$out/$slot.csr" -out "$cert" -days 730 \
        -extfile "$out/$slot.ext" -extensions ext >> "$log" 2>&1 \
        || { cat "$log" >&2; die "the lab CA did not issue the certificate for $slot"; }
    openssl verify -CAfile "$pki/root.pem" -untrusted "$pki/ca.pem" "$cert" > /dev/null \
        || die "certificate for $slot does not chain to the lab root"
    rm -f "$out/$slot.csr" "$out/$slot.ext"
}

# Certificate for SLOT, PKCS#11 key id ID, public key PUB: placeholder first, then the real
# one signed by the card's key (card_signed_cert).
certify() {
    local slot="$1" id="$2" pub="$3" keytype="$4"
    openssl genpkey $keytype -out "$out/placeholder.key" 2> /dev/null
    openssl req -new -key "$out/placeholder.key" -subj "/CN=placeholder" -out "$out/placeholder.csr"
    openssl x509 -req -in "$out/placeholder.csr" -signkey "$out/placeholder.key" \
        -force_pubkey "$pub" -days 1 -out "$out/placeholder-$slot.pem" 2> /dev/null
    put_cert "$slot" "$out/placeholder-$slot.pem"
    card_signed_cert "$slot" "pkcs11:id=%$id;type=private;pin-value=$PIN" "$out/${slot,,}.pem"
    # The certificate must carry the card's key.
    [ "$(openssl x509 -in "$out/${slot,,}.pem" -noout -pubkey)" = "$(cat "$pub")" ] \
        || die "certificate for $slot does not carry the card's public key"
    put_cert "$slot" "$out/${slot,,}.pem"
    rm -f "$out/placeholder.key" "$out/placeholder.csr" "$out/placeholder-$slot.pem"
}

generate_ec_p256 9A > "$out/9a.pub.pem"
generate_rsa_2048 9C > "$out/9c.pub.pem"
certify 9A 01 "$out/9a.pub.pem" "-algorithm EC -pkeyopt ec_paramgen_curve:P-256"
certify 9C 02 "$out/9c.pub.pem" "-algorithm RSA -pkeyopt rsa_keygen_bits:2048"

# Read back through PKCS#11: both certificates are on the card.
for pair in 01:9a 02:9c; do
    pkcs11-tool --module "$OPENSC_PKCS11" --read-object --type cert --id "${pair%%:*}" \
        -o "$out/readback.der" > /dev/null 2>&1 || die "cannot read back certificate ${pair#*:}"
    cmp -s "$out/readback.der" <(openssl x509 -in "$out/${pair#*:}.pem" -outform DER) \
        || die "certificate read back from slot ${pair#*:} differs"
done
rm -f "$out/readback.der" "$out/rsa.genconf" "$out/rsa.der"
log "provisioned 9A (EC P-256) and 9C (RSA-2048) with ${SECURESIGN_LAB_PKI_DIR:+lab-CA-issued }card-signed certificates in $out"
