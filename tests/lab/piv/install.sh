#!/usr/bin/env bash
# Installs what the virtual PIV lab needs (Debian packages). Idempotent and quiet.
#   pcscd vsmartcard-vpcd     PC/SC daemon and the virtual reader driver the card plugs into
#   opensc                    opensc-tool, piv-tool, pkcs11-tool and opensc-pkcs11.so
#   libpcsclite-dev pkg-config  for Rust code using the `pcsc` crate
#   libengine-pkcs11-openssl  lets openssl sign the certificates with the card's own keys
#   openssl xxd python3       provisioning / socket activation helpers
set -euo pipefail
packages=(pcscd vsmartcard-vpcd opensc libpcsclite-dev pkg-config libengine-pkcs11-openssl openssl xxd python3)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q "${missing[@]}" > /tmp/piv-lab-apt.log 2>&1 || {
        $SUDO apt-get update -q > /dev/null 2>&1
        $SUDO apt-get install -y -q "${missing[@]}" > /tmp/piv-lab-apt.log 2>&1 \
            || { cat /tmp/piv-lab-apt.log >&2; exit 1; }
    }
    echo "piv-lab: installed ${missing[*]}"
fi
