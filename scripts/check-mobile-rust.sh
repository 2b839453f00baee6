#!/usr/bin/env bash
# Type-checks (cargo clippy -D warnings, no linking) the phone-only Rust of the
# token-transport plugin — src/mobile.rs, compiled only for Android/iOS — on a Linux machine
# without the Android NDK or Xcode. Needs the Rust std of the two targets (rustup target add).
#
# iOS: a few dependencies (objc2-exception-helper, through tauri's wry) compile an Objective-C
# file in their build scripts, which needs clang and the iOS SDK. `cargo clippy` links
# nothing, so a stand-in compiler that writes empty objects and a stand-in `xcrun` (both in a
# temp dir, for this command only) let those build scripts pass. The Rust is checked for real;
# nothing built here can run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
pkg=tauri-plugin-securesign-transport
installed=$(rustup target list --installed)
for t in aarch64-linux-android aarch64-apple-ios; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

echo "== $pkg for aarch64-linux-android"
cargo clippy --target aarch64-linux-android -p "$pkg" -- -D warnings

shims=$(mktemp -d)
trap 'rm -rf "$shims"' EXIT
cat >"$shims/cc" <<'SH'
#!/bin/sh
out=""
while [ $# -gt 0 ]; do
  case "$1" in -o) out="$2"; shift ;; -o*) out="${1#-o}" ;; -Fo*) out="${1#-Fo}" ;; esac
  shift
done
[ -n "$out" ] && : >"$out"
exit 0
SH
printf '#!/bin/sh\necho %s\n' "$shims" >"$shims/xcrun"
chmod +x "$shims/cc" "$shims/xcrun"
echo "== $pkg for aarch64-apple-ios (stand-in C compiler for build scripts; nothing is linked)"
PATH="$shims:$PATH" CC_aarch64_apple_ios="$shims/cc" AR_aarch64_apple_ios=ar \
  cargo clippy --target aarch64-apple-ios -p "$pkg" -- -D warnings
echo "mobile Rust of $pkg: clean on both targets"
