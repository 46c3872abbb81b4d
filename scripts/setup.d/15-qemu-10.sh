#!/usr/bin/env bash
# Real peer 1, second version: QEMU 10.0 beside the system's 7.2, from Debian 12's backports suite
# (derived from the machine's own Debian source by scripts/lib/debian-backports.sh; the machine's apt
# configuration is not touched). Unpacks qemu-system-x86, -common, -data and the SeaBIOS they require
# (bookworm's is too old for them) into .cache/qemu-10.0/ and writes .cache/qemu-10.0/qemu-system-x86_64,
# which runs that QEMU with its own modules (QEMU_MODULE_DIR) and firmware: -L puts the unpacked
# usr/share/qemu and usr/share/seabios before the search path built into Debian's binary
# (/usr/share/qemu, /usr/share/seabios, /usr/lib/ipxe/qemu: the system's 7.2 files). iPXE's option ROMs
# (efi-virtio.rom for virtio-net-pci) come from that last one, the system's ipxe-qemu (installed with
# 7.2; any version satisfies 10.0).
# Idempotent and silent when the folder matches this script; no root needed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DEST="$ROOT/.cache/qemu-10.0"
VERSION_PREFIX="1:10.0."
PACKAGES="qemu-system-x86 qemu-system-common qemu-system-data"
IPXE=/usr/lib/ipxe/qemu

die() { echo "15-qemu-10: $*" >&2; exit 1; }
# shellcheck source=../lib/debian-backports.sh
. "$ROOT/scripts/lib/debian-backports.sh"

inputs_hash() { cat "${BASH_SOURCE[0]}" "$ROOT/scripts/lib/debian-backports.sh" | sha256sum | cut -c1-16; }
if [ -x "$DEST/qemu-system-x86_64" ] && grep -qx "inputs=$(inputs_hash)" "$DEST/manifest" 2>/dev/null; then
  exit 0
fi

backports_apt_init "$ROOT/.cache/debian-backports"
VERSION="$(backports_newest qemu-system-x86 "$VERSION_PREFIX")"
[ -n "$VERSION" ] || die "no qemu-system-x86 ${VERSION_PREFIX}* in $(cat "$ROOT/.cache/debian-backports/sources.list")"
SEABIOS="$(backports_newest seabios "")"
[ -n "$SEABIOS" ] || die "no seabios in $(cat "$ROOT/.cache/debian-backports/sources.list")"
[ -f "$IPXE/efi-virtio.rom" ] || die "$IPXE/efi-virtio.rom is missing (package ipxe-qemu, installed with qemu-system-x86 by 10-qemu.sh)"
echo "15-qemu-10: unpacking QEMU $VERSION from backports into $DEST (about 30 MB download)" >&2

mkdir -p "$ROOT/.cache"
WORK="$(mktemp -d "$ROOT/.cache/qemu-10.0.build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
(
  cd "$WORK"
  # shellcheck disable=SC2046
  apt-get "${BACKPORTS_APT[@]}" download -q $(for p in $PACKAGES; do echo "$p=$VERSION"; done) "seabios=$SEABIOS" >download.log 2>&1
) || die "apt-get download failed: $(grep -v unsandboxed "$WORK/download.log" | tail -n 5)"
for deb in "$WORK"/*.deb; do dpkg-deb -x "$deb" "$WORK/root"; done
BIN="$WORK/root/usr/bin/qemu-system-x86_64"
[ -x "$BIN" ] || die "qemu-system-x86 $VERSION has no usr/bin/qemu-system-x86_64"

# Every shared library the binary and its modules need must come from the system (bookworm).
missing="$(for f in "$BIN" "$WORK"/root/usr/lib/x86_64-linux-gnu/qemu/*.so; do ldd "$f" 2>/dev/null | grep 'not found' || true; done | sort -u)"
[ -z "$missing" ] || die "QEMU $VERSION needs libraries this system lacks:
$missing"

cat >"$WORK/root/qemu-system-x86_64" <<'WRAPPER'
#!/bin/sh
# QEMU 10.0 from Debian's backports, with its own modules and firmware (scripts/setup.d/15-qemu-10.sh).
here="$(dirname "$(readlink -f "$0")")"
QEMU_MODULE_DIR="$here/usr/lib/x86_64-linux-gnu/qemu" exec "$here/usr/bin/qemu-system-x86_64" \
  -L "$here/usr/share/qemu" -L "$here/usr/share/seabios" "$@"
WRAPPER
chmod 0755 "$WORK/root/qemu-system-x86_64"
"$WORK/root/qemu-system-x86_64" -version | grep -q "version 10\.0\." || die "the unpacked QEMU does not run: $("$WORK/root/qemu-system-x86_64" -version 2>&1 | head -n 3)"
{
  echo "version=$VERSION"
  echo "seabios=$SEABIOS"
  echo "inputs=$(inputs_hash)"
} >"$WORK/root/manifest"
rm -rf "$DEST"
mv "$WORK/root" "$DEST"
