#!/usr/bin/env bash
# Builds the iOS IPA of the SecureSign app (src-tauri) with the project's tauri CLI
# (tests/app/node_modules, installed by tests/app/install.sh):
#   tauri ios init    (once: generates src-tauri/gen/apple)
#   scripts/apply-mobile-config.py ios …   (NFC usage text, PIV AID, NFC entitlement; every build)
#   tauri ios build   (signed with APPLE_DEVELOPMENT_TEAM)
# iOS builds need macOS with Xcode. Elsewhere, or where a piece is missing, it builds
# nothing: it names every missing piece and exits 2. `--check` only checks.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
check_only=false
[[ ${1:-} == --check ]] && check_only=true

missing=()
os=$(uname -s)
[[ $os == Darwin ]] || missing+=("macOS: iOS apps are built on macOS with Xcode; this is $os")

if ! command -v xcodebuild >/dev/null 2>&1; then
  missing+=("Xcode: xcodebuild is not on PATH (install Xcode, then xcode-select -s /Applications/Xcode.app)")
elif ! xcrun --sdk iphoneos --show-sdk-path >/dev/null 2>&1; then
  missing+=("Xcode iOS SDK: xcrun --sdk iphoneos finds no SDK")
fi

tauri="$ROOT/tests/app/node_modules/.bin/tauri"
if [[ ! -x $tauri ]]; then
  missing+=("tauri CLI: $tauri is absent (run tests/app/install.sh)")
fi

installed=$(rustup target list --installed 2>/dev/null || true)
for triple in aarch64-apple-ios; do
  grep -qx "$triple" <<<"$installed" || missing+=("Rust target $triple: not installed (rustup target add $triple)")
done

[[ -n ${APPLE_DEVELOPMENT_TEAM:-} ]] || missing+=("APPLE_DEVELOPMENT_TEAM: not set (the Apple team id that signs the app; the repository holds none)")

if ((${#missing[@]})); then
  {
    echo "build-ios.sh: cannot build the IPA on this machine; missing:"
    printf '  - %s\n' "${missing[@]}"
    echo "Nothing was built."
  } >&2
  exit 2
fi
if $check_only; then
  echo "build-ios.sh: the iOS toolchain is complete"
  exit 0
fi

cd "$ROOT/src-tauri"
[[ -d gen/apple ]] || "$tauri" ios init --ci
# NFC: reader usage text, the PIV AID to select, the tag-reading entitlement (src-tauri/mobile/ios).
python3 "$ROOT/scripts/apply-mobile-config.py" ios \
  gen/apple/securesign_iOS/Info.plist gen/apple/securesign_iOS/securesign_iOS.entitlements
"$tauri" ios build --ci
echo "IPA(s):"
find gen/apple/build -name '*.ipa' -print
