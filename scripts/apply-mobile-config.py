#!/usr/bin/env python3
"""Writes SecureSign's token configuration into the generated mobile projects.

`tauri android init` / `tauri ios init` generate src-tauri/gen/; nothing in tauri.conf.json
reaches these settings, so the reviewed sources in src-tauri/mobile/ are applied here, on
every build (idempotent):

  android MANIFEST
      the children of mobile/android/usb-token-activity.xml (USB_DEVICE_ATTACHED filter and
      the CCID device filter) into the main activity, between SecureSign's markers;
  ios INFO_PLIST ENTITLEMENTS
      the keys of mobile/ios/Info.token.plist into the Info.plist, and those of
      mobile/ios/token.entitlements into the entitlements (arrays: union, order kept).

Standard library only (plistlib, re), so that it runs on Linux and macOS builders alike.
"""

import pathlib
import plistlib
import re
import sys

MOBILE = pathlib.Path(__file__).resolve().parent.parent / "src-tauri" / "mobile"
BEGIN = "<!-- SECURESIGN USB TOKEN. BEGIN (scripts/apply-mobile-config.py) -->"
END = "<!-- SECURESIGN USB TOKEN. END -->"


def fail(message):
    print(f"apply-mobile-config.py: {message}", file=sys.stderr)
    sys.exit(1)


def android(manifest_path):
    manifest = pathlib.Path(manifest_path)
    text = manifest.read_text(encoding="utf-8")
    block = (MOBILE / "android" / "usb-token-activity.xml").read_text(encoding="utf-8")
    inner = re.search(r"<activity[^>]*>(.*)</activity>", block, re.S)
    if not inner:
        fail("usb-token-activity.xml has no <activity> element")
    body = "\n".join(
        "            " + line.strip() for line in inner.group(1).strip().splitlines()
    )
    managed = f"{BEGIN}\n{body}\n            {END}"
    if BEGIN in text:
        start, end = text.index(BEGIN), text.index(END) + len(END)
        text = text[:start] + managed + text[end:]
    else:
        main = re.search(r'<activity\b[^>]*android:name="[^"]*\.MainActivity"', text)
        if not main:
            fail(f"{manifest}: no main activity (.MainActivity)")
        close = text.find("</activity>", main.end())
        if close < 0:
            fail(f"{manifest}: the main activity is not closed")
        text = text[:close] + "    " + managed + "\n        " + text[close:]
    manifest.write_text(text, encoding="utf-8")


def merge_plist(target_path, source_name):
    target = pathlib.Path(target_path)
    with open(MOBILE / "ios" / source_name, "rb") as f:
        source = plistlib.load(f)
    with open(target, "rb") as f:
        merged = plistlib.load(f)
    for key, value in source.items():
        if isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merged[key] + [v for v in value if v not in merged[key]]
        else:
            merged[key] = value
    with open(target, "wb") as f:
        plistlib.dump(merged, f)


def main(argv):
    if len(argv) == 3 and argv[1] == "android":
        android(argv[2])
    elif len(argv) == 4 and argv[1] == "ios":
        merge_plist(argv[2], "Info.token.plist")
        merge_plist(argv[3], "token.entitlements")
    else:
        fail("usage: apply-mobile-config.py android MANIFEST | ios INFO_PLIST ENTITLEMENTS")


if __name__ == "__main__":
    main(sys.argv)
