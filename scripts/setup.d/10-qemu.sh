#!/usr/bin/env bash
# Real peer 1 (QEMU over qtest): installs Debian's qemu-system-x86 when qemu-system-x86_64 is missing.
# Idempotent; needs root (CI runs setup as root) and the Debian apt sources.
set -euo pipefail
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "10-qemu: qemu-system-x86_64 is missing; run as root: apt-get update && apt-get install -y --no-install-recommends qemu-system-x86" >&2
  exit 1
fi
echo "10-qemu: installing qemu-system-x86 (about 25 MB download)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
command -v qemu-system-x86_64 >/dev/null
