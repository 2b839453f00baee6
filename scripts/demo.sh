#!/usr/bin/env bash
# SecureSign demo on an embedded default: a fresh demo SoftHSM2 token holding a demo DSC
# certificate, then what a field user does with it — token and certificate, PIN status, a
# wrong PIN (the status shows it), one PIN entry for a batch of documents — and every
# signature checked with openssl, a tool that knows nothing about SecureSign.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Installing what the demo needs (apt, once)"
tests/lab/install.sh
step "Building the securesign CLI"
cargo build --quiet -p securesign-cli -p securesign-testlab --bins

step "Provisioning a demo token (SoftHSM2) with a demo DSC certificate"
eval "$(target/debug/securesign-lab softhsm)"
work=$(mktemp -d)
trap 'rm -rf "$SECURESIGN_LAB_DIR" "$work"' EXIT
ss=target/debug/securesign
pin=$SECURESIGN_LAB_USER_PIN
echo "module $SECURESIGN_PKCS11_MODULE; demo PIN $pin (a well-known test value)"

step "securesign tokens"
$ss tokens
step "securesign certs"
$ss certs
step "securesign pin status"
$ss pin status
step "A wrong PIN (the token counts it)"
echo 000000 | $ss pin verify --pin-stdin || true
$ss pin status

step "Signing 5 documents as one batch with one PIN entry"
mkdir -p "$work/docs" "$work/signed"
for i in 1 2 3 4 5; do
  printf 'Demo document %s — SecureSign %s\n' "$i" "$(date -u +%FT%TZ)" > "$work/docs/document-$i.txt"
done
echo "$pin" | $ss sign --key signer-rsa --in "$work"/docs/*.txt --out "$work/signed" --pin-stdin --json > "$work/report.json"
python3 - "$work/report.json" "$work/signer.der" <<'PY'
import base64, json, sys
report = json.load(open(sys.argv[1]))
open(sys.argv[2], "wb").write(base64.b64decode(report["certificate"]))
print(f"signed {len(report['signatures'])}/{report['total']} with key {report['key']} ({report['scheme']}), complete={report['complete']}")
for s in report["signatures"]:
    print(f"  {s['file']} -> {s['signatureFile']}")
PY

step "Verifying every signature with openssl against the certificate's public key"
openssl x509 -inform DER -in "$work/signer.der" -noout -subject -enddate
openssl x509 -inform DER -in "$work/signer.der" -pubkey -noout > "$work/signer.pub.pem"
for doc in "$work"/docs/*.txt; do
  printf '%s: ' "$(basename "$doc")"
  openssl dgst -sha256 -verify "$work/signer.pub.pem" -signature "$work/signed/$(basename "$doc").sig" "$doc"
done
printf 'tampered copy: '
cp "$work/docs/document-1.txt" "$work/tampered.txt"; echo "one more line" >> "$work/tampered.txt"
if openssl dgst -sha256 -verify "$work/signer.pub.pem" -signature "$work/signed/document-1.txt.sig" "$work/tampered.txt"; then
  echo "demo: a tampered document verified — this must never happen" >&2; exit 1
fi

step "Done"
echo "The PIN went from stdin to the token only; the demo token is removed on exit."
