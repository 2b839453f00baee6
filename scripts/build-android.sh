#!/usr/bin/env bash
# Builds the Android APK of the SecureSign app (src-tauri) with the project's tauri CLI
# (tests/app/node_modules, installed by tests/app/install.sh):
#   tauri android init   (once: generates src-tauri/gen/android)
#   scripts/apply-mobile-config.py android …   (the USB token filter, every build)
#   tauri android build --apk --target <ANDROID_TARGETS>
# Where the Android toolchain is missing it builds nothing: it names every missing piece and
# exits 2. `--check` only checks (exit 0 when a build could start).
#
# Environment: ANDROID_HOME (or ANDROID_SDK_ROOT): the SDK with platforms/ and build-tools/;
# NDK_HOME: the NDK (default: the newest $ANDROID_HOME/ndk/*); JAVA_HOME or java on PATH
# (JDK 17+); ANDROID_TARGETS: tauri's target names, default "aarch64" (aarch64 armv7 i686 x86_64).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
check_only=false
[[ ${1:-} == --check ]] && check_only=true

targets=${ANDROID_TARGETS:-aarch64}
missing=()

tauri="$ROOT/tests/app/node_modules/.bin/tauri"
[[ -x $tauri ]] || missing+=("tauri CLI: $tauri is absent (run tests/app/install.sh)")

java_bin=java
[[ -n ${JAVA_HOME:-} ]] && java_bin="$JAVA_HOME/bin/java"
if ! command -v "$java_bin" >/dev/null 2>&1; then
  missing+=("JDK 17+: no java (set JAVA_HOME or install openjdk-17-jdk)")
else
  java_major=$("$java_bin" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  if [[ -z $java_major || $java_major -lt 17 ]]; then
    missing+=("JDK 17+: $java_bin is version ${java_major:-unknown}")
  fi
fi

sdk=${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}
if [[ -z $sdk ]]; then
  missing+=("Android SDK: ANDROID_HOME is not set (install the SDK command-line tools, then sdkmanager \"platforms;android-36\" \"build-tools;36.0.0\" \"platform-tools\")")
elif [[ ! -d $sdk ]]; then
  missing+=("Android SDK: ANDROID_HOME=$sdk does not exist")
else
  compgen -G "$sdk/platforms/android-*" >/dev/null || missing+=("Android SDK platform: $sdk/platforms/android-* is absent (sdkmanager \"platforms;android-36\")")
  compgen -G "$sdk/build-tools/*" >/dev/null || missing+=("Android SDK build-tools: $sdk/build-tools/* is absent (sdkmanager \"build-tools;36.0.0\")")
fi

ndk=${NDK_HOME:-}
if [[ -z $ndk && -n $sdk && -d $sdk/ndk ]]; then
  ndk=$(find "$sdk/ndk" -mindepth 1 -maxdepth 1 -type d | sort -V | tail -n1)
fi
if [[ -z $ndk ]]; then
  missing+=("Android NDK: NDK_HOME is not set and no \$ANDROID_HOME/ndk/<version> exists (sdkmanager \"ndk;27.0.12077973\")")
elif [[ ! -d $ndk/toolchains/llvm ]]; then
  missing+=("Android NDK: $ndk has no toolchains/llvm (not an NDK)")
fi

declare -A rust_target=([aarch64]=aarch64-linux-android [armv7]=armv7-linux-androideabi
  [i686]=i686-linux-android [x86_64]=x86_64-linux-android)
installed=$(rustup target list --installed 2>/dev/null || true)
for t in $targets; do
  triple=${rust_target[$t]:-}
  if [[ -z $triple ]]; then
    missing+=("ANDROID_TARGETS: unknown target '$t' (aarch64 armv7 i686 x86_64)")
  elif ! grep -qx "$triple" <<<"$installed"; then
    missing+=("Rust target $triple: not installed (rustup target add $triple)")
  fi
done

if ((${#missing[@]})); then
  {
    echo "build-android.sh: cannot build the APK on this machine; missing:"
    printf '  - %s\n' "${missing[@]}"
    echo "Nothing was built."
  } >&2
  exit 2
fi
if $check_only; then
  echo "build-android.sh: the Android toolchain is complete (targets: $targets)"
  exit 0
fi

export ANDROID_HOME="$sdk" NDK_HOME="$ndk"
cd "$ROOT/src-tauri"
[[ -d gen/android ]] || "$tauri" android init --ci
# The USB token filter of the main activity (src-tauri/mobile/android/usb-token-activity.xml).
python3 "$ROOT/scripts/apply-mobile-config.py" android gen/android/app/src/main/AndroidManifest.xml
# shellcheck disable=SC2086  # one word per target
"$tauri" android build --ci --apk --target $targets
echo "APK(s):"
find gen/android/app/build/outputs/apk -name '*.apk' -print
