#!/bin/sh
# Prepares the QEMU peer for core/tests/ccid_qemu.rs: QEMU's own usb-ccid reader (an
# independent device-side CCID implementation) in a small Linux guest.
#   - qemu-system-x86 (Debian package; has usb-ccid and ccid-card-passthru)
#   - a Debian kernel (vmlinuz + the four USB host modules) and busybox-static, unpacked
#     into target/ccid-qemu (nothing is installed from them)
# Usage: core/tests/ccid_qemu/setup.sh   (as root, or with sudo for apt-get)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${SECURESIGN_CCID_QEMU_DIR:-$here/../../../target/ccid-qemu}
mkdir -p "$out"
out=$(cd "$out" && pwd)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
lists_fresh=""
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    $sudo apt-get update -qq
    lists_fresh=1
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
fi

cd "$out"
if [ ! -f vmlinuz ] || [ ! -f busybox ]; then
    # apt-get download and apt-cache need package lists (a fresh machine may have none).
    [ -n "$lists_fresh" ] || $sudo apt-get update -qq
    kernel=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)
    rm -rf deb && mkdir deb && cd deb
    apt-get download "$kernel" busybox-static
    for d in *.deb; do dpkg-deb -x "$d" x; done
    cp x/boot/vmlinuz-* "$out/vmlinuz"
    mkdir -p "$out/mods"
    for m in common/usb-common core/usbcore host/xhci-hcd host/xhci-pci; do
        cp x/lib/modules/*/kernel/drivers/usb/$m.ko "$out/mods/"
    done
    cp x/bin/busybox "$out/busybox"
    cd "$out" && rm -rf deb
fi
echo "QEMU CCID peer ready in $out"
