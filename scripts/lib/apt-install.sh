# Sourced by setup steps that install Debian packages: apt_install STEP PACKAGE... installs them with
# apt-get (needs root and the Debian apt sources). Another apt or dpkg (unattended-upgrades, a second
# setup) may hold the package locks: apt waits for them, up to $VIRTIO_TS_APT_LOCK_TIMEOUT seconds
# (default 300), instead of failing at once, and the step says who holds them.
apt_install() {
  local step="$1"
  shift
  local timeout="${VIRTIO_TS_APT_LOCK_TIMEOUT:-300}" lock holders
  # fuser (psmisc) may be absent: then apt's own "Waiting for cache lock" line is all there is.
  for lock in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock; do
    if holders="$(fuser "$lock" 2>/dev/null)" && [ -n "${holders// /}" ]; then
      echo "$step: $lock is held by$(for p in $holders; do printf ' %s (%s)' "$p" "$(cat "/proc/$p/comm" 2>/dev/null || echo '?')"; done); waiting up to ${timeout} s for it" >&2
    fi
  done
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$timeout" update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$timeout" install -y -qq --no-install-recommends "$@" >/dev/null
}
