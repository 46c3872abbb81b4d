# Sourced, not run. A private apt state for Debian's backports suite, derived from the machine's own
# Debian source: the setup steps that fetch newer peers (QEMU 10.0, the 6.5 kernel) use it, and the
# machine's apt configuration is never changed.
#
#   debian_archive_source             prints "URI SUITE KEYRING" of the main Debian archive configured in
#                                     $APT_ETC (default /etc/apt): deb822 *.sources files first, then
#                                     one-line *.list files; KEYRING is "-" when the entry names none
#   backports_apt_init DIR            writes DIR/sources.list (SUITE-backports main from that archive,
#                                     same keyring), runs apt-get update on DIR's private lists when
#                                     they are older than a day, and sets the array BACKPORTS_APT to
#                                     the options every apt-get/apt-cache call needs to use that state
#   backports_newest PKG PREFIX       the newest backports version of PKG starting with PREFIX (or "")
#
# Callers set -euo pipefail; failures print "<caller>: ..." via their own die().

APT_ETC="${VIRTIO_TS_APT_ETC:-/etc/apt}"

# The codename the archive's main suite carries (bookworm on Debian 12).
debian_codename() {
  # shellcheck disable=SC1091
  (. "${VIRTIO_TS_OS_RELEASE:-/etc/os-release}" && echo "${VERSION_CODENAME:-}")
}

debian_archive_source() {
  local codename file
  codename="$(debian_codename)"
  [ -n "$codename" ] || return 1
  # deb822: paragraphs separated by blank lines; the first "deb" paragraph whose Suites has the bare
  # codename (not -updates or -security) is the main archive. Continuation lines and comments skipped.
  for file in "$APT_ETC"/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    awk -v codename="$codename" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " codename " ") && uris != "" && enabled != "no") {
          split(uris, u, " ")
          print u[1], codename, (signed == "" ? "-" : signed)
          found = 1
          exit
        }
        types = uris = suites = signed = enabled = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]*#/ || /^[ \t]/ { next }
      {
        key = tolower($1); sub(/:$/, "", key)
        value = $0; sub(/^[^:]*:[ \t]*/, "", value); sub(/[ \t]+$/, "", value)
        if (key == "types") types = value
        else if (key == "uris") uris = value
        else if (key == "suites") suites = value
        else if (key == "signed-by") signed = value
        else if (key == "enabled") enabled = tolower(value)
      }
      END { if (!found) flush() }
    ' "$file" | head -n1 | grep . && return 0
  done
  # One-line format: deb [options] URI SUITE COMPONENTS...
  for file in "$APT_ETC/sources.list" "$APT_ETC"/sources.list.d/*.list; do
    [ -f "$file" ] || continue
    awk -v codename="$codename" '
      $1 != "deb" { next }
      {
        signed = "-"; i = 2
        if ($2 ~ /^\[/) {
          for (; i <= NF; i++) {
            opt = $i; gsub(/[\[\]]/, "", opt)
            if (opt ~ /^signed-by=/) { signed = opt; sub(/^signed-by=/, "", signed) }
            if ($i ~ /\]$/) { i++; break }
          }
        }
        if ($(i + 1) == codename) { print $i, codename, signed; exit }
      }
    ' "$file" | head -n1 | grep . && return 0
  done
  return 1
}

backports_apt_init() {
  local dir uri suite keyring options=""
  # apt takes relative Dir:: paths from its root directory, not from ours.
  dir="$(mkdir -p "$1" && cd "$1" && pwd)"
  read -r uri suite keyring < <(debian_archive_source) ||
    die "no Debian archive for suite $(debian_codename) found in $APT_ETC/sources.list or $APT_ETC/sources.list.d/ (the backports suite is derived from it)"
  [ "$keyring" = "-" ] || options=" [signed-by=$keyring]"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  printf 'deb%s %s %s-backports main\n' "$options" "$uri" "$suite" >"$dir/sources.list.new"
  # A changed source invalidates the lists fetched from the old one.
  if ! cmp -s "$dir/sources.list.new" "$dir/sources.list" 2>/dev/null; then
    mv "$dir/sources.list.new" "$dir/sources.list"
    rm -f "$dir/lists/"*_Packages* "$dir/lists/"*Release* "$dir/updated"
  else
    rm -f "$dir/sources.list.new"
  fi
  BACKPORTS_APT=(
    -o "Dir::Etc::SourceList=$dir/sources.list"
    -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$dir/lists"
    -o "Dir::Cache=$dir/cache"
  )
  if [ -z "$(find "$dir/updated" -mmin -1440 2>/dev/null)" ]; then
    apt-get "${BACKPORTS_APT[@]}" update -qq >"$dir/update.log" 2>&1 ||
      die "apt-get update of $(cat "$dir/sources.list") failed: $(tail -n 5 "$dir/update.log")"
    touch "$dir/updated"
  fi
}

backports_newest() {
  apt-cache "${BACKPORTS_APT[@]}" madison "$1" 2>/dev/null |
    awk -F'|' -v prefix="$2" '{ gsub(/ /, "", $2); if (index($2, prefix) == 1 && $3 ~ /-backports/) print $2 }' |
    sort -V | tail -n1
}
