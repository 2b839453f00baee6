#!/usr/bin/env bash
# Installs what the server's tests need: the real `curl` (the seed's curl example is run
# verbatim), `openssl` (test keys, certificates and signatures), `postgresql` (the
# server binaries under /usr/lib/postgresql/*/bin: server/tests/with-postgres.sh runs a
# private cluster from them for the PostgreSQL pass; no system service is used) and
# `haproxy` (the load balancer of the multi-instance tests, started from a generated
# config and stopped by PID; its service is not used), `chromium` and `chromium-driver`
# (the Admin Console's browser test drives the headless browser through chromedriver).
# Idempotent and quiet.
set -euo pipefail
packages=(curl openssl postgresql haproxy chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
    echo "server tests: installed ${missing[*]}"
fi
