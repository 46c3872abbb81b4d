#!/usr/bin/env bash
# Real peer 2 (Linux in v86): builds the guest kernel, initramfs and BIOS into .cache/linux-guest from
# Debian packages (scripts/guest/build-assets.sh). Idempotent: does nothing when they are up to date.
set -euo pipefail
exec bash "$(dirname "$0")/../guest/build-assets.sh" >/dev/null
