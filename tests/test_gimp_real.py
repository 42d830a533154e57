"""The GIMP plug-in in a real GIMP 3, headless (tests/gimp/: a Debian trixie chroot with GIMP
3.0 and its Python 3.13, installed by tests/gimp/install-gimp3.sh, which .ci/run calls).

`cgan gimp install` puts the plug-in into a scratch GIMP folder; GIMP then runs
tests/gimp/run_jobs.py, which loads photos, makes selections, calls the procedure through the
PDB and exports the result. Two GIMP runs: one whose Python has the inference core's packages
(numpy, onnx, onnxruntime, installed for Python 3.13 from the package index), one without
them (GIMP as shipped). Skipped where GIMP 3 is not installed or root (for the chroot) is not
available.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from typer.testing import CliRunner

from cyclegan_cli.cli import app
from cyclegan_cli.inference import load_model
from cyclegan_cli.shipped import weights_dir

GIMP_ROOT = Path(os.environ.get("GIMP3_ROOT", "/opt/gimp3-root"))
HARNESS = Path(__file__).parent / "gimp"
PROJECT = Path(__file__).resolve().parents[1]  # holds tests/ (the GIMP harness)
MODEL = weights_dir() / "golden_hour-AtoB.onnx"
RECT = [40, 30, 128, 96]  # x, y, w, h


def _why_no_gimp() -> str | None:
    if not (GIMP_ROOT / ".gimp3-ready").is_file():
        return (f"GIMP 3 is not installed at {GIMP_ROOT} (tests/gimp/install-gimp3.sh installs "
                "it; .ci/run does so)")
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "GIMP 3 runs in a chroot here, which needs root"
    return None


pytestmark = [pytest.mark.torchfree,  # runs in an install without torch
              pytest.mark.gimp,
              pytest.mark.skipif(_why_no_gimp() is not None, reason=_why_no_gimp() or "")]


def _core(arr: np.ndarray, tile: int | None = None, model: Path = MODEL) -> np.ndarray:
    return load_model(model).translate_array(arr, tile)


@pytest.fixture(scope="session")
def gimp_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The plug-in installed by the CLI, photos, and GIMP's Python packages (or None)."""
    root = tmp_path_factory.mktemp("gimp")
    result = CliRunner().invoke(app, ["gimp", "install", "--gimp-config-dir", str(root / "cfg")])
    assert result.exit_code == 0, result.output
    cat = skdata.chelsea()[:200, :300]
    Image.fromarray(cat).save(root / "cat.png")
    rgba = np.dstack([skdata.astronaut()[:160, :192],
                      np.tile(np.linspace(0, 255, 192).astype(np.uint8), (160, 1))])
    Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
    packages = root / "py313"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--target", str(packages),
         "--python-version", "3.13", "--only-binary=:all:", "--platform",
         "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64", "--platform",
         "manylinux2014_x86_64", "onnxruntime", "onnx", "numpy"],
        capture_output=True, text=True)
    return {"root": root, "plugins": root / "cfg" / "plug-ins",
            "config": root / "cfg" / "plug-ins" / "cyclegan" / "cyclegan.json",
            "cat": cat, "rgba": rgba,
            "packages": packages if pip.returncode == 0 else None,
            "pip_error": pip.stderr.strip().splitlines()[-1:] if pip.returncode else None}


def _mounts(extra: list[Path]) -> str:
    """Host folders the chroot needs: the project, this Python (for the cgan engine)."""
    folders = {PROJECT, *extra}
    for prefix in {sys.prefix, sys.base_prefix}:
        p = Path(prefix).resolve()
        if len(p.parts) > 2 and p not in (Path("/usr"), Path("/usr/local")):
            folders.add(p)  # never hide the chroot's own /usr
    return ":".join(str(f) for f in sorted(folders))


def _run_gimp(env: dict[str, Any], name: str, jobs: list[dict[str, Any]],
              with_packages: bool) -> dict[str, dict[str, Any]]:
    work = env["root"] / name
    work.mkdir()
    for f in ("cat.png", "rgba.png"):
        (work / f).write_bytes((env["root"] / f).read_bytes())
    (work / "jobs.json").write_text(json.dumps({"config": str(env["config"]), "jobs": jobs}))
    extra = [env["packages"]] if with_packages else []
    run_env = {**os.environ, "GIMP_EXTRA_MOUNTS": _mounts(extra),
               "GIMP_PYTHONPATH": str(env["packages"]) if with_packages else "",
               "GIMP_TIMEOUT": "240"}
    proc = subprocess.run([str(HARNESS / "gimp-batch.sh"), str(env["plugins"]),
                           str(HARNESS / "run_jobs.py"), str(work)],
                          env=run_env, capture_output=True, text=True)
    left = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(f"{GIMP_ROOT}/") and
            line.split()[1] != f"{GIMP_ROOT}/proc"]
    assert not left, f"gimp-batch.sh left mounts behind: {left}"
    results = work / "results.json"
    assert proc.returncode == 0 and results.is_file(), \
        f"GIMP batch run failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}"
    found = json.loads(results.read_text())
    return {"procedure": found["procedure"], **{r["name"]: r for r in found["jobs"]}}


def _job(name: str, args: dict[str, Any], select: dict[str, Any] | None = None,
         image: str = "cat.png", **extra: Any) -> dict[str, Any]:
    return {"name": name, "input": image, "args": {"model": "golden_hour-AtoB", **args},
            "select": select, **extra}


RECT_SELECT = {"shape": "rect", "box": RECT}


@pytest.fixture(scope="session")
def with_core(gimp_env: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """GIMP whose Python can import the inference core."""
    if gimp_env["packages"] is None:
        pytest.skip(f"cannot install onnxruntime for GIMP's Python 3.13: {gimp_env['pip_error']}")
    other = str(weights_dir() / "golden_hour-BtoA.onnx")
    jobs = [
        _job("inproc", {"engine": "in-process"}, RECT_SELECT),
        _job("cgan", {"engine": "cgan"}, RECT_SELECT),
        _job("tiled_inproc", {"engine": "in-process", "tile-size": 64}, RECT_SELECT),
        _job("tiled_cgan", {"engine": "cgan", "tile-size": 64}, RECT_SELECT),
        _job("feather_replace", {"output": "replace"},
             {"shape": "ellipse", "box": [60, 40, 160, 110], "feather": 20}),
        _job("alpha_replace", {"output": "replace"}, image="rgba.png"),
        _job("btoa_listed", {"model": "golden_hour-BtoA"}, RECT_SELECT),
        _job("btoa_file", {"model": "file", "model-file": other}, RECT_SELECT),
        _job("offset_layer", {"output": "replace"}, RECT_SELECT, offset=[10, 5]),
        _job("broken_model", {"model": "file",
                              "model-file": str(weights_dir() / "README.md")}, RECT_SELECT),
        _job("no_file", {"model": "file"}, RECT_SELECT),
        _job("no_models", {}, RECT_SELECT, settings={"models_dirs": []}),
        _job("bad_tile", {"tile-size": 10}, RECT_SELECT),
    ]
    return _run_gimp(gimp_env, "with-core", jobs, with_packages=True)


@pytest.fixture(scope="session")
def without_core(gimp_env: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """GIMP as shipped: its Python has no onnxruntime, so only the cgan engine can work."""
    jobs = [
        _job("auto", {}, RECT_SELECT),
        _job("inproc", {"engine": "in-process"}, RECT_SELECT),
        _job("nothing_works", {}, RECT_SELECT, settings={"cgan": ["/nonexistent/bin/cgan"]}),
    ]
    return _run_gimp(gimp_env, "without-core", jobs, with_packages=False)


def _read(result: dict[str, Any]) -> np.ndarray:
    return np.asarray(Image.open(result["output"]))


def _assert_region(out: np.ndarray, src: np.ndarray, expected: np.ndarray) -> None:
    x, y, w, h = RECT
    np.testing.assert_array_equal(out[y:y + h, x:x + w, :3], expected[..., :3])
    outside = np.ones(src.shape[:2], bool)
    outside[y:y + h, x:x + w] = False
    np.testing.assert_array_equal(out[outside][:, :3], src[outside][:, :3])


def test_registered_under_filters_menu(with_core, without_core) -> None:
    for run in (with_core, without_core):
        p = run["procedure"]
        assert p["menu"] == ["<Image>/Filters/CycleGAN"] and p["label"] == "_Translate…"
        assert p["image_types"] == "RGB*"
        assert p["arguments"] == {"model": "golden_hour-AtoB", "model-file": "None",
                                  "tile-size": "0", "output": "new-layer", "engine": "auto"}
        assert p["models"] == [["golden_hour-AtoB", "golden_hour: photo → golden hour"],
                               ["golden_hour-BtoA", "golden_hour: golden hour → photo"],
                               ["file", "Another model: the .onnx file below"]]
        # GIMP took the plug-in's help domain (its offline page): "domain?help id"
        assert p["help_id"] == "cyclegan-cli?plug-in-cyclegan-translate"


def test_selection_translated_by_core_outside_unchanged(gimp_env, with_core) -> None:
    r = with_core["inproc"]
    assert r["status"] == "success", r["message"]
    assert r["layers"] == ["Background (golden_hour: photo → golden hour)", "Background"]
    cat = gimp_env["cat"]
    x, y, w, h = RECT
    expected = _core(cat[y:y + h, x:x + w])
    out = _read(r)
    _assert_region(out, cat, expected)
    assert (expected != cat[y:y + h, x:x + w]).any(axis=2).mean() > 0.5  # the model changed it


def test_cgan_engine_gives_identical_pixels(with_core) -> None:
    for a, b in (("inproc", "cgan"), ("tiled_inproc", "tiled_cgan")):
        assert with_core[b]["status"] == "success", with_core[b]["message"]
        np.testing.assert_array_equal(_read(with_core[a]), _read(with_core[b]))


def test_tile_size_is_used(gimp_env, with_core) -> None:
    x, y, w, h = RECT
    region = gimp_env["cat"][y:y + h, x:x + w]
    tiled = _read(with_core["tiled_inproc"])[y:y + h, x:x + w, :3]
    np.testing.assert_array_equal(tiled, _core(region, tile=64)[..., :3])
    assert not np.array_equal(tiled, _read(with_core["inproc"])[y:y + h, x:x + w, :3])


def test_feathered_selection_replace_mode(gimp_env, with_core) -> None:
    r = with_core["feather_replace"]
    assert r["status"] == "success", r["message"]
    assert r["layers"] == ["Background"]  # replaced in place, no new layer
    cat = gimp_env["cat"].astype(int)
    x, y, w, h = r["selection"]
    full = cat.copy()
    full[y:y + h, x:x + w] = _core(gimp_env["cat"][y:y + h, x:x + w])[..., :3]
    out = _read(r)[..., :3].astype(int)
    cy, cx = 40 + 55, 60 + 80
    np.testing.assert_array_equal(out[cy - 5:cy + 5, cx - 5:cx + 5],
                                  full[cy - 5:cy + 5, cx - 5:cx + 5])  # fully selected
    np.testing.assert_array_equal(out[:10], cat[:10])  # not selected
    lo, hi = np.minimum(cat, full) - 1, np.maximum(cat, full) + 1
    assert ((out >= lo) & (out <= hi)).all()  # feathered edge: a blend of the two
    partial = (out != cat).any(axis=2) & (out != full).any(axis=2)
    assert partial.sum() > 500  # the feather really blends


def test_alpha_channel_kept(gimp_env, with_core) -> None:
    r = with_core["alpha_replace"]
    assert r["status"] == "success", r["message"]
    out = _read(r)
    rgba = gimp_env["rgba"]
    assert out.shape == rgba.shape
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    expected = _core(rgba)
    visible = rgba[..., 3] > 0
    np.testing.assert_array_equal(out[visible][:, :3], expected[visible][:, :3])


def test_model_file_and_other_direction(gimp_env, with_core) -> None:
    for job in ("btoa_listed", "btoa_file"):
        r = with_core[job]
        assert r["status"] == "success", r["message"]
        assert r["layers"][0] == "Background (golden_hour: golden hour → photo)"
        x, y, w, h = RECT
        cat = gimp_env["cat"]
        expected = _core(cat[y:y + h, x:x + w], model=weights_dir() / "golden_hour-BtoA.onnx")
        _assert_region(_read(r), cat, expected)


def test_layer_offsets(gimp_env, with_core) -> None:
    """The selection is in image coordinates, the layer's pixels in its own."""
    r = with_core["offset_layer"]
    assert r["status"] == "success", r["message"]
    x, y, w, h = RECT
    dx, dy = 10, 5
    cat = gimp_env["cat"]
    expected = _core(cat[y - dy:y - dy + h, x - dx:x - dx + w])
    out = _read(r)
    np.testing.assert_array_equal(out[y:y + h, x:x + w, :3], expected[..., :3])
    np.testing.assert_array_equal(out[y + h:, dx:, :3], cat[y + h - dy:-dy, :-dx])


@pytest.mark.parametrize(("job", "says"), [
    ("broken_model", "not a usable ONNX model"),
    ("no_file", "choose the model's .onnx file"),
    ("no_models", "no models installed yet. In a terminal, get one with `cgan models pull"),
    ("bad_tile", "tile size must be 0"),
])
def test_errors_leave_image_untouched(gimp_env, with_core, job, says) -> None:
    r = with_core[job]
    assert r["status"] == "execution-error"
    assert says in r["message"] and r["message"].startswith("CycleGAN")
    assert "\n" not in r["message"] and "Traceback" not in r["message"]
    assert r["layers"] == ["Background"]
    np.testing.assert_array_equal(_read(r)[..., :3], gimp_env["cat"])


def test_without_onnxruntime_auto_falls_back_to_cgan(with_core, without_core) -> None:
    r = without_core["auto"]
    assert r["status"] == "success", r["message"]
    np.testing.assert_array_equal(_read(r), _read(with_core["inproc"]))


def test_without_onnxruntime_messages(gimp_env, without_core) -> None:
    r = without_core["inproc"]
    assert r["status"] == "execution-error"
    assert "lacks onnxruntime" in r["message"] and "cgan gimp install" in r["message"]
    r = without_core["nothing_works"]
    assert r["status"] == "execution-error"
    assert r["message"].startswith("CycleGAN cannot run models: the cgan command is missing "
                                   "(/nonexistent/bin/cgan); run `cgan gimp install` again")
    assert r["message"].endswith("(GIMP's Python 3.13 cannot run models (lacks onnxruntime))")
    assert "\n" not in r["message"]
    np.testing.assert_array_equal(_read(r)[..., :3], gimp_env["cat"])
