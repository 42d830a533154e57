"""Batch code run inside GIMP 3 by tests/test_gimp_real.py (through gimp-batch.sh).

Reads jobs.json from the working folder: {"config": the installed plug-in's cyclegan.json,
"jobs": [...]}. For each job it loads an image, makes a selection, calls the CycleGAN procedure
through the PDB (after patching the plug-in settings when the job says so) and exports what the
image then looks like. Writes results.json: how the procedure is registered (menu, image types,
arguments) and per job the status, the error message, the layer names, the selection bounds and
the exported file.
"""
import json
import os
from pathlib import Path

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

here = os.getcwd()
spec = json.loads(Path(here, "jobs.json").read_text())
config_file = spec["config"]
original_settings = Path(config_file).read_text()
results = []
registered = Gimp.get_pdb().lookup_procedure("plug-in-cyclegan-translate")
procedure = None if registered is None else {
    "menu": list(registered.get_menu_paths()), "label": registered.get_menu_label(),
    "image_types": registered.get_image_types(),
    "arguments": {a.name: str(a.get_default_value()) for a in registered.get_arguments()[3:]},
    "models": [[nick, choice.get_label(nick)] for choice in
               [Gimp.param_spec_choice_get_choice(registered.find_argument("model"))]
               for nick in choice.list_nicks()],
    "help_id": registered.get_help_id(),
}


def export(image, path):
    """The visible image (all layers composited, alpha kept) saved to ``path``."""
    copy = image.duplicate()
    copy.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, copy, Gio.File.new_for_path(path), None)
    copy.delete()


for job in spec["jobs"]:
    settings = json.loads(original_settings)
    settings.update(job.get("settings", {}))
    with open(config_file, "w") as fh:
        json.dump(settings, fh)
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE,
                           Gio.File.new_for_path(os.path.join(here, job["input"])))
    if job.get("offset"):
        image.get_layers()[0].set_offsets(*job["offset"])
    sel = job.get("select")
    if sel:
        shape = image.select_rectangle if sel["shape"] == "rect" else image.select_ellipse
        shape(Gimp.ChannelOps.REPLACE, *sel["box"])
        if sel.get("feather"):
            Gimp.Selection.feather(image, sel["feather"])
    _, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    proc = Gimp.get_pdb().lookup_procedure("plug-in-cyclegan-translate")
    if proc is None:
        results.append({"name": job["name"], "status": "not registered"})
        continue
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", image.get_selected_layers())
    for key, value in job["args"].items():
        cfg.set_property(key, Gio.File.new_for_path(value) if key == "model-file" else value)
    result = proc.run(cfg)
    out = os.path.join(here, job["name"] + ".png")
    export(image, out)
    results.append({
        "name": job["name"],
        "status": result.index(0).value_nick,
        "message": str(result.index(1)) if result.length() > 1 else "",
        "layers": [layer.get_name() for layer in image.get_layers()],
        "selection": [x1, y1, x2 - x1, y2 - y1] if non_empty else None,
        "output": out,
    })
    image.delete()

with open(config_file, "w") as fh:
    fh.write(original_settings)
with open(os.path.join(here, "results.json"), "w") as fh:
    json.dump({"procedure": procedure, "jobs": results}, fh, indent=1)
