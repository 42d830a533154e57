#!/usr/bin/env bash
# (A copy of the harness in ../shared/gimp/, kept in the repository so that a clean clone and
# .ci/run can use it.)
# Installs a real GIMP 3 (Debian trixie's) with its Python 3 plug-in support into a chroot, for
# headless plug-in tests. Idempotent and safe to run concurrently; needs root; about a minute and
# ~1 GB on a fresh machine. Prints the chroot's path last. Override the location with GIMP3_ROOT.
# GIMP3_EXTRA_PACKAGES: more trixie packages, added to a finished chroot too (the interactive
# test asks for Xvfb and xdotool this way).
set -euo pipefail
ROOT=${GIMP3_ROOT:-/opt/gimp3-root}
PKGS="gimp python3-gi gir1.2-gimp-3.0 python3-pil python3-numpy python3-venv python3-pip"
EXTRA=${GIMP3_EXTRA_PACKAGES:-}
READY="$ROOT/.gimp3-ready"

missing_extra() {  # the extra packages dpkg in the chroot does not have
  local p
  for p in $EXTRA; do
    chroot "$ROOT" /usr/bin/dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
      | grep -q '^install ok installed$' || printf '%s ' "$p"
  done
}
add_extra() {  # installs the missing extra packages into a finished chroot
  local missing
  missing=$(missing_extra)
  [ -n "$missing" ] || return 0
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  chroot "$ROOT" env PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive bash -c \
    "apt-get update -q && apt-get install -y -q --no-install-recommends $missing && apt-get clean" \
    >>/tmp/install-gimp3.log 2>&1 \
    || { tail -n 20 /tmp/install-gimp3.log >&2; echo "install-gimp3.sh: installing $missing failed" >&2; exit 1; }
}

if [ -f "$READY" ] && [ -z "$(missing_extra)" ]; then echo "$ROOT"; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "install-gimp3.sh: needs root" >&2; exit 1; }

exec 9>"/tmp/install-gimp3.$(echo "$ROOT" | tr / _).lock"
flock 9                                   # a second caller waits for the first
if [ -f "$READY" ]; then add_extra; echo "$ROOT"; exit 0; fi

# The Debian archive this machine already uses (first non-security URIs/deb line of its apt sources).
mirror=${DEBIAN_MIRROR:-}
[ -n "$mirror" ] || mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1 || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "install-gimp3.sh: no Debian mirror found in apt sources; set DEBIAN_MIRROR" >&2; exit 1; }

if ! command -v debootstrap >/dev/null; then
  apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null
fi
# Start from scratch if an earlier attempt stopped half-way.
if [ -e "$ROOT" ]; then
  umount "$ROOT/proc" 2>/dev/null || true
  rm -rf "$ROOT"
fi
log=/tmp/install-gimp3.log
debootstrap --variant=minbase trixie "$ROOT" "$mirror" >"$log" 2>&1 \
  || { tail -n 20 "$log" >&2; echo "install-gimp3.sh: debootstrap of trixie failed (log: $log)" >&2; exit 1; }
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
chroot "$ROOT" env PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive bash -c \
  "apt-get update -q && apt-get install -y -q --no-install-recommends $PKGS $EXTRA" >>"$log" 2>&1 \
  || { tail -n 20 "$log" >&2; echo "install-gimp3.sh: installing GIMP 3 in the chroot failed (log: $log)" >&2; exit 1; }
chroot "$ROOT" env PATH=/usr/sbin:/usr/bin:/sbin:/bin gimp-console-3.0 --version >&2
touch "$READY"
echo "$ROOT"
