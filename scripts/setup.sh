#!/usr/bin/env bash
# Installs what the test suite's real peers need (Debian packages, guest assets), each step only when
# missing. Every step is a script in scripts/setup.d, run in name order.
set -euo pipefail
cd "$(dirname "$0")/.."
for step in scripts/setup.d/*.sh; do
  [ -e "$step" ] || continue
  bash "$step"
done
