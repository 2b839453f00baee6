#!/usr/bin/env bash
# Makes the fuzz seeds that need real cryptography: a small PKI (an EC P-256 root, an EC
# and an RSA-2048 signer under it, a CRL) made with the openssl CLI, then raw and CMS
# signatures, PIV card answers and API bodies built from it by the `make-seeds` example.
# Writes fuzz/targets/data/anchor.pem (the anchor the cert_cms and server_bodies targets
# trust) and fuzz/seeds/<target>/seed-* (never minimised; the fuzzers read them beside
# fuzz/corpus/<target>/). Run once; the results are committed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pki=$(mktemp -d)
trap 'rm -rf "$pki"' EXIT
cd "$pki"
days=3650
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 7300 -subj "/C=IN/O=SecureSign Fuzz/CN=SecureSign Fuzz Root" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
cat > leaf.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,nonRepudiation
certificatePolicies=2.16.356.100.2.3
EXT
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec.key -out ec.csr \
  -subj "/C=IN/O=Fuzz Signers/serialNumber=ABCDE1234F/CN=Fuzz EC Signer" 2>/dev/null
openssl x509 -req -in ec.csr -CA ca.pem -CAkey ca.key -set_serial 0x1001 -days $days \
  -extfile leaf.ext -out ec.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.csr \
  -subj "/C=IN/O=Fuzz Signers/serialNumber=PQRSX6789K/CN=Fuzz RSA Signer" 2>/dev/null
openssl x509 -req -in rsa.csr -CA ca.pem -CAkey ca.key -set_serial 0x1002 -days $days \
  -extfile leaf.ext -out rsa.pem 2>/dev/null
# A CRL of the root revoking the RSA signer.
mkdir -p ca/newcerts && touch ca/index.txt && echo 1000 > ca/crlnumber
printf 'V\t%s\t\t1002\tunknown\t/CN=x\n' "$(date -u -d "+${days} days" +%y%m%d%H%M%SZ)" > ca/index.txt
cat > ca.cnf <<'CNF'
[ca]
default_ca = fuzz
[fuzz]
dir = ./ca
database = $dir/index.txt
crlnumber = $dir/crlnumber
new_certs_dir = $dir/newcerts
default_md = sha256
default_crl_days = 3650
CNF
openssl ca -config ca.cnf -revoke rsa.pem -keyfile ca.key -cert ca.pem 2>/dev/null || true
openssl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.pem -out crl.pem 2>/dev/null
openssl crl -in crl.pem -outform DER -out crl.der
for name in ca ec rsa; do openssl x509 -in $name.pem -outform DER -out $name.der; done
cp ca.pem "$here/targets/data/anchor.pem"
cd "$here/.."
cargo run -q -p securesign-fuzz-targets --example make-seeds -- "$pki" "$here/seeds"
