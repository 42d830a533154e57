"""The GIMP plug-in's logic under this Python, with stand-ins for GIMP's objects, and
`cgan gimp install/uninstall`. (tests/test_gimp_real.py runs it in a real GIMP 3.)"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from typer.testing import CliRunner

import cyclegan_cli
from cyclegan_cli import gimp_install
from cyclegan_cli.cli import app
from cyclegan_cli.inference import load_model
from cyclegan_cli.inference.limits import MIN_TILE
from cyclegan_cli.shipped import plugins_dir, weights_dir

pytestmark = pytest.mark.torchfree  # runs in an install without torch

PACKAGE_ROOT = Path(cyclegan_cli.__file__).resolve().parents[1]  # where it is installed
PLUGIN = plugins_dir() / "gimp" / "cyclegan" / "cyclegan.py"
MODEL = weights_dir() / "golden_hour-AtoB.onnx"


def _load_plugin() -> Any:
    spec = importlib.util.spec_from_file_location("cyclegan_gimp_plugin", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # no gi import at module level
    return module


plugin = _load_plugin()


def _read_png(path: Path) -> bytes:
    return np.asarray(Image.open(path).convert("RGBA")).tobytes()


@pytest.fixture(scope="module")
def settings() -> dict[str, Any]:
    return gimp_install.plugin_settings()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rgb = skdata.chelsea()[40:136, 60:188]
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    return np.dstack([rgb, alpha])


def _translate(photo: np.ndarray, settings: dict[str, Any], **kw: Any) -> tuple[bytes, str]:
    args = {"model": "golden_hour", "direction": "AtoB", "tile": 0, "engine": "auto"}
    args.update(kw)
    h, w = photo.shape[:2]
    return plugin.translate_pixels(photo.tobytes(), w, h, settings=settings,
                                   read_png=_read_png, **args)


# -- pixels ------------------------------------------------------------------------------------
def test_write_png_round_trip_keeps_colour_under_transparency(tmp_path, photo) -> None:
    photo = photo.copy()
    photo[:, :3, 3] = 0  # fully transparent columns with colour below
    plugin.write_png(tmp_path / "a.png", photo.tobytes(), photo.shape[1], photo.shape[0])
    with Image.open(tmp_path / "a.png") as img:
        assert img.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(img), photo)


def test_both_engines_equal_the_inference_core(photo, settings) -> None:
    expected = load_model(MODEL).translate_array(photo)
    inproc, used = _translate(photo, settings, engine="in-process")
    assert used == "in-process"
    cgan, used = _translate(photo, settings, engine="cgan")
    assert used == "cgan"
    h, w = photo.shape[:2]
    np.testing.assert_array_equal(np.frombuffer(inproc, np.uint8).reshape(h, w, 4), expected)
    assert inproc == cgan
    assert _translate(photo, settings)[1] == "in-process"  # auto prefers in-process


def test_tile_size_reaches_the_core(photo, settings) -> None:
    out, _ = _translate(photo, settings, engine="in-process", tile=64)
    expected = load_model(MODEL).translate_array(photo, 64)
    assert out == expected.tobytes()
    assert out != _translate(photo, settings, engine="in-process")[0]


def test_auto_falls_back_to_cgan(photo, settings, monkeypatch) -> None:
    def unavailable(*args: Any) -> bytes:
        raise plugin.EngineUnavailable("no onnxruntime here")

    monkeypatch.setattr(plugin, "translate_in_process", unavailable)
    out, used = _translate(photo, settings)
    assert used == "cgan"
    assert out == load_model(MODEL).translate_array(photo).tobytes()
    with pytest.raises(plugin.PluginError, match="no onnxruntime here") as err:
        _translate(photo, {**settings, "cgan": ["/nonexistent/cgan"]})
    assert "/nonexistent/cgan is missing" in str(err.value)
    assert "cgan gimp install" in str(err.value)


@pytest.mark.parametrize("engine", ["in-process", "cgan"])
@pytest.mark.parametrize(("args", "says"), [
    ({"model": "no_such_model"}, "model not found: no_such_model"),
    ({"model": str(MODEL), "direction": "BtoA"}, "translates AtoB"),
    ({"model": str(weights_dir() / "README.md")}, "not a usable ONNX model"),
])
def test_engine_errors_are_one_line(photo, settings, engine, args, says) -> None:
    with pytest.raises(plugin.PluginError) as err:
        _translate(photo, settings, engine=engine, **args)
    text = str(err.value)
    assert text.startswith("CycleGAN") and says in text and "\n" not in text, text


@pytest.mark.parametrize(("args", "says"), [
    ({"tile": MIN_TILE - 1}, f"at least {MIN_TILE}"),
    ({"direction": "up"}, "unknown direction"),
    ({"engine": "gpu"}, "unknown engine"),
    ({"model": "  "}, "no model given"),
])
def test_argument_errors(photo, settings, args, says) -> None:
    with pytest.raises(plugin.PluginError, match=says):
        _translate(photo, settings, **args)


def test_cgan_gets_no_gimp_python_variables(settings, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/gimp/python3.13")
    monkeypatch.setenv("PYTHONHOME", "/gimp")
    monkeypatch.delenv("CGAN_MODELS", raising=False)
    env = plugin._cgan_env({**settings, "user_models_dir": "/models"})
    assert "PYTHONPATH" not in env and "PYTHONHOME" not in env
    assert env["PYTHONIOENCODING"] == "utf-8"
    assert env["CGAN_MODELS"] == "/models" and env["PATH"] == os.environ["PATH"]


def test_model_list_and_direction_labels(tmp_path, settings) -> None:
    (tmp_path / "zebra-AtoB.onnx").write_bytes(b"")
    (tmp_path / "zebra-BtoA-int8.onnx").write_bytes(b"")
    models = plugin.known_models({**settings, "models_dirs": [str(tmp_path)]})
    assert models == {"golden_hour": ("photo", "golden hour"), "zebra": None}
    assert plugin.direction_label("BtoA", models["golden_hour"]) == "B→A: golden hour → photo"
    assert plugin.direction_label("AtoB", None) == "A→B"


def test_settings_file_is_optional(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CGAN_GIMP_CONFIG", str(tmp_path / "missing.json"))
    assert plugin.load_settings() == {}
    (tmp_path / "bad.json").write_text("{not json")
    assert plugin.load_settings(tmp_path / "bad.json") == {}


# -- the image: stand-ins for GIMP's image, layers and buffers --------------------------------
class FakeLayer:
    def __init__(self, name: str, pixels: np.ndarray, box: tuple[int, int, int, int],
                 plain: bool = True) -> None:
        self.name, self.pixels, self.box, self.plain = name, pixels.copy(), box, plain

    def get_name(self) -> str:
        return self.name

    def mask_intersect(self) -> tuple[bool, int, int, int, int]:
        x, y, w, h = self.box
        return (w > 0 and h > 0, x, y, w, h)


class FakeImage:
    def __init__(self, layers: list[FakeLayer]) -> None:
        self.layers, self.log = layers, []

    def undo_group_start(self) -> None:
        self.log.append("undo-start")

    def undo_group_end(self) -> None:
        self.log.append("undo-end")


class FakeGimp:
    """Buffer access as in the plug-in's GIMP part: read a rectangle, copy a layer above,
    write through the selection (here: a rectangle, fully selected)."""

    def __init__(self, image: FakeImage) -> None:
        self.image = image

    @staticmethod
    def is_plain_layer(item: Any) -> bool:
        return isinstance(item, FakeLayer) and item.plain

    @staticmethod
    def read(layer: FakeLayer, x: int, y: int, w: int, h: int) -> bytes:
        return np.ascontiguousarray(layer.pixels[y:y + h, x:x + w]).tobytes()

    def copy_above(self, image: FakeImage, layer: FakeLayer, name: str) -> FakeLayer:
        copy = FakeLayer(name, layer.pixels, layer.box)
        image.layers.insert(image.layers.index(layer), copy)
        image.log.append(f"new layer {name}")
        return copy

    def write_through_selection(self, layer: FakeLayer, x: int, y: int, w: int, h: int,
                                data: bytes) -> None:
        assert self.image.log.count("undo-start") > self.image.log.count("undo-end")
        layer.pixels[y:y + h, x:x + w] = np.frombuffer(data, np.uint8).reshape(h, w, 4)
        self.image.log.append(f"write {layer.name}")


class FakeProgress:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def text(self, message: str) -> None:
        self.calls.append(message)

    def pulse(self) -> None:
        self.calls.append("pulse")

    def fraction(self, value: float) -> None:
        self.calls.append(f"{value:.2f}")


def _run(image: FakeImage, layers: list[Any], settings: dict[str, Any], **kw: Any) -> str:
    args = {"model": "golden_hour", "direction": "AtoB", "tile": 0, "output": "new-layer",
            "engine": "in-process"}
    args.update(kw)
    return plugin.run_on_image(FakeGimp(image), image, layers, settings=settings,
                               read_png=_read_png, progress=FakeProgress(), **args)


def test_new_layer_one_undo_group(photo, settings) -> None:
    layer = FakeLayer("Background", photo, (10, 20, 64, 48))
    image = FakeImage([layer])
    assert _run(image, [layer], settings) == "in-process"
    assert image.log == ["undo-start", "new layer Background (CycleGAN A→B)",
                         "write Background (CycleGAN A→B)", "undo-end"]
    top = image.layers[0]
    np.testing.assert_array_equal(layer.pixels, photo)  # the original is untouched
    expected = load_model(MODEL).translate_array(photo[20:68, 10:74])
    np.testing.assert_array_equal(top.pixels[20:68, 10:74], expected)
    outside = np.ones(photo.shape[:2], bool)
    outside[20:68, 10:74] = False
    np.testing.assert_array_equal(top.pixels[outside], photo[outside])


def test_replace_and_several_layers(photo, settings) -> None:
    a = FakeLayer("a", photo, (0, 0, 32, 32))
    b = FakeLayer("b", photo[::-1].copy(), (8, 8, 32, 32))
    image = FakeImage([a, b])
    _run(image, [a, b], settings, output="replace", direction="BtoA",
         model=str(weights_dir() / "golden_hour-BtoA.onnx"))
    assert image.log == ["undo-start", "write a", "write b", "undo-end"]
    assert len(image.layers) == 2
    assert not np.array_equal(a.pixels, photo) and not np.array_equal(b.pixels, photo[::-1])


def test_a_failure_changes_nothing(photo, settings) -> None:
    good = FakeLayer("good", photo, (0, 0, 32, 32))
    image = FakeImage([good])
    with pytest.raises(plugin.PluginError, match="model not found"):
        _run(image, [good], settings, model="no_such_model")
    assert image.log == [] and image.layers == [good]
    np.testing.assert_array_equal(good.pixels, photo)


@pytest.mark.parametrize(("layers", "says"), [
    ([], "select a layer"),
    ([FakeLayer("group", np.zeros((8, 8, 4), np.uint8), (0, 0, 8, 8), plain=False)],
     "works on layers"),
    ([FakeLayer("elsewhere", np.zeros((8, 8, 4), np.uint8), (0, 0, 0, 0))],
     "does not touch"),
])
def test_what_cannot_be_translated(settings, layers, says) -> None:
    image = FakeImage(list(layers))
    with pytest.raises(plugin.PluginError, match=says):
        _run(image, layers, settings)
    assert image.log == []


def test_unknown_output_mode(photo, settings) -> None:
    layer = FakeLayer("x", photo, (0, 0, 16, 16))
    with pytest.raises(plugin.PluginError, match="unknown output"):
        _run(FakeImage([layer]), [layer], settings, output="elsewhere")


def test_progress_pulses_while_translating(settings) -> None:
    big = np.dstack([skdata.astronaut(), np.full((512, 512), 255, np.uint8)])
    layer = FakeLayer("big", big, (0, 0, 512, 512))
    progress, image = FakeProgress(), FakeImage([layer])
    plugin.run_on_image(FakeGimp(image), image, [layer],
                        model="golden_hour", direction="AtoB", tile=0, output="replace",
                        engine="cgan", settings=settings, read_png=_read_png,
                        progress=progress)
    assert progress.calls[0].startswith("CycleGAN A→B: big")
    assert "pulse" in progress.calls and progress.calls[-1] == "1.00"


# -- cgan gimp install / uninstall -------------------------------------------------------------
def test_install_is_idempotent_and_uninstall_cleans_up(tmp_path) -> None:
    runner = CliRunner()
    cfg = tmp_path / "GIMP" / "3.0"
    first = runner.invoke(app, ["gimp", "install", "--gimp-config-dir", str(cfg)])
    assert first.exit_code == 0, first.output
    folder = cfg / "plug-ins" / "cyclegan"
    script = folder / "cyclegan.py"
    assert script.read_bytes() == PLUGIN.read_bytes()
    assert script.stat().st_mode & stat.S_IXUSR
    assert f"wrote {script}" in first.output and "Filters > CycleGAN" in first.output
    settings = json.loads((folder / "cyclegan.json").read_text())
    assert settings["models"]["golden_hour"] == ["photo", "golden hour"]
    assert settings["package_root"] == str(PACKAGE_ROOT)
    version = subprocess.run([*settings["cgan"], "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "cyclegan-cli" in version.stdout

    again = runner.invoke(app, ["gimp", "install", "--gimp-config-dir", str(cfg)])
    assert again.exit_code == 0 and f"unchanged {script}" in again.output
    script.write_text("# an old version\n")
    script.chmod(0o644)
    third = runner.invoke(app, ["gimp", "install", "--gimp-config-dir", str(cfg)])
    assert f"updated {script}" in third.output and script.stat().st_mode & stat.S_IXUSR

    removed = runner.invoke(app, ["gimp", "uninstall", "--gimp-config-dir", str(cfg)])
    assert removed.exit_code == 0 and not folder.exists()
    assert (cfg / "plug-ins").is_dir()  # GIMP's own folder stays
    twice = runner.invoke(app, ["gimp", "uninstall", "--gimp-config-dir", str(cfg)])
    assert twice.exit_code == 0 and "not installed" in twice.output


def test_uninstall_keeps_files_it_did_not_write(tmp_path) -> None:
    gimp_install.install(tmp_path)
    folder = tmp_path / "plug-ins" / "cyclegan"
    (folder / "notes.txt").write_text("mine")
    report = gimp_install.uninstall(tmp_path)
    assert (folder / "notes.txt").is_file() and not (folder / "cyclegan.py").exists()
    assert any("kept" in line for line in report.actions)


def test_default_gimp_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(gimp_install.sys, "platform", "linux")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert gimp_install.default_gimp_config_dir() == tmp_path / "xdg" / "GIMP" / "3.0"
    flatpak = tmp_path / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / "3.0"
    flatpak.mkdir(parents=True)
    assert gimp_install.default_gimp_config_dir() == flatpak  # only Flatpak's exists
    (tmp_path / "xdg" / "GIMP" / "3.0").mkdir(parents=True)
    assert gimp_install.default_gimp_config_dir() == tmp_path / "xdg" / "GIMP" / "3.0"
    monkeypatch.setattr(gimp_install.sys, "platform", "win32")
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    assert gimp_install.default_gimp_config_dir() == tmp_path / "Roaming" / "GIMP" / "3.0"


def test_install_into_a_file_fails_clearly(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(app, ["gimp", "install", "--gimp-config-dir",
                                      str(tmp_path / "file")])
    assert result.exit_code != 0 and "is not a folder" in result.output


def test_plugin_source_imports_without_gimp() -> None:
    source = io.StringIO(PLUGIN.read_text())
    assert source.readline().startswith("#!/usr/bin/env python3")
    assert not hasattr(plugin, "Gimp")  # GIMP's modules load only in _gimp_main


def test_error_text_shows_control_characters_as_escapes() -> None:
    assert plugin.error_text(plugin.PluginError("CycleGAN: a\x1b[2J\nb [/]")) == \
        "CycleGAN: a\\x1b[2J\\nb [/]"
    assert plugin.error_text(ValueError("x\ty")) == \
        "CycleGAN: unexpected error: ValueError: x\\ty"
