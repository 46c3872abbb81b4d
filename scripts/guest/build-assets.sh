#!/usr/bin/env bash
# Builds the Linux test guest (shared/LINUX-GUEST.md) from Debian packages into .cache/linux-guest/:
#   vmlinuz          Debian's 32-bit 686 kernel (the newest linux-image-6.1.0-*-686-unsigned)
#   initramfs.cpio.gz  busybox-static:i386, the virtio modules in load order, scripts/guest/init
#   bios.bin         SeaBIOS (v86 ships no BIOS). No VGA BIOS: the guest is headless, and with one
#                    v86 maps its ROM over 0xfeb00000-0xfebfffff, where SeaBIOS puts PCI BARs.
#   manifest         kernel version and a hash of the inputs; the assets are rebuilt when it changes
#   686-pae/         the same four files for Debian's 686-pae kernel (PAE: physical addresses above
#                    4 GiB, so 64-bit BARs there), with its own module set (each kernel's modules
#                    carry its version) and the same /init; a guest asset folder of its own
# Idempotent: exits at once when the assets match the inputs; rebuilds whatever is missing.
# Prints "STEP <n>/<total> <what>" lines on stdout so a caller can show progress.
# Usage: build-assets.sh [--check]   (--check: exit 0 when up to date, 1 when a build is needed)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${VIRTIO_TS_GUEST_CACHE:-$ROOT/.cache/linux-guest}"
DEBS="$CACHE/debs"
TOTAL=6

# The modules /init loads, each after the modules it depends on (resolved from their modinfo).
WANTED_MODULES="virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk virtio_console virtio_rng virtio_net"

step() { echo "STEP $1/$TOTAL $2"; }
die() { echo "linux-guest: $*" >&2; exit 1; }

inputs_hash() {
  cat "$ROOT/scripts/guest/build-assets.sh" "$ROOT/scripts/guest/init" | sha256sum | cut -c1-16
}

PAE_DIR="$CACHE/686-pae"

assets_current() {
  local dir f
  for dir in "$CACHE" "$PAE_DIR"; do
    for f in vmlinuz initramfs.cpio.gz bios.bin manifest; do
      [ -s "$dir/$f" ] || return 1
    done
    grep -qx "inputs=$(inputs_hash)" "$dir/manifest" || return 1
  done
}

if assets_current; then
  [ "${1:-}" = "--check" ] && exit 0
  step $TOTAL "guest assets up to date in $CACHE"
  exit 0
fi
[ "${1:-}" = "--check" ] && exit 1

mkdir -p "$DEBS"

step 1 "package lists (i386)"
if ! dpkg --print-foreign-architectures | grep -qx i386; then
  [ "$(id -u)" -eq 0 ] || die "the i386 architecture is not enabled; run as root: dpkg --add-architecture i386 && apt-get update"
  dpkg --add-architecture i386
fi
kernel_candidates() { # flavour (686, 686-pae)
  apt-cache search --names-only "^linux-image-6\\.1\\.0-[0-9]+-$1-unsigned\$" | cut -d' ' -f1 | sort -V
}
if [ -z "$(kernel_candidates 686)" ] || [ -z "$(kernel_candidates 686-pae)" ] || ! apt-cache show busybox-static:i386 >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || die "no i386 package lists; run as root: apt-get update"
  # The i386 security index is sometimes mid-sync; the main archive has everything we need.
  apt-get update -qq || echo "linux-guest: apt-get update reported errors; using the lists it got" >&2
fi
KERNEL_PKG="$(kernel_candidates 686 | tail -n1)"
[ -n "$KERNEL_PKG" ] || die "no linux-image-6.1.0-*-686-unsigned package in the apt lists"
KVER="${KERNEL_PKG#linux-image-}"
KVER="${KVER%-unsigned}"

step 2 "download $KERNEL_PKG, busybox-static:i386, seabios"
download() { # package glob-prefix
  if ! ls "$DEBS/$2"_*.deb >/dev/null 2>&1; then
    (cd "$DEBS" && apt-get download -q "$1" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
    ls "$DEBS/$2"_*.deb >/dev/null 2>&1 || die "apt-get download $1 failed"
  fi
}
download "$KERNEL_PKG:i386" "$KERNEL_PKG"
download busybox-static:i386 busybox-static
download seabios seabios

step 3 "unpack"
WORK="$(mktemp -d "$CACHE/build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
dpkg-deb -x "$(ls "$DEBS/$KERNEL_PKG"_*.deb | tail -n1)" "$WORK/kernel"
dpkg-deb -x "$(ls "$DEBS"/busybox-static_*.deb | tail -n1)" "$WORK/busybox"
dpkg-deb -x "$(ls "$DEBS"/seabios_*.deb | tail -n1)" "$WORK/seabios"
MODDIR="$WORK/kernel/lib/modules/$KVER"
[ -d "$MODDIR" ] || die "$KERNEL_PKG has no lib/modules/$KVER"

step 4 "initramfs"
if ! command -v cpio >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || die "cpio is missing; run as root: apt-get install -y cpio"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cpio >/dev/null
fi
# pack_initramfs MODDIR PACKAGE OUT: busybox, MODDIR's WANTED_MODULES in load order (left in ORDER)
# and /init, packed into OUT.
pack_initramfs() {
  local moddir="$1" package="$2" out="$3" ko name rootfs
  # Module name (dashes as underscores, as modinfo names them) -> path of its .ko.
  declare -A KO=()
  while IFS= read -r ko; do
    name="$(basename "$ko" .ko)"
    KO["${name//-/_}"]="$ko"
  done < <(find "$moddir/kernel" -name '*.ko')
  declare -A PLACED=()
  ORDER=()
  place() { # depth-first: dependencies first, each module once
    local name="$1" dep deps
    [ -n "${PLACED[$name]:-}" ] && return 0
    [ -n "${KO[$name]:-}" ] || die "module $name not found in $package (is it built in?)"
    PLACED[$name]=1
    deps="$(grep -a -o -m1 'depends=[a-z0-9_,-]*' "${KO[$name]}" | head -n1 | cut -d= -f2 | tr ',' ' ')"
    for dep in $deps; do place "${dep//-/_}"; done
    ORDER+=("$name")
  }
  for name in $WANTED_MODULES; do place "$name"; done

  rootfs="$(mktemp -d "$WORK/rootfs.XXXXXX")"
  mkdir -p "$rootfs"/{bin,dev,proc,sys,tmp,lib/modules}
  cp "$WORK/busybox/bin/busybox" "$rootfs/bin/busybox"
  for name in "${ORDER[@]}"; do
    cp "${KO[$name]}" "$rootfs/lib/modules/$name.ko"
    echo "$name" >>"$rootfs/lib/modules/load-order"
  done
  install -m 0755 "$ROOT/scripts/guest/init" "$rootfs/init"
  (cd "$rootfs" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9 >"$out"
}
pack_initramfs "$MODDIR" "$KERNEL_PKG" "$WORK/initramfs.cpio.gz"

step 5 "install into $CACHE"
cp "$WORK/kernel/boot/vmlinuz-$KVER" "$CACHE/vmlinuz"
cp "$WORK/seabios/usr/share/seabios/bios.bin" "$CACHE/bios.bin"
mv "$WORK/initramfs.cpio.gz" "$CACHE/initramfs.cpio.gz"
# Saved emulator states hold a booted kernel: they are stale once the assets change.
rm -rf "$CACHE/states"
{
  echo "kernel=$KVER"
  echo "package=$KERNEL_PKG"
  echo "modules=${ORDER[*]}"
  echo "inputs=$(inputs_hash)"
} >"$CACHE/manifest"
echo "linux-guest: built $KVER guest assets in $CACHE" >&2

# ---- The 686-pae guest --------------------------------------------------------------------------
# Debian's PAE kernel addresses physical memory above 4 GiB, so it may keep a 64-bit BAR there (which
# v86, a 32-bit machine, cannot reach): the guest for tests of that case. Same busybox, /init and
# BIOS; its own modules, since each module carries its kernel's version.
step 6 "686-pae guest into $PAE_DIR"
PAE_PKG="$(kernel_candidates 686-pae | tail -n1)"
[ -n "$PAE_PKG" ] || die "no linux-image-6.1.0-*-686-pae-unsigned package in the apt lists"
PAE_KVER="${PAE_PKG#linux-image-}"
PAE_KVER="${PAE_KVER%-unsigned}"
download "$PAE_PKG:i386" "$PAE_PKG"
dpkg-deb -x "$(ls "$DEBS/$PAE_PKG"_*.deb | tail -n1)" "$WORK/kernel-pae"
[ -d "$WORK/kernel-pae/lib/modules/$PAE_KVER" ] || die "$PAE_PKG has no lib/modules/$PAE_KVER"
pack_initramfs "$WORK/kernel-pae/lib/modules/$PAE_KVER" "$PAE_PKG" "$WORK/initramfs-pae.cpio.gz"
mkdir -p "$PAE_DIR"
cp "$WORK/kernel-pae/boot/vmlinuz-$PAE_KVER" "$PAE_DIR/vmlinuz"
cp "$CACHE/bios.bin" "$PAE_DIR/bios.bin"
mv "$WORK/initramfs-pae.cpio.gz" "$PAE_DIR/initramfs.cpio.gz"
rm -rf "$PAE_DIR/states"
{
  echo "kernel=$PAE_KVER"
  echo "package=$PAE_PKG"
  echo "modules=${ORDER[*]}"
  echo "inputs=$(inputs_hash)"
} >"$PAE_DIR/manifest"
echo "linux-guest: built $PAE_KVER guest assets in $PAE_DIR" >&2
