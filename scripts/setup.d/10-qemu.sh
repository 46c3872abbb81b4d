#!/usr/bin/env bash
# Real peer 1 (QEMU over qtest): installs Debian's qemu-system-x86 when qemu-system-x86_64 is missing.
# Idempotent; needs root (CI runs setup as root) and the Debian apt sources; waits for another
# apt/dpkg's locks (scripts/lib/apt-install.sh).
set -euo pipefail
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "10-qemu: qemu-system-x86_64 is missing; run as root: apt-get update && apt-get install -y --no-install-recommends qemu-system-x86" >&2
  exit 1
fi
# shellcheck source=../lib/apt-install.sh
. "${BASH_SOURCE[0]%/*}/../lib/apt-install.sh"
echo "10-qemu: installing qemu-system-x86 (about 25 MB download; waits up to ${VIRTIO_TS_APT_LOCK_TIMEOUT:-300} s for another apt/dpkg to release its lock)" >&2
apt_install 10-qemu qemu-system-x86
command -v qemu-system-x86_64 >/dev/null
