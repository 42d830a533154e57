"""The plug-in's dialog in the full GIMP window, driven with keyboard and mouse as a user would.

GIMP 3 (gimp-3.0, not gimp-console) runs on an Xvfb screen inside the chroot of
tests/gimp/install-gimp3.sh, with Xvfb, xdotool and X tools added to it. tests/gimp/ui_dialog.py
adds a model to the user models folder after GIMP started, opens a photo and runs the procedure
interactively; tests/gimp/ui_driver.sh, the "user", screenshots the dialog, clicks Help, picks
the new model from the Model list (Alt+M, Down, Down) and presses OK (Alt+O).

The screenshots are kept in $CGAN_ARTEFACTS/gimp-ui/ when that is set (else in pytest's
temporary folder); docs/img/gimp-*.png are made from them. Skipped, saying why, where the GIMP
chroot or root is missing or the X packages cannot be installed into it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from PIL import Image
from skimage import data as skdata
from typer.testing import CliRunner

from cyclegan_cli.cli import app
from cyclegan_cli.inference import load_model
from cyclegan_cli.shipped import weights_dir
from tests.test_gimp_real import GIMP_ROOT, HARNESS
from tests.test_gimp_real import _mounts as mounts
from tests.test_gimp_real import _why_no_gimp as why_no_gimp

X_PACKAGES = "xvfb xdotool x11-utils x11-apps netpbm"


pytestmark = pytest.mark.gimp


def _why_no_gui() -> str | None:
    why = why_no_gimp()
    if why:
        return why
    added = subprocess.run([str(HARNESS / "install-gimp3.sh")], capture_output=True, text=True,
                           env={**os.environ, "GIMP3_EXTRA_PACKAGES": X_PACKAGES})
    if added.returncode != 0:
        last = (added.stderr.strip().splitlines() or ["no output"])[-1]
        return f"cannot add Xvfb and xdotool to the GIMP chroot: {last}"
    return None


@pytest.fixture(scope="module")
def ui_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One interactive GIMP session; its results, screenshots and log."""
    why = _why_no_gui()
    if why:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("gimp-ui")
    user = work / "user-models"
    old = os.environ.get("CGAN_MODELS")
    os.environ["CGAN_MODELS"] = str(user)  # recorded by install as the user models folder
    try:
        installed = CliRunner().invoke(app, ["gimp", "install", "--gimp-config-dir",
                                             str(work / "cfg")])
    finally:
        if old is None:
            os.environ.pop("CGAN_MODELS")
        else:
            os.environ["CGAN_MODELS"] = old
    assert installed.exit_code == 0, installed.output
    cat = skdata.chelsea()[:200, :300]
    Image.fromarray(cat).save(work / "cat.png")
    # A second model with other domains, added only once GIMP runs: "winter → summer".
    model = onnx.load(str(weights_dir() / "golden_hour-BtoA.onnx"))
    for entry in model.metadata_props:
        entry.value = {"cyclegan_cli.direction": "AtoB", "cyclegan_cli.domain_from": "winter",
                       "cyclegan_cli.domain_to": "summer"}.get(entry.key, entry.value)
    onnx.save(model, str(work / "seasons-AtoB.onnx"))
    (work / "ui.json").write_text(json.dumps({
        "add_model": [str(work / "seasons-AtoB.onnx"), str(user / "seasons-AtoB.onnx")],
        "driver": str(HARNESS / "ui_driver.sh"),
        "settings": str(work / "cfg" / "plug-ins" / "cyclegan" / "cyclegan.json"),
        "steps": 2,  # golden_hour A→B (default), golden_hour B→A, seasons A→B
    }))
    env = {**os.environ, "GIMP_UI": "1", "GIMP_TIMEOUT": "200",
           "GIMP_EXTRA_MOUNTS": mounts([]),
           "GIMP_RC_EXTRA": "(help-browser web-browser)\n(show-welcome-dialog no)"}
    proc = subprocess.run([str(HARNESS / "gimp-batch.sh"), str(work / "cfg" / "plug-ins"),
                           str(HARNESS / "ui_dialog.py"), str(work)],
                          env=env, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    left = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(f"{GIMP_ROOT}/") and
            line.split()[1] != f"{GIMP_ROOT}/proc"]
    assert not left, f"gimp-batch.sh left mounts behind: {left}"
    keep = Path(os.environ["CGAN_ARTEFACTS"]) / "gimp-ui" if os.environ.get("CGAN_ARTEFACTS") \
        else work
    keep.mkdir(parents=True, exist_ok=True)
    for name in ("dialog-default.png", "dialog-chosen.png", "dialog-empty.png",
                 "screen-dialog.png", "screen-result.png"):
        if (work / name).is_file() and keep != work:
            shutil.copyfile(work / name, keep / name)
    print(f"GIMP dialog screenshots: {keep}")
    results = work / "ui-results.json"
    assert proc.returncode == 0 and results.is_file(), \
        f"the GIMP session failed ({proc.returncode}):\n{log[-3000:]}\n" \
        f"{(work / 'driver.log').read_text() if (work / 'driver.log').is_file() else ''}"
    return {"work": work, "log": log, "cat": cat, "seasons": work / "seasons-AtoB.onnx",
            **json.loads(results.read_text())}


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def test_model_chosen_from_the_list_makes_a_named_layer(ui_run) -> None:
    """The model added after GIMP started is in the list; choosing it and pressing OK gives a
    new layer named after it, holding what the core makes of the photo with it."""
    assert ui_run["driver_ok"] and ui_run["status"] == "success", ui_run["message"]
    assert ui_run["layers"] == ["Background (seasons: winter → summer)", "Background"]
    expected = load_model(ui_run["seasons"]).translate_array(ui_run["cat"])
    np.testing.assert_array_equal(_png(ui_run["work"] / "top.png"), expected)


def test_direction_labels_follow_the_chosen_model(ui_run) -> None:
    """Screenshots before and after choosing: the Model row changed (its label now shows
    the other model's domains); the fields below it did not. (The buttons' row may: Help
    was clicked in between.)"""
    before, after = (_png(ui_run["work"] / f"dialog-{n}.png") for n in ("default", "chosen"))
    assert before.shape == after.shape and before.shape[0] > 150 and before.std() > 10
    rows = np.flatnonzero((before != after).any(axis=2).any(axis=1))
    height = before.shape[0]  # Model is the first of four field rows, then buttons
    assert len(rows) > 5 and rows.min() < height * 0.2, "the Model row did not change"
    middle = rows[(rows > height * 0.25) & (rows < height * 0.6)]
    assert not len(middle), f"the fields below the Model row changed (rows {middle})"


def test_help_opens_the_offline_page(ui_run) -> None:
    url = (ui_run["work"] / "help-url.txt").read_text().strip()
    page = Path(url.removeprefix("file://"))
    assert page == ui_run["work"] / "cfg" / "plug-ins" / "cyclegan" / "help" / "en" / \
        "index.html"
    assert page.is_file() and "Getting models" in page.read_text()


def test_without_models_the_dialog_says_what_to_do(ui_run) -> None:
    """With no models installed the dialog still opens, with one more row at the top (how to
    get a model); cancelling it leaves the image as it was."""
    assert ui_run["empty_status"] == "cancel", ui_run["empty_message"]
    assert ui_run["layers_after"] == ui_run["layers"]
    empty, default = (_png(ui_run["work"] / f"dialog-{n}.png") for n in ("empty", "default"))
    assert empty.shape[0] >= default.shape[0] + 15  # the hint's rows
    assert empty.shape[1] < 1.5 * default.shape[1]  # wrapped, not one line wider than a screen


def test_no_mnemonic_clash_warning(ui_run) -> None:
    assert "mnemonic" not in ui_run["log"].lower()
