#!/usr/bin/env bash
# The browser test's browser (test/browser, the `browser` leg of scripts/test.mjs): Debian's chromium
# at /usr/bin/chromium, which playwright-core drives. Never a downloaded browser. Idempotent; needs
# root (CI runs setup as root) and the Debian apt sources; waits for another apt/dpkg's locks
# (scripts/lib/apt-install.sh).
set -euo pipefail
CHROMIUM="${VIRTIO_TS_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "30-chromium: $CHROMIUM is missing; run as root: apt-get update && apt-get install -y --no-install-recommends chromium" >&2
  exit 1
fi
# shellcheck source=../lib/apt-install.sh
. "${BASH_SOURCE[0]%/*}/../lib/apt-install.sh"
echo "30-chromium: installing Debian's chromium (about 90 MB download; waits up to ${VIRTIO_TS_APT_LOCK_TIMEOUT:-300} s for another apt/dpkg to release its lock)" >&2
apt_install 30-chromium chromium
[ -x "$CHROMIUM" ] || { echo "30-chromium: apt installed chromium but $CHROMIUM is not there" >&2; exit 1; }
