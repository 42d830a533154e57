"""Batch code run in the full GIMP window by tests/test_gimp_ui.py (gimp-batch.sh, GIMP_UI=1).

Reads ui.json from the working folder. Adds a model to the user models folder (after GIMP
started: the dialog must list it), makes Help open a recorder instead of a browser, opens the
photo in a GIMP window, starts tests/gimp/ui_driver.sh (the "user") and runs the CycleGAN
procedure interactively, so that its real dialog opens. Afterwards it saves the new layer and a
screenshot of the window, opens the dialog once more with no models installed (the driver
cancels it), and writes ui-results.json.
"""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

here = Path(os.environ.get("GIMP_WORK") or os.getcwd())
os.chdir(here)
spec = json.loads((here / "ui.json").read_text())
home = Path(os.environ["HOME"])

# Help opens the page through GIO's default handler: a recorder stands in for the browser.
apps = home / ".local" / "share" / "applications"
apps.mkdir(parents=True, exist_ok=True)
recorder = here / "record-url.sh"
recorder.write_text(f"#!/bin/sh\necho \"$1\" > {here / 'help-url.txt'}\n")
recorder.chmod(0o755)
(apps / "recorder.desktop").write_text(
    f"[Desktop Entry]\nType=Application\nName=Recorder\nExec={recorder} %u\n")
(home / ".config" / "mimeapps.list").write_text(
    "[Default Applications]\nx-scheme-handler/file=recorder.desktop\n"
    "text/html=recorder.desktop\n")

target = Path(spec["add_model"][1])
target.parent.mkdir(parents=True, exist_ok=True)
shutil.copyfile(spec["add_model"][0], target)

image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(str(here / "cat.png")))
display = Gimp.Display.new(image)
Gimp.displays_flush()
time.sleep(2)

driver = subprocess.Popen(["bash", spec["driver"]], env={**os.environ,
                                                         "MODEL_STEPS": str(spec["steps"])})
proc = Gimp.get_pdb().lookup_procedure("plug-in-cyclegan-translate")
cfg = proc.create_config()
cfg.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
cfg.set_property("image", image)
cfg.set_core_object_array("drawables", image.get_selected_layers())
result = proc.run(cfg)  # blocks until the dialog is closed and the run is over
Gimp.displays_flush()
time.sleep(2)
subprocess.run(["bash", "-c", "xwd -root -silent | xwdtopnm 2>/dev/null | pnmtopng > "
                "screen-result.png"], check=False)
layers = image.get_layers()
top = layers[0]
copy = Gimp.Image.new(image.get_width(), image.get_height(), Gimp.ImageBaseType.RGB)
layer = Gimp.Layer.new_from_drawable(top, copy)
copy.insert_layer(layer, None, 0)
Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, copy, Gio.File.new_for_path(str(here / "top.png")),
               None)
copy.delete()
# Again with no models installed: the dialog still opens (it says what to do); the driver
# cancels it.
settings_file = Path(spec["settings"])
kept = settings_file.read_text()
settings_file.write_text(json.dumps({**json.loads(kept), "models_dirs": []}))
cfg = proc.create_config()
cfg.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
cfg.set_property("image", image)
cfg.set_core_object_array("drawables", image.get_selected_layers())
empty = proc.run(cfg)
settings_file.write_text(kept)
clicked = driver.wait(timeout=60) == 0
(here / "ui-results.json").write_text(json.dumps({
    "status": result.index(0).value_nick,
    "message": str(result.index(1)) if result.length() > 1 else "",
    "layers": [x.get_name() for x in layers],
    "empty_status": empty.index(0).value_nick,
    "empty_message": str(empty.index(1)) if empty.length() > 1 else "",
    "layers_after": [x.get_name() for x in image.get_layers()],
    "driver_ok": clicked,
}, indent=1))
display.delete()
image.delete()
