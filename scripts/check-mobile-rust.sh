#!/usr/bin/env bash
# Type-checks (cargo clippy -D warnings, no linking) the phone-only Rust — the token-transport
# plugin's src/mobile.rs and the app's src/mobile.rs, compiled only for Android/iOS — on a Linux machine
# without the Android NDK or Xcode. Needs the Rust std of the two targets (rustup target add).
#
# A few dependencies compile C in their build scripts (ring, for both targets; on iOS
# objc2-exception-helper, through tauri's wry), which needs the NDK's clang or the iOS SDK. `cargo clippy` links
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

shims=$(mktemp -d)
trap 'rm -rf "$shims"' EXIT
cat >"$shims/target-cc" <<'SH'
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
chmod +x "$shims/target-cc" "$shims/xcrun"
for p in "$pkg" securesign-app; do
  echo "== $p for aarch64-linux-android (stand-in C compiler for build scripts; nothing is linked)"
  PATH="$shims:$PATH" CC_aarch64_linux_android="$shims/target-cc" AR_aarch64_linux_android=ar \
    cargo clippy --target aarch64-linux-android -p "$p" -- -D warnings
  echo "== $p for aarch64-apple-ios (stand-in C compiler for build scripts; nothing is linked)"
  PATH="$shims:$PATH" CC_aarch64_apple_ios="$shims/target-cc" AR_aarch64_apple_ios=ar \
    cargo clippy --target aarch64-apple-ios -p "$p" -- -D warnings
done
echo "mobile Rust of $pkg and securesign-app (mobile.rs, the phone token source): clean on both targets"
