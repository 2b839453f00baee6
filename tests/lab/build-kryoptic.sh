#!/usr/bin/env bash
# Builds the kryoptic PKCS#11 module for the SecureSign token lab and prints
# its path. A no-op (just prints the path) when the module is already built
# from the current pinned wrapper (tests/lab/kryoptic/Cargo.{toml,lock}).
#
# Output: tests/lab/.cache/libkryoptic_pkcs11.so   (git-ignored, stable path)
# Needs:  tests/lab/install.sh (libclang-dev, libssl-dev, libsqlite3-dev, pkg-config)
#
# Why a wrapper crate: crates.io `kryoptic` is a cdylib-only package. The
# wrapper (its own workspace, excluded from the root one) depends on it with
# `default-features = false, features = ["minimal"]` plus
# `kryoptic-lib/dynamic` (link the system OpenSSL 3 instead of building it),
# so Cargo compiles the module; this script copies it to a stable path.
set -euo pipefail

lab_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
wrapper="$lab_dir/kryoptic"
cache="$lab_dir/.cache"
module="$cache/libkryoptic_pkcs11.so"
stamp="$cache/libkryoptic_pkcs11.stamp"

want_stamp=$(cat "$wrapper/Cargo.toml" "$wrapper/Cargo.lock" | sha256sum | cut -d' ' -f1)
if [[ -f "$module" && -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" ]]; then
    echo "$module"
    exit 0
fi

mkdir -p "$cache"
started=$SECONDS
# The JSON messages name the artifacts Cargo produced; pick the module's .so.
so_path=$(
    CARGO_TARGET_DIR="$cache/target" cargo build --release --locked --quiet \
        --manifest-path "$wrapper/Cargo.toml" \
        --message-format=json-render-diagnostics |
        grep '"name":"kryoptic_pkcs11"' |
        grep -o '"filenames":\["[^"]*\.so"' |
        sed -e 's/^"filenames":\["//' -e 's/"$//' |
        tail -n 1
)
if [[ -z "$so_path" || ! -f "$so_path" ]]; then
    echo "build-kryoptic.sh: cargo did not report a libkryoptic_pkcs11 .so" >&2
    exit 1
fi

cp "$so_path" "$module.tmp"
mv -f "$module.tmp" "$module"
echo "$want_stamp" >"$stamp"
echo "build-kryoptic.sh: built in $((SECONDS - started)) s" >&2
echo "$module"
