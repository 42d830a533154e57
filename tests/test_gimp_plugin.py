"""The GIMP plug-in's logic under this Python, with stand-ins for GIMP's objects, and
`cgan gimp install/uninstall`. (tests/test_gimp_real.py runs it in a real GIMP 3.)"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
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


@pytest.fixture(scope="module")
def settings() -> dict[str, Any]:
    return gimp_install.plugin_settings()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rgb = skdata.chelsea()[40:136, 60:188]
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    return np.dstack([rgb, alpha])


def _model(settings: dict[str, Any], path: Path = MODEL) -> Any:
    return plugin.Model(path, settings)


def _translate(photo: np.ndarray, settings: dict[str, Any], model: Path = MODEL,
               **kw: Any) -> tuple[bytes, str]:
    args = {"tile": 0, "engine": "auto"}
    args.update(kw)
    h, w = photo.shape[:2]
    return plugin.translate_pixels(photo.tobytes(), w, h, settings=settings,
                                   model=_model(settings, model), **args)


def relabelled(src: Path, dst: Path, **props: str) -> Path:
    """A copy of model ``src`` whose metadata says other things (domains, direction)."""
    model = onnx.load(str(src))
    for entry in model.metadata_props:
        key = entry.key.removeprefix("cyclegan_cli.")
        if key in props:
            entry.value = props[key]
    onnx.save(model, str(dst))
    return dst


# -- models: the list, the labels, the choice --------------------------------------------------
def test_onnx_metadata_is_read_without_onnx(tmp_path) -> None:
    for path in sorted(weights_dir().glob("*.onnx")):
        expected = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert plugin.onnx_metadata(path) == expected and expected
    (tmp_path / "notes.onnx").write_text("# not a model\n")
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "key-only.onnx").write_bytes(b"\x08")  # a field's key, then nothing
    for junk in ("notes.onnx", "empty.onnx", "key-only.onnx"):
        with pytest.raises(ValueError):
            plugin.onnx_metadata(tmp_path / junk)
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(MODEL.read_bytes()[:5000])
    with pytest.raises(ValueError):
        plugin.onnx_metadata(truncated)


def test_model_list_labels_follow_each_model(tmp_path, settings) -> None:
    """One entry per model file and direction, labelled with that model's own domains; a
    model added after install (pulled, exported) is listed the next time the list is read."""
    user = tmp_path / "user"
    user.mkdir()
    listing = {**settings, "models_dirs": [str(weights_dir()), str(user)]}
    before = [(m.nick, m.label) for m in plugin.installed_models(listing)]
    assert before == [("golden_hour-AtoB", "golden_hour: photo → golden hour"),
                      ("golden_hour-BtoA", "golden_hour: golden hour → photo")]
    relabelled(MODEL, user / "seasons-BtoA.onnx", direction="BtoA", domain_from="summer",
               domain_to="winter")
    relabelled(MODEL, user / "seasons-AtoB-int8.onnx", domain_from="winter",
               domain_to="summer", precision="int8")
    (user / "golden_hour-AtoB.onnx").write_bytes(MODEL.read_bytes())  # shadowed by the first
    (user / "notes.onnx").write_text("# not a model\n")  # unreadable: not offered
    (user / "empty.onnx").write_bytes(b"")  # nor is an empty file
    models = plugin.installed_models(listing)
    assert [(m.nick, m.label, m.direction) for m in models] == [
        ("golden_hour-AtoB", "golden_hour: photo → golden hour", "AtoB"),
        ("golden_hour-BtoA", "golden_hour: golden hour → photo", "BtoA"),
        ("seasons-AtoB-int8", "seasons: winter → summer (int8)", "AtoB"),
        ("seasons-BtoA", "seasons: summer → winter", "BtoA")]
    assert models[0].path == MODEL  # the first folder wins a name, as --model NAME does
    assert plugin.default_choice(models, listing) == "golden_hour-AtoB"
    assert plugin.default_choice(models[2:], listing) == "seasons-AtoB-int8"
    assert plugin.default_choice([], listing) == plugin.OTHER
    entries = plugin.model_choices(models, listing)
    assert [e[:2] for e in entries[-2:]] == [("seasons-BtoA", "seasons: summer → winter"),
                                             ("file", "Another model: the .onnx file below")]
    assert [e[:2] for e in plugin.model_choices([], listing)] == [
        ("golden_hour-AtoB", "golden_hour: not installed"),  # GIMP may still hand it over
        ("file", "Another model: the .onnx file below")]


def test_pick_model_and_what_to_do_without_models(tmp_path, settings) -> None:
    models = plugin.installed_models(settings)
    assert plugin.pick_model("golden_hour-BtoA", None, settings, models).direction == "BtoA"
    chosen = plugin.pick_model(plugin.OTHER, str(MODEL), settings, models)
    assert chosen.path == MODEL and chosen.label == "golden_hour: photo → golden hour"
    with pytest.raises(plugin.PluginError, match="did you mean golden_hour-AtoB"):
        plugin.pick_model("golden_houre-AtoB", None, settings, models)
    with pytest.raises(plugin.PluginError, match=r"choose the model's \.onnx file"):
        plugin.pick_model(plugin.OTHER, None, settings, models)
    with pytest.raises(plugin.PluginError, match="model file not found"):
        plugin.pick_model(plugin.OTHER, str(tmp_path / "gone.onnx"), settings, models)
    empty = {**settings, "models_dirs": [str(tmp_path)]}
    for choice in (plugin.OTHER, "golden_hour-AtoB"):
        with pytest.raises(plugin.PluginError) as err:
            plugin.pick_model(choice, None, empty)
        text = str(err.value)
        assert text.startswith("CycleGAN: no models installed yet. In a terminal, get one with "
                               "`cgan models pull horse2zebra` or `cgan export RUN` (both write "
                               f"to {settings['user_models_dir']})"), text
        assert "\n" not in text


def test_dialog_mnemonics_do_not_clash() -> None:
    """Each field's underlined letter is its own, and none is one of GIMP's buttons' (_Help,
    _Reset, _Cancel, _OK): a clash makes GIMP warn and Alt+letter only move the focus."""
    keys = [plugin.mnemonic(label) for label in plugin.LABELS.values()]
    assert all(keys) and len(set(keys)) == len(keys)
    assert not set(keys) & set(plugin.GIMP_BUTTON_KEYS)
    assert set(plugin.DIALOG_FIELDS) <= set(plugin.LABELS)


# -- pixels ------------------------------------------------------------------------------------
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
    assert _translate(photo, settings, engine="cgan", tile=64)[0] == out


def test_auto_falls_back_to_cgan(photo, settings, monkeypatch) -> None:
    def unavailable(*args: Any) -> bytes:
        raise plugin.EngineUnavailable("GIMP's Python 3.13 cannot run models (lacks "
                                       "onnxruntime)", "install onnxruntime for it")

    monkeypatch.setattr(plugin, "translate_in_process", unavailable)
    out, used = _translate(photo, settings)
    assert used == "cgan"
    assert out == load_model(MODEL).translate_array(photo).tobytes()


def test_cgan_missing_is_one_line_cause_first(photo, settings, monkeypatch) -> None:
    monkeypatch.setattr(plugin.sys, "path", [p for p in plugin.sys.path
                                             if "site-packages" not in p])
    monkeypatch.setitem(plugin.sys.modules, "onnxruntime", None)  # GIMP as shipped
    with pytest.raises(plugin.PluginError) as err:
        _translate(photo, {**settings, "cgan": ["/nonexistent/bin/cgan"]})
    text = str(err.value)
    assert text.startswith("CycleGAN cannot run models: the cgan command is missing "
                           "(/nonexistent/bin/cgan); run `cgan gimp install` again"), text
    assert text.endswith("(GIMP's Python "
                         f"{sys.version_info.major}.{sys.version_info.minor} cannot run "
                         "models (lacks onnxruntime))")
    assert "\n" not in text and len(text) < 260
    with pytest.raises(plugin.PluginError) as err:
        _translate(photo, settings, engine="in-process")
    assert "lacks onnxruntime" in str(err.value) and "cgan gimp install" in str(err.value)


@pytest.mark.parametrize("engine", ["in-process", "cgan"])
@pytest.mark.parametrize(("model", "says"), [
    (weights_dir() / "README.md", "not a usable ONNX model"),
])
def test_engine_errors_are_one_line(photo, settings, engine, model, says) -> None:
    with pytest.raises(plugin.PluginError) as err:
        _translate(photo, settings, model=model, engine=engine)
    text = str(err.value)
    assert text.startswith("CycleGAN") and says in text and "\n" not in text, text


@pytest.mark.parametrize(("args", "says"), [
    ({"tile": MIN_TILE - 1}, f"at least {MIN_TILE}"),
    ({"engine": "gpu"}, "unknown engine"),
])
def test_argument_errors(photo, settings, args, says) -> None:
    with pytest.raises(plugin.PluginError, match=says):
        _translate(photo, settings, **args)


@pytest.mark.parametrize("engine", ["in-process", "cgan"])
def test_real_progress_tiles_done(settings, engine) -> None:
    """A tiled layer reports the fraction of tiles done, rising to 1, in both engines."""
    big = np.dstack([skdata.astronaut()[:256, :256], np.full((256, 256), 255, np.uint8)])
    seen: list[float | None] = []
    plugin.translate_pixels(big.tobytes(), 256, 256, model=_model(settings), tile=64,
                            engine=engine, settings=settings, report=seen.append)
    fractions = [f for f in seen if f is not None]
    assert len(set(fractions)) >= 3, seen  # several steps seen, not a pulse
    assert fractions == sorted(fractions) and fractions[0] > 0 and fractions[-1] <= 1


def test_cgan_gets_no_gimp_python_variables(settings, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/gimp/python3.13")
    monkeypatch.setenv("PYTHONHOME", "/gimp")
    monkeypatch.delenv("CGAN_MODELS", raising=False)
    env = plugin._cgan_env({**settings, "user_models_dir": "/models"})
    assert "PYTHONPATH" not in env and "PYTHONHOME" not in env
    assert env["PYTHONIOENCODING"] == "utf-8"
    assert env["CGAN_MODELS"] == "/models" and env["PATH"] == os.environ["PATH"]


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


def _run(image: FakeImage, layers: list[Any], settings: dict[str, Any], model: Path = MODEL,
         progress: FakeProgress | None = None, **kw: Any) -> str:
    args = {"tile": 0, "output": "new-layer", "engine": "in-process"}
    args.update(kw)
    return plugin.run_on_image(FakeGimp(image), image, layers, settings=settings,
                               model=_model(settings, model),
                               progress=progress or FakeProgress(), **args)


def test_new_layer_named_after_the_model_one_undo_group(photo, settings) -> None:
    layer = FakeLayer("Background", photo, (10, 20, 64, 48))
    image = FakeImage([layer])
    assert _run(image, [layer], settings) == "in-process"
    name = "Background (golden_hour: photo → golden hour)"
    assert image.log == ["undo-start", f"new layer {name}", f"write {name}", "undo-end"]
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
    _run(image, [a, b], settings, output="replace",
         model=weights_dir() / "golden_hour-BtoA.onnx")
    assert image.log == ["undo-start", "write a", "write b", "undo-end"]
    assert len(image.layers) == 2
    assert not np.array_equal(a.pixels, photo) and not np.array_equal(b.pixels, photo[::-1])


def test_a_failure_changes_nothing(photo, settings) -> None:
    good = FakeLayer("good", photo, (0, 0, 32, 32))
    image = FakeImage([good])
    with pytest.raises(plugin.PluginError, match="not a usable ONNX model"):
        _run(image, [good], settings, model=weights_dir() / "README.md")
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


def test_progress_over_several_layers(settings) -> None:
    """Two tiled layers: the bar rises through each layer's tiles to 1, never back."""
    big = np.dstack([skdata.astronaut()[:192, :192], np.full((192, 192), 255, np.uint8)])
    a, b = FakeLayer("a", big, (0, 0, 192, 192)), FakeLayer("b", big, (0, 0, 192, 192))
    progress, image = FakeProgress(), FakeImage([a, b])
    _run(image, [a, b], settings, output="replace", tile=64, progress=progress)
    assert progress.calls[0] == "CycleGAN golden_hour: photo → golden hour: a"
    values = [float(c) for c in progress.calls if c[0].isdigit()]
    assert values == sorted(values) and values[-1] == 1.0
    assert any(0 < v < 0.5 for v in values) and any(0.5 < v < 1 for v in values)


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
    installed = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                       if p.is_file())
    assert installed == ["cyclegan.json", "cyclegan.py", "help/en/gimp-help.xml",
                         "help/en/index.html"]  # nothing else from the source folder
    settings = json.loads((folder / "cyclegan.json").read_text())
    assert str(weights_dir().resolve()) in settings["models_dirs"]
    assert settings["package_root"] == str(PACKAGE_ROOT)
    help_index = folder / "help" / "en" / "gimp-help.xml"  # the dialog's Help: offline
    assert f'id="{plugin.PROCEDURE}" ref="index.html"' in help_index.read_text()
    assert "Getting models" in (folder / "help" / "en" / "index.html").read_text()
    version = subprocess.run([*settings["cgan"], "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "cyclegan-cli" in version.stdout

    again = runner.invoke(app, ["gimp", "install", "--gimp-config-dir", str(cfg)])
    assert again.exit_code == 0 and f"unchanged {script}" in again.output
    script.write_text("# an old version\n")
    script.chmod(0o644)
    third = runner.invoke(app, ["gimp", "install", "--gimp-config-dir", str(cfg)])
    assert f"updated {script}" in third.output and script.stat().st_mode & stat.S_IXUSR

    (folder / "help" / "en" / "old-page.html").write_text("an older version's page")
    removed = runner.invoke(app, ["gimp", "uninstall", "--gimp-config-dir", str(cfg)])
    assert removed.exit_code == 0 and not folder.exists()
    assert "Restart GIMP" in removed.output  # else its menu entry fails: "Plug-in crashed"
    assert (cfg / "plug-ins").is_dir()  # GIMP's own folder stays
    twice = runner.invoke(app, ["gimp", "uninstall", "--gimp-config-dir", str(cfg)])
    assert twice.exit_code == 0 and "not installed" in twice.output
    assert "Restart GIMP" not in twice.output


def test_install_says_which_folders_the_plugin_lists(tmp_path, monkeypatch) -> None:
    """The plug-in lists the folders --model NAME searches (./weights where install runs,
    the shipped models, the user models folder, even before it exists): models exported or
    pulled later show up without installing again."""
    project = tmp_path / "project"
    (project / "weights").mkdir(parents=True)
    relabelled(MODEL, project / "weights" / "mine-AtoB.onnx", domain_from="day",
               domain_to="night")
    user = tmp_path / "models"
    monkeypatch.setenv("CGAN_MODELS", str(user))
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["gimp", "install", "--gimp-config-dir",
                                      str(tmp_path / "cfg")])
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "cfg" / "plug-ins" / "cyclegan" / "cyclegan.json")
                          .read_text())
    assert settings["models_dirs"] == [str(project / "weights"), str(weights_dir().resolve()),
                                       str(user)]
    assert settings["user_models_dir"] == str(user)
    assert f"  {project / 'weights'}: mine" in result.output
    assert f"  {weights_dir().resolve()}: golden_hour" in result.output
    assert f"  {user}: no models yet" in result.output
    user.mkdir()
    relabelled(MODEL, user / "later-BtoA.onnx", direction="BtoA")
    nicks = [m.nick for m in plugin.installed_models(settings)]
    assert nicks == ["golden_hour-AtoB", "golden_hour-BtoA", "later-BtoA", "mine-AtoB"]


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


# -- cgan gimp pixels: the cgan engine's pipe ----------------------------------------------------
def test_cgan_gimp_pixels_pipes_pixels_and_progress(photo, settings) -> None:
    h, w = photo.shape[:2]
    cmd = [*settings["cgan"], "gimp", "pixels", "--model", str(MODEL), "--width", str(w),
           "--height", str(h), "--tile", "64"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdin.write(photo.tobytes())
    proc.stdin.flush()  # and kept open, as the plug-in does, until the result is in
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdin.close()
    assert proc.wait() == 0, err
    assert out == load_model(MODEL).translate_array(photo, 64).tobytes()
    steps = err.decode().split()
    assert steps[0] == "progress:" and steps[-1].split("/")[0] == steps[-1].split("/")[1]
    short = subprocess.run(cmd, input=photo.tobytes()[:100], capture_output=True, text=False)
    lines = short.stderr.decode().strip().splitlines()
    assert short.returncode == 1 and len(lines) == 1 and "expected" in lines[0], lines
    closed = subprocess.run(cmd, input=photo.tobytes(), capture_output=True)  # then closed
    assert closed.returncode == 130 and closed.stdout == b""  # the caller is gone: stop


def _pixels_processes(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and "pixels" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").is_file(), reason="needs Linux's /proc")
def test_cancel_stops_cgan_and_leaves_no_pixels_on_disk(tmp_path, settings) -> None:
    """GIMP's Cancel kills the plug-in (SIGKILL: no clean-up code runs). The cgan engine has
    written nothing to disk, and its cgan process stops at the next tile instead of
    translating on for nobody."""
    model = tmp_path / "cancel-AtoB.onnx"
    model.write_bytes(MODEL.read_bytes())  # a path that names this test's processes
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    script = f"""
import importlib.util, numpy as np, sys
spec = importlib.util.spec_from_file_location("p", {str(PLUGIN)!r})
p = importlib.util.module_from_spec(spec); spec.loader.exec_module(p)
s = p.load_settings()
big = np.random.default_rng(0).integers(0, 255, (1024, 1024, 4), dtype=np.uint8)
def report(f):
    if f is not None:
        print("running", flush=True)
p.translate_with_cgan(big.tobytes(), 1024, 1024, p.Model(__import__("pathlib").Path(
    {str(model)!r}), s), 64, s, report)
"""
    config = tmp_path / "cyclegan.json"
    config.write_text(json.dumps(settings))
    env = {**os.environ, "TMPDIR": str(scratch), "CGAN_GIMP_CONFIG": str(config),
           "OMP_NUM_THREADS": "1"}
    gimp = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env,
                            text=True)
    assert gimp.stdout.readline().strip() == "running"  # tiles are being translated
    assert _pixels_processes(str(model))
    gimp.kill()  # what Cancel does to the plug-in
    gimp.wait()
    for _ in range(100):
        if not _pixels_processes(str(model)):
            break
        time.sleep(0.1)
    assert not _pixels_processes(str(model)), "cgan went on after the plug-in was killed"
    left = [f for f in scratch.rglob("*") if f.is_file() and f.stat().st_size > 1000]
    assert left == []  # no copy of the pixels (4 MB) in the temporary folder
