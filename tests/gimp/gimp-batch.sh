#!/usr/bin/env bash
# (A copy of the harness in ../shared/gimp/, kept in the repository so that a clean clone and
# .ci/run can use it; its mounts are made parents-first and undone innermost-first.)
# Runs GIMP 3 headless in batch mode inside the chroot made by install-gimp3.sh.
#   gimp-batch.sh PLUGIN_DIR SNIPPET.py [WORKDIR]
# PLUGIN_DIR: a folder holding plug-in folders (each plug-in in a folder named like its .py file).
# SNIPPET.py: Python run by GIMP's python-fu-eval (it can `from gi.repository import Gimp`).
# WORKDIR (default: the current directory) is bind-mounted into the chroot at the same path, so
# paths under it mean the same inside and outside. GIMP_EXTRA_MOUNTS (colon-separated folders) are
# bind-mounted the same way, e.g. a virtualenv and the Python it points to, so a plug-in can run the
# host's `cgan` by subprocess. GIMP_PYTHONPATH is passed to GIMP's Python as PYTHONPATH.
# GIMP_UI=1 runs the full GIMP window (gimp-3.0) on an Xvfb screen started in the chroot (needs
# xvfb and x11-utils there: GIMP3_EXTRA_PACKAGES of install-gimp3.sh); the snippet then sees
# DISPLAY. GIMP_RC_EXTRA: more gimprc lines for this run. GIMP sees WORKDIR as $GIMP_WORK (the GUI
# starts plug-ins in /, not there).
# Exit status: GIMP's.
set -euo pipefail
ROOT=${GIMP3_ROOT:-/opt/gimp3-root}
plugins=$(readlink -f "$1"); snippet=$(readlink -f "$2"); work=$(readlink -f "${3:-$PWD}")
[ -x "$ROOT/usr/bin/gimp-console-3.0" ] || { echo "gimp-batch.sh: no GIMP 3 at $ROOT; run install-gimp3.sh" >&2; exit 1; }
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mounted=()
cleanup() {  # innermost first, so that no mount is left behind under another
  for ((i=${#mounted[@]}-1; i>=0; i--)); do
    umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT
extra=()
IFS=: read -r -a extra <<< "${GIMP_EXTRA_MOUNTS:-}"
# Mount parents before children and skip folders inside one already mounted (they are visible
# through it): a child mounted first would be hidden by its parent's mount and never unmounted.
dirs=()
for d in "$work" "$plugins" "$(dirname "$snippet")" "${extra[@]}"; do
  [ -n "$d" ] && dirs+=("$(readlink -f "$d")")
done
last=""
while IFS= read -r d; do
  if [ -n "$last" ] && { [ "$d" = "$last" ] || [[ "$d" == "$last"/* ]]; }; then continue; fi
  last=$d
  mkdir -p "$ROOT$d"
  if ! mountpoint -q "$ROOT$d"; then mount --bind "$d" "$ROOT$d"; mounted+=("$ROOT$d"); fi
done < <(printf '%s\n' "${dirs[@]}" | sort -u)
home=/tmp/gimp-home-$$
mkdir -p "$ROOT$home/.config/GIMP/3.0"
# Add the plug-in folder to GIMP's search path for this run only.
printf '(plug-in-path "${gimp_dir}/plug-ins:${gimp_plug_in_dir}/plug-ins:%s")\n%s\n' "$plugins" "${GIMP_RC_EXTRA:-}" > "$ROOT$home/.config/GIMP/3.0/gimprc"
batch="-b 'exec(open(\"$snippet\").read())' --quit"
run="timeout ${GIMP_TIMEOUT:-300} gimp-console-3.0 -i --batch-interpreter=python-fu-eval $batch"
if [ "${GIMP_UI:-0}" = 1 ]; then
  # X servers listen on abstract sockets, which the chroot shares with the host: a free number
  n=$(( 200 + RANDOM % 500 ))
  while grep -q "@/tmp/.X11-unix/X$n\$" /proc/net/unix; do n=$((n + 1)); done
  run="Xvfb :$n -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 & x=\$!
    for i in \$(seq 50); do DISPLAY=:$n xdpyinfo >/dev/null 2>&1 && break; sleep 0.2; done
    DISPLAY=:$n timeout ${GIMP_TIMEOUT:-300} gimp-3.0 --no-splash --batch-interpreter=python-fu-eval $batch
    code=\$?; kill \$x; wait \$x; exit \$code"
fi
set +e
chroot "$ROOT" env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="$home" LANG=C.UTF-8 GIMP_WORK="$work" PYTHONPATH="${GIMP_PYTHONPATH:-}" bash -c \
  "cd '$work' || exit 1; $run"
code=$?
rm -rf "$ROOT$home"
exit $code
