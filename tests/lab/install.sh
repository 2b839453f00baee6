#!/usr/bin/env bash
# Installs the system packages the SecureSign PKCS#11 token lab needs.
#
# Idempotent and quiet: packages already present are skipped, and apt is only
# touched when something is missing. Run as root, or as a user with sudo.
#
#   softhsm2        SoftHSM2 PKCS#11 module (/usr/lib/softhsm/libsofthsm2.so)
#   opensc          pkcs11-tool, used to initialise tokens and import objects
#   openssl         key generation and the demo CA (`openssl ca`)
#   libssl-dev      OpenSSL 3 headers + .so that kryoptic links against
#   libclang-dev    bindgen (kryoptic's ossl-sys generates OpenSSL bindings)
#   libsqlite3-dev  kryoptic's sqlite token storage (system libsqlite3)
#   pkg-config      locates OpenSSL and sqlite for the kryoptic build
set -euo pipefail

packages=(softhsm2 opensc openssl libssl-dev libclang-dev libsqlite3-dev pkg-config)

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "token lab: all system packages present"
    exit 0
fi

sudo_cmd=()
if ((EUID != 0)); then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "token lab: need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
    sudo_cmd=(sudo)
fi

echo "token lab: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "token lab: installed ${missing[*]}"
