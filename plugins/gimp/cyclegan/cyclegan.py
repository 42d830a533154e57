#!/usr/bin/env python3
"""CycleGAN for GIMP 3: **Filters > CycleGAN > Translate…** runs a cyclegan-cli model on the
selected layers (only the selected area changes; alpha is kept; one undo step).

The pixels go through cyclegan-cli's inference core, by one of two engines:

- ``in-process``: ``cyclegan_cli.inference`` imported into GIMP's own Python (needs numpy,
  pillow, onnx and onnxruntime built for that Python);
- ``cgan``: the ``cgan`` command of the Python environment that ran ``cgan gimp install``,
  with temporary PNG files.

``auto`` (the default) uses the first that works. Both give the same pixels.

``cgan gimp install`` copies this file into GIMP's plug-ins folder and writes ``cyclegan.json``
beside it (the ``cgan`` command, where the cyclegan_cli package is, the model folders and the
models' domain names). Everything above the GIMP part at the bottom is plain Python, so it is
tested without GIMP.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROCEDURE = "plug-in-cyclegan-translate"
CONFIG_FILE = "cyclegan.json"
ENGINES = ("auto", "in-process", "cgan")
OUTPUTS = ("new-layer", "replace")
DIRECTIONS = ("AtoB", "BtoA")
ARROWS = {"AtoB": "A→B", "BtoA": "B→A"}


class PluginError(Exception):
    """A failure the user sees as one GIMP message (the image stays untouched)."""


class EngineUnavailable(PluginError):
    """This engine cannot run here (the message says why); ``auto`` tries the next one."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def error_text(exc: BaseException) -> str:
    """The one line GIMP shows for a failure, with control characters from file or model
    names shown as escapes (as cyclegan_cli.text does for the command line)."""
    text = str(exc) if isinstance(exc, PluginError) else \
        f"CycleGAN: unexpected error: {type(exc).__name__}: {exc}"
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


# -- settings ----------------------------------------------------------------------------------
def config_path() -> Path:
    """``$CGAN_GIMP_CONFIG``, else cyclegan.json beside this file."""
    env = os.environ.get("CGAN_GIMP_CONFIG")
    return Path(env) if env else Path(__file__).resolve().with_name(CONFIG_FILE)


def load_settings(path: Path | None = None) -> dict[str, Any]:
    """The install-time settings ({} when there are none or the file is unreadable)."""
    try:
        data = json.loads((path or config_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def known_models(settings: dict[str, Any]) -> dict[str, tuple[str, str] | None]:
    """Model name -> (domain A, domain B) or None, from the settings and the model folders."""
    found: dict[str, tuple[str, str] | None] = {}
    for name, domains in (settings.get("models") or {}).items():
        ok = isinstance(domains, list) and len(domains) == 2
        found[name] = (str(domains[0]), str(domains[1])) if ok else None
    for folder in settings.get("models_dirs") or []:
        try:
            files = sorted(Path(folder).glob("*.onnx"))
        except OSError:
            continue
        suffixes = settings.get("model_suffixes") or []  # the core's naming, longest first
        for f in files:
            name = next((f.stem.removesuffix(s) for s in suffixes if f.stem.endswith(s)),
                        f.stem)
            found.setdefault(name, None)
    return found


def direction_label(direction: str, domains: tuple[str, str] | None) -> str:
    """'A→B: photo → golden hour', or 'A→B' without domain names."""
    if domains is None:
        return ARROWS[direction]
    a, b = domains if direction == "AtoB" else domains[::-1]
    return f"{ARROWS[direction]}: {a} → {b}"


# -- the two engines ---------------------------------------------------------------------------
def _model_argument(model: str) -> str:
    """A name stays a name; a path to a file becomes absolute (the engines run elsewhere)."""
    model = model.strip()
    if not model:
        raise PluginError("CycleGAN: no model given; enter a model name (see `cgan models`) or "
                          "the path of an .onnx file")
    looks_like_path = os.sep in model or "/" in model or model.lower().endswith(".onnx")
    return os.path.abspath(os.path.expanduser(model)) if looks_like_path else model


def _models_env(settings: dict[str, Any]) -> dict[str, str]:
    """CGAN_MODELS for the engines: the user models folder recorded at install time."""
    if settings.get("user_models_dir") and not os.environ.get("CGAN_MODELS"):
        return {"CGAN_MODELS": str(settings["user_models_dir"])}
    return {}


def _cgan_env(settings: dict[str, Any]) -> dict[str, str]:
    """The environment for cgan: GIMP's PYTHON* variables (PYTHONPATH, PYTHONHOME) point at
    GIMP's Python and would break another one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return {**env, **_models_env(settings), "PYTHONIOENCODING": "utf-8"}


_LOADED: dict[tuple[str, str], Any] = {}  # (model file, direction) -> Translator


def translate_in_process(rgba: bytes, width: int, height: int, model: str, direction: str,
                         tile: int, settings: dict[str, Any]) -> bytes:
    """RGBA u8 pixels translated by ``cyclegan_cli.inference`` inside this Python."""
    root = settings.get("package_root")
    if root and root not in sys.path:
        sys.path.append(str(root))  # last: GIMP's own numpy/pillow win over the install's
    try:
        import numpy as np
        import onnxruntime  # noqa: F401  (the core loads it lazily; fail here, not later)

        from cyclegan_cli.inference import load_model
        from cyclegan_cli.inference.resolve import resolve_model
    except Exception as exc:  # ImportError, or a binary built for another Python
        raise EngineUnavailable(
            f"GIMP's Python {sys.version_info.major}.{sys.version_info.minor} cannot import the "
            f"inference core ({type(exc).__name__}: {exc}). Install numpy, pillow, onnx and "
            f"onnxruntime for it, or run `cgan gimp install` from the environment where "
            f"cyclegan-cli is installed so the plug-in can call cgan") from exc
    os.environ.update(_models_env(settings))
    try:
        path, backend = resolve_model(model, direction)
        if backend != "onnx":
            raise PluginError(f"{model} has no exported ONNX model for {direction}; run "
                              f"`cgan export {model}` first")
        key = (str(path), direction)
        if key not in _LOADED:  # several layers in one run share the model
            _LOADED[key] = load_model(path, direction=direction)
        translator = _LOADED[key]
        arr = np.frombuffer(rgba, np.uint8).reshape(height, width, 4)
        out = translator.translate_array(arr, tile or None)
    except PluginError:
        raise
    except Exception as exc:  # the core's errors carry one-line messages
        raise PluginError(f"CycleGAN: {exc}") from exc
    return np.ascontiguousarray(out, dtype=np.uint8).tobytes()


def write_png(path: Path, rgba: bytes, width: int, height: int) -> None:
    """An 8-bit RGBA PNG (no filtering; colours under transparent pixels kept)."""
    stride = width * 4
    rows = b"".join(b"\x00" + rgba[y * stride:(y + 1) * stride] for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b""))


def _cgan_command(settings: dict[str, Any]) -> list[str]:
    cmd = settings.get("cgan")
    if isinstance(cmd, str):
        cmd = [cmd]
    if not cmd or not Path(cmd[0]).is_file():
        where = f" ({cmd[0]} is missing)" if cmd else ""
        raise EngineUnavailable(f"no cgan command is recorded{where}; run `cgan gimp install` "
                                f"from the environment where cyclegan-cli is installed")
    return [str(c) for c in cmd]


def _cgan_error(stderr: str, code: int) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in reversed(lines):
        for prefix in ("error:", "failed:"):
            if line.startswith(prefix):
                text = line[len(prefix):].strip()
                if prefix == "failed:" and ".png: " in text:
                    text = text.split(".png: ", 1)[1]  # drop the temporary file's name
                return f"CycleGAN: {text}"
    return f"CycleGAN: cgan translate failed (exit {code}): {lines[-1] if lines else 'no output'}"


def translate_with_cgan(rgba: bytes, width: int, height: int, model: str, direction: str,
                        tile: int, settings: dict[str, Any],
                        read_png: Callable[[Path], bytes],
                        wait: Callable[[], None] | None = None) -> bytes:
    """RGBA u8 pixels translated by ``cgan translate`` through temporary PNG files.

    ``read_png`` reads the result as RGBA u8 bytes; ``wait`` is called about 10 times a
    second while cgan runs (to pulse a progress bar)."""
    cmd = _cgan_command(settings)
    with tempfile.TemporaryDirectory(prefix="cgan-gimp-") as tmp:
        src, out_dir = Path(tmp) / "layer.png", Path(tmp) / "out"
        write_png(src, rgba, width, height)
        args = [*cmd, "translate", "--quiet", "--model", model, "--direction", direction,
                "--out", str(out_dir), "--format", "png", str(src)]
        if tile:
            args += ["--tile", str(tile)]
        try:
            proc = subprocess.Popen(args, cwd=tmp, env=_cgan_env(settings),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    encoding="utf-8", errors="replace",
                                    creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        except OSError as exc:
            raise EngineUnavailable(f"cannot run {cmd[0]}: {exc}") from exc
        stderr = _communicate(proc, wait)
        if proc.returncode != 0:
            raise PluginError(_cgan_error(stderr, proc.returncode))
        result = out_dir / "layer.png"
        if not result.is_file():
            raise PluginError(f"CycleGAN: cgan wrote no result ({stderr.strip()[-200:]})")
        out = read_png(result)
    if len(out) != width * height * 4:
        raise PluginError(f"CycleGAN: cgan's result has the wrong size ({len(out)} bytes)")
    return out


def _communicate(proc: subprocess.Popen, wait: Callable[[], None] | None) -> str:
    if wait is None:
        return proc.communicate()[1]
    while True:
        try:
            return proc.communicate(timeout=0.1)[1]
        except subprocess.TimeoutExpired:
            wait()


def translate_pixels(rgba: bytes, width: int, height: int, *, model: str, direction: str,
                     tile: int, engine: str, settings: dict[str, Any],
                     read_png: Callable[[Path], bytes],
                     wait: Callable[[], None] | None = None) -> tuple[bytes, str]:
    """(translated RGBA u8 bytes, the engine that did it). PluginError says what to do."""
    if direction not in DIRECTIONS:
        raise PluginError(f"CycleGAN: unknown direction {direction!r}; use AtoB or BtoA")
    if engine not in ENGINES:
        raise PluginError(f"CycleGAN: unknown engine {engine!r}; use {', '.join(ENGINES)}")
    minimum = settings.get("min_tile")  # the core's rule, recorded by cgan gimp install
    if tile and isinstance(minimum, int) and tile < minimum:
        raise PluginError(f"CycleGAN: the tile size must be 0 (automatic) or at least "
                          f"{minimum} pixels, not {tile}")
    model = _model_argument(model)
    reasons = []
    for name in (("in-process", "cgan") if engine == "auto" else (engine,)):
        try:
            if name == "in-process":
                out = _in_background(lambda: translate_in_process(
                    rgba, width, height, model, direction, tile, settings), wait)
            else:
                out = translate_with_cgan(rgba, width, height, model, direction, tile,
                                          settings, read_png, wait)
            return out, name
        except EngineUnavailable as exc:
            reasons.append(f"{name}: {exc}")
    raise PluginError("CycleGAN cannot run the model. " + " — ".join(reasons))


def _in_background(work: Callable[[], bytes], wait: Callable[[], None] | None) -> bytes:
    """Run ``work`` in a thread, calling ``wait`` every 0.1 s until it is done."""
    if wait is None:
        return work()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["out"] = work()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
        if thread.is_alive():
            wait()
    if "error" in box:
        raise box["error"]
    return box["out"]


# -- applying the result to the image (a GIMP-like API; see run_on_image) ----------------------
def run_on_image(gimp: Any, image: Any, layers: list[Any], *, model: str, direction: str,
                 tile: int, output: str, engine: str, settings: dict[str, Any],
                 read_png: Callable[[Path], bytes], progress: Any) -> str:
    """Translate the selected area of each layer, then change the image in one undo group.

    ``gimp`` gives the buffer access (``read``/``write`` of an RGBA u8 rectangle) so this runs
    against GIMP or a stand-in. Nothing in the image changes unless every layer translated.
    Returns the engine used.
    """
    if output not in OUTPUTS:
        raise PluginError(f"CycleGAN: unknown output {output!r}; use {' or '.join(OUTPUTS)}")
    if not layers:
        raise PluginError("CycleGAN: select a layer first")
    jobs, used = [], ""
    for i, layer in enumerate(layers):
        if not gimp.is_plain_layer(layer):
            raise PluginError("CycleGAN works on layers; select a layer (not a layer group, "
                              "mask or channel)")
        inside, x, y, w, h = layer.mask_intersect()
        if not inside or w <= 0 or h <= 0:
            continue
        progress.text(f"CycleGAN {ARROWS.get(direction, direction)}: {layer.get_name()}")
        pixels = gimp.read(layer, x, y, w, h)
        out, used = translate_pixels(pixels, w, h, model=model, direction=direction, tile=tile,
                                     engine=engine, settings=settings, read_png=read_png,
                                     wait=progress.pulse)
        jobs.append((layer, (x, y, w, h), out))
        progress.fraction((i + 1) / len(layers))
    if not jobs:
        raise PluginError("CycleGAN: the selection does not touch the selected layer(s)")
    image.undo_group_start()
    try:
        for layer, (x, y, w, h), out in jobs:
            target = layer
            if output == "new-layer":
                target = gimp.copy_above(image, layer,
                                         f"{layer.get_name()} (CycleGAN {ARROWS[direction]})")
            gimp.write_through_selection(target, x, y, w, h, out)
    finally:
        image.undo_group_end()
    return used


# -- GIMP --------------------------------------------------------------------------------------
def _gimp_main() -> None:  # pragma: no cover - runs inside GIMP (tests/test_gimp_real.py)
    import gi

    gi.require_version("Gimp", "3.0")
    gi.require_version("Gegl", "0.4")
    from gi.repository import Gegl, Gimp, Gio, GLib, GObject

    fmt = "R'G'B'A u8"

    class Pixels:
        """RGBA u8 access to GIMP drawables, for :func:`run_on_image`."""

        @staticmethod
        def is_plain_layer(item: Any) -> bool:
            return isinstance(item, Gimp.Layer) and not isinstance(item, Gimp.GroupLayer) \
                and not item.is_group()

        @staticmethod
        def read(drawable: Any, x: int, y: int, w: int, h: int) -> bytes:
            rect = Gegl.Rectangle.new(x, y, w, h)
            return bytes(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.CLAMP))

        @staticmethod
        def copy_above(image: Any, layer: Any, name: str) -> Any:
            copy = layer.copy()
            copy.set_name(name)
            image.insert_layer(copy, layer.get_parent(), image.get_item_position(layer))
            image.set_selected_layers([copy])
            return copy

        @staticmethod
        def write_through_selection(drawable: Any, x: int, y: int, w: int, h: int,
                                    data: bytes) -> None:
            shadow = drawable.get_shadow_buffer()
            shadow.set(Gegl.Rectangle.new(x, y, w, h), fmt, data)
            shadow.flush()
            drawable.merge_shadow(True)  # blends through the selection (feathering kept)
            drawable.update(x, y, w, h)

    def read_png(path: Path) -> bytes:
        img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(str(path)))
        try:
            layer = img.get_layers()[0]
            return Pixels.read(layer, 0, 0, layer.get_width(), layer.get_height())
        finally:
            img.delete()

    class Progress:
        @staticmethod
        def text(message: str) -> None:
            Gimp.progress_set_text(message)

        @staticmethod
        def pulse() -> None:
            Gimp.progress_pulse()

        @staticmethod
        def fraction(value: float) -> None:
            Gimp.progress_update(value)

    def choice(items: list[tuple[str, str, str]]) -> Any:
        c = Gimp.Choice.new()
        for i, (nick, label, helptext) in enumerate(items):
            c.add(nick, i, label, helptext)
        return c

    class CycleGAN(Gimp.PlugIn):
        def do_query_procedures(self) -> list[str]:
            return [PROCEDURE]

        def do_set_i18n(self, name: str) -> bool:
            return False

        def do_create_procedure(self, name: str) -> Any:
            settings = load_settings()
            models = known_models(settings)
            default = settings.get("default_model") or next(iter(models), "golden_hour")
            domains = models.get(default)
            listed = ", ".join(n + (f" ({d[0]} ↔ {d[1]})" if d else "")
                               for n, d in models.items())
            proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
            proc.set_image_types("RGB*")
            proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE
                                      | Gimp.ProcedureSensitivityMask.DRAWABLES)
            proc.set_menu_label("_Translate…")
            proc.add_menu_path("<Image>/Filters/CycleGAN")
            proc.set_documentation(
                "Translate the layer with a CycleGAN model",
                "Runs a cyclegan-cli model (A→B or B→A) on the selected area of the selected "
                "layers, into a new layer above or in place. Alpha is kept; one undo step.",
                name)
            proc.set_attribution("cyclegan-cli", "cyclegan-cli", "2026")
            rw = GObject.ParamFlags.READWRITE
            proc.add_string_argument(
                "model", "_Model", "A model name from the model folders (known: "
                f"{listed or 'none'}) or the path of an .onnx file", default, rw)
            proc.add_choice_argument("direction", "_Direction", "Which way to translate",
                                     choice([(d, direction_label(d, domains), "")
                                             for d in DIRECTIONS]), "AtoB", rw)
            rule = settings.get("tile_rule") or "tiles only for large images"
            proc.add_int_argument("tile-size", "_Tile size", "Translate in tiles of this many "
                                  f"pixels (0: automatic, {rule})", 0, 8192, 0, rw)
            proc.add_choice_argument("output", "_Result", "Where the result goes",
                                     choice([("new-layer", "New layer above", ""),
                                             ("replace", "Replace the layer", "")]),
                                     "new-layer", rw)
            proc.add_choice_argument("engine", "_Engine", "in-process: GIMP's Python; cgan: "
                                     "the installed cgan command; auto: the first that works",
                                     choice([(e, e, "") for e in ENGINES]), "auto", rw)
            return proc

        def run(self, procedure: Any, run_mode: Any, image: Any, drawables: Any,
                config: Any, data: Any) -> Any:
            if run_mode == Gimp.RunMode.INTERACTIVE:
                gi.require_version("GimpUi", "3.0")
                from gi.repository import GimpUi

                GimpUi.init(PROCEDURE)
                dialog = GimpUi.ProcedureDialog.new(procedure, config, "CycleGAN")
                dialog.fill(["model", "direction", "tile-size", "output"])
                ok = dialog.run()
                dialog.destroy()
                if not ok:
                    return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
            Gimp.progress_init("CycleGAN")
            try:
                run_on_image(Pixels, image, list(drawables or []),
                             model=config.get_property("model") or "",
                             direction=config.get_property("direction"),
                             tile=config.get_property("tile-size"),
                             output=config.get_property("output"),
                             engine=config.get_property("engine"),
                             settings=load_settings(), read_png=read_png, progress=Progress)
            except Exception as exc:  # a PluginError says what to do; anything else is a bug
                error = GLib.Error.new_literal(GLib.quark_from_string("cyclegan"),
                                               error_text(exc), 0)
                return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, error)
            finally:
                Gimp.progress_end()
            Gimp.displays_flush()
            return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

    Gimp.main(CycleGAN.__gtype__, sys.argv)


if __name__ == "__main__":
    _gimp_main()
