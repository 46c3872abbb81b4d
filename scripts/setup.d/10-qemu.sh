#!/usr/bin/env bash
# Real peer 1 (QEMU over qtest): installs Debian's qemu-system-x86 when qemu-system-x86_64 is missing.
# Idempotent; needs root (CI runs setup as root) and the Debian apt sources. Another apt or dpkg
# (unattended-upgrades, a second setup) may hold the package locks: apt waits for them, up to
# LOCK_TIMEOUT seconds, instead of failing at once.
set -euo pipefail
LOCK_TIMEOUT="${VIRTIO_TS_APT_LOCK_TIMEOUT:-300}"
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "10-qemu: qemu-system-x86_64 is missing; run as root: apt-get update && apt-get install -y --no-install-recommends qemu-system-x86" >&2
  exit 1
fi
# Say what we wait for when the locks are taken (fuser, from psmisc, may be absent: then apt's
# own "Waiting for cache lock" line is all there is).
for lock in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock; do
  if holders="$(fuser "$lock" 2>/dev/null)" && [ -n "${holders// /}" ]; then
    echo "10-qemu: $lock is held by$(for p in $holders; do printf ' %s (%s)' "$p" "$(cat "/proc/$p/comm" 2>/dev/null || echo '?')"; done); waiting up to ${LOCK_TIMEOUT} s for it" >&2
  fi
done
echo "10-qemu: installing qemu-system-x86 (about 25 MB download; waits up to ${LOCK_TIMEOUT} s for another apt/dpkg to release its lock)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout="$LOCK_TIMEOUT" update -qq
apt-get -o DPkg::Lock::Timeout="$LOCK_TIMEOUT" install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
command -v qemu-system-x86_64 >/dev/null
