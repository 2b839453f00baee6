#!/usr/bin/env bash
# Installs what the app's build and its end-to-end tests need. Idempotent and quiet:
# apt runs only for missing packages; npm ci only when node_modules is stale;
# tauri-driver is installed only when ~/.cargo/bin lacks it (CI may cache that dir).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

packages=(
  libwebkit2gtk-4.1-dev build-essential pkg-config libssl-dev
  libayatana-appindicator3-dev librsvg2-dev
  webkit2gtk-driver xvfb xauth dbus dbus-x11 libglib2.0-bin
  desktop-file-utils xdg-utils curl
  gdb  # gcore: the PIN hygiene tests dump the CLI and app processes (issue 13)
  python3  # scripts/apply-mobile-config.py, run by src-tauri/tests/packaging.rs
  fonts-lohit-deva  # Devanagari glyphs (187 kB): the Hindi screens' screenshots are legible
)
# Node: this machine image ships NodeSource's nodejs (npm inside); Debian's `npm` package
# conflicts with it. Install Debian's only where no node/npm exists at all.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=""; [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The token lab (SoftHSM2, OpenSSL tools) has its own script.
"$here/../lab/install.sh"

if [[ ! -d "$here/node_modules" || "$here/package-lock.json" -nt "$here/node_modules" ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$here/node_modules"
fi

if ! command -v tauri-driver >/dev/null 2>&1 && [[ ! -x "$HOME/.cargo/bin/tauri-driver" ]]; then
  cargo install tauri-driver --locked --quiet
fi
