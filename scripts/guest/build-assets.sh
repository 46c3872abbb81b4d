#!/usr/bin/env bash
# Builds the Linux test guests (shared/LINUX-GUEST.md) from Debian packages, one asset folder per kernel:
#   .cache/linux-guest/          Debian 12's 686 kernel (the newest linux-image-6.1.0-*-686-unsigned)
#   .cache/linux-guest/686-pae/  Debian 12's 686-pae kernel (PAE: physical addresses above 4 GiB, so
#                                64-bit BARs there)
#   .cache/linux-guest/6.5-686/  the 686 kernel of Debian 12's backports suite (linux-image-6.5.0-0.deb12.*-686),
#                                fetched through the private apt state of scripts/lib/debian-backports.sh
# Each folder holds:
#   vmlinuz          the kernel
#   initramfs.cpio.gz  busybox-static:i386, the kernel's own virtio modules in load order (each module
#                    carries its kernel's version), ethtool:i386 with the shared libraries it loads
#                    (so a guest can resize a virtio-net ring), scripts/guest/init; for the guest
#                    benchmarks (bench/guest-*.bench.ts), the ATA modules that drive v86's IDE disk
#                    (listed in ata-order, loaded by /init's "ataload" only) and vt-udp, a UDP load
#                    generator built from scripts/guest/vt-udp.c with the host's gcc (-m32, freestanding)
#   bios.bin         SeaBIOS (v86 ships no BIOS). No VGA BIOS: the guest is headless, and with one
#                    v86 maps its ROM over 0xfeb00000-0xfebfffff, where SeaBIOS puts PCI BARs.
#   manifest         kernel version and a hash of the inputs; the assets are rebuilt when it changes
# Idempotent: exits at once when the assets match the inputs; rebuilds whatever is missing.
# Prints "STEP <n>/<total> <what>" lines on stdout so a caller can show progress.
# Usage: build-assets.sh [--check | --inputs-hash]   (--check: exit 0 when up to date, 1 when a build is
# needed; --inputs-hash: print the hash a current manifest names)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${VIRTIO_TS_GUEST_CACHE:-$ROOT/.cache/linux-guest}"
DEBS="$CACHE/debs"
TOTAL=7
# The guest folders, each built from one kernel package (resolved at build time).
PAE_DIR="$CACHE/686-pae"
BPO_DIR="$CACHE/6.5-686"

# The modules /init loads, each after the modules it depends on (resolved from their modinfo).
WANTED_MODULES="virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk virtio_console virtio_rng virtio_net"
# The modules /init's "ataload" adds for v86's own IDE disk (PIIX IDE, then the SCSI disk on top).
ATA_MODULES="ata_piix sd_mod"
# ethtool and the packages of the shared libraries it loads (resolved from its ELF headers below).
ETHTOOL_PACKAGES="ethtool libmnl0 libc6"

step() { echo "STEP $1/$TOTAL $2"; }
die() { echo "linux-guest: $*" >&2; exit 1; }
# shellcheck source=../lib/debian-backports.sh
. "$ROOT/scripts/lib/debian-backports.sh"

inputs_hash() {
  cat "$ROOT/scripts/guest/build-assets.sh" "$ROOT/scripts/guest/init" "$ROOT/scripts/guest/vt-udp.c" "$ROOT/scripts/lib/debian-backports.sh" |
    sha256sum | cut -c1-16
}

assets_current() {
  local dir f
  for dir in "$CACHE" "$PAE_DIR" "$BPO_DIR"; do
    for f in vmlinuz initramfs.cpio.gz bios.bin manifest; do
      [ -s "$dir/$f" ] || return 1
    done
    grep -qx "inputs=$(inputs_hash)" "$dir/manifest" || return 1
  done
}

if [ "${1:-}" = "--inputs-hash" ]; then
  inputs_hash
  exit 0
fi
if assets_current; then
  [ "${1:-}" = "--check" ] && exit 0
  step $TOTAL "guest assets up to date in $CACHE"
  exit 0
fi
[ "${1:-}" = "--check" ] && exit 1

mkdir -p "$DEBS"

step 1 "package lists (i386; backports)"
if ! dpkg --print-foreign-architectures | grep -qx i386; then
  [ "$(id -u)" -eq 0 ] || die "the i386 architecture is not enabled; run as root: dpkg --add-architecture i386 && apt-get update"
  dpkg --add-architecture i386
fi
kernel_candidates() { # flavour (686, 686-pae)
  apt-cache search --names-only "^linux-image-6\\.1\\.0-[0-9]+-$1-unsigned\$" | cut -d' ' -f1 | sort -V
}
if [ -z "$(kernel_candidates 686)" ] || [ -z "$(kernel_candidates 686-pae)" ] || ! apt-cache show busybox-static:i386 ethtool:i386 >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || die "no i386 package lists; run as root: apt-get update"
  # The i386 security index is sometimes mid-sync; the main archive has everything we need.
  apt-get update -qq || echo "linux-guest: apt-get update reported errors; using the lists it got" >&2
fi
KERNEL_PKG="$(kernel_candidates 686 | tail -n1)"
[ -n "$KERNEL_PKG" ] || die "no linux-image-6.1.0-*-686-unsigned package in the apt lists"
PAE_PKG="$(kernel_candidates 686-pae | tail -n1)"
[ -n "$PAE_PKG" ] || die "no linux-image-6.1.0-*-686-pae-unsigned package in the apt lists"
backports_apt_init "$ROOT/.cache/debian-backports"
BPO_PKG="$(apt-cache "${BACKPORTS_APT[@]}" search --names-only '^linux-image-6\.5\.0-0\.deb12\.[0-9]+-686$' | cut -d' ' -f1 | sort -V | tail -n1)"
[ -n "$BPO_PKG" ] || die "no linux-image-6.5.0-0.deb12.*-686 package in $(cat "$ROOT/.cache/debian-backports/sources.list")"

step 2 "download $KERNEL_PKG, $PAE_PKG, $BPO_PKG, busybox-static, ethtool, seabios"
download() { # package glob-prefix [apt options]
  local package="$1" prefix="$2"
  shift 2
  if ! ls "$DEBS/$prefix"_*.deb >/dev/null 2>&1; then
    (cd "$DEBS" && apt-get "$@" download -q "$package" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
    ls "$DEBS/$prefix"_*.deb >/dev/null 2>&1 || die "apt-get download $package failed"
  fi
}
download "$KERNEL_PKG:i386" "$KERNEL_PKG"
download "$PAE_PKG:i386" "$PAE_PKG"
download "$BPO_PKG:i386" "$BPO_PKG" "${BACKPORTS_APT[@]}"
download busybox-static:i386 busybox-static
download seabios seabios
for p in $ETHTOOL_PACKAGES; do download "$p:i386" "$p"; done

step 3 "unpack busybox, ethtool, seabios"
WORK="$(mktemp -d "$CACHE/build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
newest_deb() { ls "$DEBS/$1"_*.deb | sort -V | tail -n1; }
dpkg-deb -x "$(newest_deb busybox-static)" "$WORK/busybox"
dpkg-deb -x "$(newest_deb seabios)" "$WORK/seabios"
for p in $ETHTOOL_PACKAGES; do dpkg-deb -x "$(newest_deb "$p")" "$WORK/ethtool"; done
# ethtool's program interpreter and every library it needs, transitively (DT_NEEDED), from the
# unpacked i386 packages: they go into the initramfs's /lib, which the loader always searches.
ETHTOOL_FILES=()
elf_needs() { # file: its interpreter's name, then its DT_NEEDED names
  readelf -lW "$1" | sed -n 's|.*Requesting program interpreter: .*/\([^]/]*\)\].*|\1|p'
  readelf -dW "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'
}
declare -A FOUND=()
resolve_libs() { # file
  local name path
  for name in $(elf_needs "$1"); do
    [ -n "${FOUND[$name]:-}" ] && continue
    path="$(find "$WORK/ethtool/lib" "$WORK/ethtool/usr/lib" \( -type f -o -type l \) -name "$name" 2>/dev/null | head -n1)"
    [ -n "$path" ] || die "ethtool needs $name, which none of $ETHTOOL_PACKAGES provides"
    path="$(readlink -f "$path")"
    FOUND[$name]="$path"
    ETHTOOL_FILES+=("$name=$path")
    resolve_libs "$path"
  done
}
[ -x "$WORK/ethtool/sbin/ethtool" ] || die "the ethtool package has no sbin/ethtool"
resolve_libs "$WORK/ethtool/sbin/ethtool"

step 4 "initramfs tools, vt-udp"
if ! command -v cpio >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || die "cpio is missing; run as root: apt-get install -y cpio"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cpio >/dev/null
fi
if ! command -v gcc >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || die "gcc is missing; run as root: apt-get install -y gcc"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
fi
# Freestanding (its own system calls, no libc): -m32 needs no 32-bit libraries on the host.
gcc -m32 -static -nostdlib -ffreestanding -fno-pic -no-pie -fno-stack-protector -fno-asynchronous-unwind-tables \
  -O2 -Wall -Wextra -Werror -o "$WORK/vt-udp" "$ROOT/scripts/guest/vt-udp.c" || die "building vt-udp failed"
# pack_initramfs MODDIR PACKAGE OUT: busybox, MODDIR's WANTED_MODULES in load order (left in ORDER),
# ethtool with its libraries and /init, packed into OUT.
pack_initramfs() {
  local moddir="$1" package="$2" out="$3" ko name rootfs entry i
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
  local virtio_count=${#ORDER[@]}
  for name in $ATA_MODULES; do place "$name"; done

  rootfs="$(mktemp -d "$WORK/rootfs.XXXXXX")"
  mkdir -p "$rootfs"/{bin,dev,proc,sys,tmp,lib/modules}
  cp "$WORK/busybox/bin/busybox" "$rootfs/bin/busybox"
  cp "$WORK/ethtool/sbin/ethtool" "$rootfs/bin/ethtool"
  cp "$WORK/vt-udp" "$rootfs/bin/vt-udp"
  for entry in "${ETHTOOL_FILES[@]}"; do cp "${entry#*=}" "$rootfs/lib/${entry%%=*}"; done
  for i in "${!ORDER[@]}"; do
    name="${ORDER[$i]}"
    cp "${KO[$name]}" "$rootfs/lib/modules/$name.ko"
    if [ "$i" -lt "$virtio_count" ]; then echo "$name" >>"$rootfs/lib/modules/load-order"; else echo "$name" >>"$rootfs/lib/modules/ata-order"; fi
  done
  install -m 0755 "$ROOT/scripts/guest/init" "$rootfs/init"
  (cd "$rootfs" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9 >"$out"
}

# build_guest STEP DIR PACKAGE: unpack PACKAGE's kernel, pack its initramfs and install both, with the
# BIOS and a manifest, into DIR. Saved emulator states hold a booted kernel: they go with the old assets.
build_guest() {
  local n="$1" dir="$2" package="$3" kver unpacked
  kver="${package#linux-image-}"
  kver="${kver%-unsigned}"
  step "$n" "$kver guest into $dir"
  unpacked="$WORK/$package"
  dpkg-deb -x "$(newest_deb "$package")" "$unpacked"
  [ -d "$unpacked/lib/modules/$kver" ] || die "$package has no lib/modules/$kver"
  [ -s "$unpacked/boot/vmlinuz-$kver" ] || die "$package has no boot/vmlinuz-$kver"
  pack_initramfs "$unpacked/lib/modules/$kver" "$package" "$WORK/initramfs.cpio.gz"
  mkdir -p "$dir"
  cp "$unpacked/boot/vmlinuz-$kver" "$dir/vmlinuz"
  cp "$WORK/seabios/usr/share/seabios/bios.bin" "$dir/bios.bin"
  mv "$WORK/initramfs.cpio.gz" "$dir/initramfs.cpio.gz"
  rm -rf "$dir/states" "$unpacked"
  {
    echo "kernel=$kver"
    echo "package=$package"
    echo "modules=${ORDER[*]}"
    echo "inputs=$(inputs_hash)"
  } >"$dir/manifest"
  echo "linux-guest: built $kver guest assets in $dir" >&2
}
build_guest 5 "$CACHE" "$KERNEL_PKG"
# Debian's PAE kernel addresses physical memory above 4 GiB, so it may keep a 64-bit BAR there (which
# v86, a 32-bit machine, cannot reach): the guest for tests of that case.
build_guest 6 "$PAE_DIR" "$PAE_PKG"
# The newer kernel the whole Linux peer suite also runs on (scripts/test.mjs).
build_guest 7 "$BPO_DIR" "$BPO_PKG"
