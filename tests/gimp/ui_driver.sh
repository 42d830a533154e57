#!/usr/bin/env bash
# The "user" of tests/gimp/ui_dialog.py, run inside the chroot on GIMP's Xvfb screen: waits for
# the CycleGAN dialog, screenshots it, clicks Help, picks the model MODEL_STEPS entries further
# down the Model list with the keyboard (Alt+M, Down…), screenshots it again and presses OK;
# then screenshots the dialog opened with no models installed and cancels it (Escape).
# Writes its steps to driver.log and its screenshots to the working folder.
set -u
log() { echo "$(date +%T) $*" >> driver.log; }
shot() { xwd -id "$1" -silent | xwdtopnm 2>/dev/null | pnmtopng > "$2"; }
wid=$(timeout 90 xdotool search --sync --name '^CycleGAN$' | head -n 1) || { log "no dialog"; exit 1; }
log "dialog $wid"
xdotool windowmove --sync "$wid" 810 60 2>/dev/null  # beside GIMP's window (no window manager)
sleep 1.5
eval "$(xdotool getwindowgeometry --shell "$wid")"
echo "$X $Y $WIDTH $HEIGHT" > dialog-geometry.txt
shot "$wid" dialog-default.png
xwd -root -silent | xwdtopnm 2>/dev/null | pnmtopng > screen-dialog.png
log "help"
# the Help button: the first of the bottom row, as a user clicks it
xdotool mousemove --sync $((X + 60)) $((Y + HEIGHT - 42)) click 1
for _ in $(seq 100); do [ -s help-url.txt ] && break; sleep 0.2; done
log "help url: $(cat help-url.txt 2>/dev/null)"
sleep 0.5
xdotool windowactivate --sync "$wid" 2>/dev/null || xdotool windowfocus --sync "$wid"
xdotool key --window "$wid" alt+m
sleep 0.3
for _ in $(seq "${MODEL_STEPS:-2}"); do xdotool key --window "$wid" Down; sleep 0.3; done
sleep 1
shot "$wid" dialog-chosen.png
log "ok"
xdotool key --window "$wid" alt+o
log "done"
# Second opening, with no models installed (ui_dialog.py emptied the model folders): the dialog
# must open and say what to do; Escape cancels it.
for _ in $(seq 300); do xdotool search --name '^CycleGAN$' >/dev/null 2>&1 || break; sleep 0.1; done
wid=$(timeout 90 xdotool search --sync --name '^CycleGAN$' | head -n 1) || { log "no 2nd dialog"; exit 1; }
log "empty dialog $wid"
sleep 1.5
shot "$wid" dialog-empty.png
xdotool windowfocus --sync "$wid" 2>/dev/null
xdotool key --window "$wid" Escape
sleep 2
if xdotool search --name '^CycleGAN$' >/dev/null 2>&1; then
  xdotool key --window "$wid" alt+c  # _Cancel
fi
log "cancelled"
