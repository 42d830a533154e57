#!/usr/bin/env python3
"""CycleGAN for GIMP 3: **Filters > CycleGAN > Translate…** runs a cyclegan-cli model on the
selected layers (only the selected area changes; alpha is kept; one undo step).

The dialog lists the models in the model folders (read each time it opens, so models pulled or
exported since show up), each way it translates ("golden_hour: photo → golden hour"), plus any
.onnx file. Help opens an offline page (help/en/index.html beside this file).

The pixels go through cyclegan-cli's inference core, by one of two engines:

- ``in-process``: ``cyclegan_cli.inference`` imported into GIMP's own Python (needs numpy,
  pillow, onnx and onnxruntime built for that Python);
- ``cgan``: ``cgan gimp pixels`` of the Python environment that ran ``cgan gimp install``; the
  pixels go through its stdin and stdout, so no copy of them is ever written to disk.

``auto`` (the default) uses the first that works. Both give the same pixels and report real
progress (tiles done).

``cgan gimp install`` copies this folder into GIMP's plug-ins folder and writes
``cyclegan.json`` beside it (the ``cgan`` command, where the cyclegan_cli package is, the model
folders, the core's naming and tile rules). Everything above the GIMP part at the bottom is
plain Python, so it is tested without GIMP.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROCEDURE = "plug-in-cyclegan-translate"
CONFIG_FILE = "cyclegan.json"
HELP_DOMAIN = "cyclegan-cli"  # the help pages in help/<locale>/ beside this file
ENGINES = ("auto", "in-process", "cgan")
OUTPUTS = ("new-layer", "replace")
DIRECTIONS = ("AtoB", "BtoA")
ARROWS = {"AtoB": "A→B", "BtoA": "B→A"}
OTHER = "file"  # the model choice that means: the .onnx file chosen in "model-file"
# The dialog's fields and their labels; the underlined letters (after "_") must differ from
# each other and from those of GIMP's own buttons: _Help, _Reset, _Cancel, _OK.
LABELS = {"model": "_Model", "model-file": "Model _file", "tile-size": "_Tile size",
          "output": "Res_ult", "engine": "_Engine"}
GIMP_BUTTON_KEYS = "hrco"
DIALOG_FIELDS = ("model", "model-file", "tile-size", "output")


class PluginError(Exception):
    """A failure the user sees as one GIMP message (the image stays untouched)."""


class EngineUnavailable(PluginError):
    """This engine cannot run here; ``auto`` tries the next one. ``cause`` says why in a few
    words, ``fix`` what to do."""

    def __init__(self, cause: str, fix: str) -> None:
        super().__init__(f"CycleGAN: {cause}: {fix}")
        self.cause, self.fix = cause, fix


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def error_text(exc: BaseException) -> str:
    """The one line GIMP shows for a failure, with control characters from file or model
    names shown as escapes (as cyclegan_cli.text does for the command line)."""
    text = str(exc) if isinstance(exc, PluginError) else \
        f"CycleGAN: unexpected error: {type(exc).__name__}: {exc}"
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def mnemonic(label: str) -> str:
    """The letter after "_" in a GTK label ("" when there is none)."""
    i = label.find("_")
    return label[i + 1].lower() if 0 <= i < len(label) - 1 else ""


# -- settings ----------------------------------------------------------------------------------
def config_path() -> Path:
    """``$CGAN_GIMP_CONFIG``, else cyclegan.json beside this file."""
    env = os.environ.get("CGAN_GIMP_CONFIG")
    return Path(env) if env else Path(__file__).resolve().with_name(CONFIG_FILE)


def help_dir() -> Path:
    """The offline help pages installed with the plug-in (``<locale>/gimp-help.xml``)."""
    return Path(__file__).resolve().with_name("help")


def load_settings(path: Path | None = None) -> dict[str, Any]:
    """The install-time settings ({} when there are none or the file is unreadable)."""
    try:
        data = json.loads((path or config_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# -- models ------------------------------------------------------------------------------------
def _varint(read: Callable[[int], bytes], end_ok: bool = False) -> int | None:
    """A protobuf varint (None at the end of the input, where ``end_ok``)."""
    value = shift = 0
    while True:
        b = read(1)
        if not b:
            if shift or not end_ok:
                raise ValueError("truncated")
            return None
        value |= (b[0] & 0x7F) << shift
        if b[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("bad varint")


def _fields(fh: Any, size: int) -> Any:
    """(field number, offset, length) of each length-delimited field of the protobuf message
    in ``fh`` (``size`` bytes); every other field is skipped, and so is each field's body
    (seeked over: the caller reads the ones it wants)."""
    while True:
        key = _varint(fh.read, end_ok=True)
        if key is None:
            return
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            _varint(fh.read)
        elif wire in (1, 5):
            fh.seek(8 if wire == 1 else 4, 1)
        elif wire == 2:
            length = _varint(fh.read)
            if length is None or fh.tell() + length > size:
                raise ValueError("truncated field")
            yield number, fh.tell(), length
            fh.seek(fh.tell() + length)  # the caller may have read it; skip it either way
        else:
            raise ValueError(f"unexpected wire type {wire}")
        if fh.tell() > size:
            raise ValueError("truncated message")


def onnx_metadata(path: Path) -> dict[str, str]:
    """An ONNX file's ``metadata_props`` (ModelProto field 14), read without onnx: the
    top-level fields are walked and the graph is seeked over, so a large model costs a few
    small reads. ValueError/OSError for a file that is no ONNX model (not a protobuf, or one
    without a graph)."""
    import io

    props: dict[str, str] = {}
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        fields = list(_fields(fh, size))
        if all(number != 7 for number, _, _ in fields):  # ModelProto.graph
            raise ValueError("no graph: not an ONNX model")
        for number, offset, length in fields:
            if number != 14:
                continue
            fh.seek(offset)
            entry = io.BytesIO(fh.read(length))
            kv: dict[int, str] = {}
            for n, off, ln in list(_fields(entry, length)):
                entry.seek(off)
                kv[n] = entry.read(ln).decode("utf-8", "replace")
            if 1 in kv:
                props[kv[1]] = kv.get(2, "")
    return props


class Model:
    """One model file the dialog offers: ``nick`` (its file name's stem) and ``label``."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = path
        suffixes = settings.get("model_suffixes") or []  # the core's naming, longest first
        suffix = next((s for s in suffixes if path.stem.endswith(s)), "")
        self.nick = path.stem
        self.name = path.stem[:len(path.stem) - len(suffix)] if suffix else path.stem
        try:
            meta = {k.removeprefix("cyclegan_cli."): v for k, v in onnx_metadata(path).items()}
            self.readable = True
        except (OSError, ValueError):  # the core says why when it is used
            meta, self.readable = {}, False
        named = next((d for d in DIRECTIONS if f"-{d}" in suffix), None)
        self.direction: str | None = meta.get("direction") if meta.get("direction") in \
            DIRECTIONS else named
        self.domains = (meta["domain_from"], meta["domain_to"]) \
            if meta.get("domain_from") and meta.get("domain_to") else None
        twin = suffix.rpartition("-")[2] if suffix.count("-") == 2 else ""
        self.precision = meta.get("precision") or twin

    @property
    def label(self) -> str:
        """'golden_hour: photo → golden hour' (plus ' (int8)' for a lower precision)."""
        what = (f"{self.domains[0]} → {self.domains[1]}" if self.domains
                else ARROWS.get(self.direction or "", "direction unknown"))
        extra = f" ({self.precision})" if self.precision not in ("", "fp32") else ""
        return f"{self.name}: {what}{extra}"

    def sort_key(self) -> tuple[str, int, str]:
        order = DIRECTIONS.index(self.direction) if self.direction in DIRECTIONS else 2
        return self.name.lower(), order, self.precision


def installed_models(settings: dict[str, Any]) -> list[Model]:
    """The models in the model folders ``cgan gimp install`` recorded, read now (so models
    pulled or exported since show up): one per file, the first folder winning a name; files
    that are no ONNX model at all are left out."""
    found: dict[str, Model] = {}
    for folder in settings.get("models_dirs") or []:
        try:
            files = sorted(Path(folder).glob("*.onnx"))
        except OSError:
            continue
        for f in files:
            if f.stem not in found and f.is_file():
                found[f.stem] = Model(f, settings)
    return sorted((m for m in found.values() if m.readable), key=Model.sort_key)


def default_choice(models: list[Model], settings: dict[str, Any]) -> str:
    """The model chosen when the dialog first opens: the default model's A→B file, else the
    first one, else the .onnx file choice."""
    wanted = f"{settings.get('default_model')}-AtoB"
    nicks = [m.nick for m in models]
    return wanted if wanted in nicks else (nicks[0] if nicks else OTHER)


def model_choices(models: list[Model], settings: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(nick, label, help) of each entry of the dialog's Model list: the models, the default
    model even when it is gone (GIMP hands a plug-in the default it registered at start-up,
    and a value no longer listed would fail before the plug-in could say what to do), and
    the .onnx file choice."""
    entries = [(m.nick, m.label, str(m.path)) for m in models]
    default = f"{settings.get('default_model')}-AtoB"
    if settings.get("default_model") and all(m.nick != default for m in models):
        entries.append((default, f"{default.removesuffix('-AtoB')}: not installed", ""))
    return [*entries, (OTHER, "Another model: the .onnx file below", "")]


def no_models_text(settings: dict[str, Any]) -> str:
    """What to do when no model is installed (one line; how to get one is the core's text,
    recorded by ``cgan gimp install``)."""
    how = settings.get("no_models_hint") or "get one with `cgan models pull` (see `cgan models`)"
    return (f"CycleGAN: no models installed yet. In a terminal, {how}; or choose an .onnx "
            "file as Model file")


def pick_model(choice: str, model_file: str | None, settings: dict[str, Any],
               models: list[Model] | None = None) -> Model:
    """The model the user chose: a listed one, or (``choice`` :data:`OTHER`) the file."""
    models = installed_models(settings) if models is None else models
    if choice == OTHER or not choice:
        if not model_file:
            if not models:
                raise PluginError(no_models_text(settings))
            raise PluginError("CycleGAN: choose the model's .onnx file (Model file), or a model "
                              "from the Model list")
        path = Path(os.path.abspath(os.path.expanduser(model_file)))
        if not path.is_file():
            raise PluginError(f"CycleGAN: model file not found: {path}")
        return Model(path, settings)
    for m in models:
        if m.nick == choice:
            return m
    if not models:
        raise PluginError(no_models_text(settings))
    close = difflib.get_close_matches(choice, [m.nick for m in models], n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise PluginError(f"CycleGAN: model {choice} is not in the model folders{hint} (listed: "
                      f"{', '.join(m.nick for m in models[:8])})")


# -- the two engines ---------------------------------------------------------------------------
Report = Callable[[float | None], None]  # fraction of this layer done, None: unknown


def _watch(alive: Callable[[], bool], state: dict[str, Any], report: Report | None) -> None:
    """Call ``report`` every 0.1 s (in this, GIMP's, thread) while ``alive()``."""
    while alive():
        time.sleep(0.1)
        if report is not None and alive():
            report(state.get("fraction"))


def _short(exc: BaseException) -> str:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return f"lacks {exc.name.split('.')[0]}"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:120]}" if text else type(exc).__name__


def translate_in_process(rgba: bytes, width: int, height: int, model: Model, tile: int,
                         settings: dict[str, Any], report: Report | None = None) -> bytes:
    """RGBA u8 pixels translated by ``cyclegan_cli.inference`` inside this Python."""
    root = settings.get("package_root")
    if root and root not in sys.path:
        sys.path.append(str(root))  # last: GIMP's own numpy/pillow win over the install's
    try:
        import onnxruntime  # noqa: F401  (the core loads it lazily; fail here, not later)

        from cyclegan_cli.inference.pixels import translate_rgba
    except Exception as exc:  # ImportError, or a binary built for another Python
        raise EngineUnavailable(
            f"GIMP's Python {sys.version_info.major}.{sys.version_info.minor} cannot run "
            f"models ({_short(exc)})",
            "install numpy, pillow, onnx and onnxruntime for it, or run `cgan gimp install` "
            "from the environment where cyclegan-cli is installed so that the plug-in can "
            "use cgan") from exc
    state: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        state["fraction"] = done / max(total, 1)

    def work() -> bytes:
        return translate_rgba(rgba, width, height, model.path, model.direction,
                              tile or None, progress)

    try:
        return _in_background(work, state, report)
    except PluginError:
        raise
    except Exception as exc:  # the core's errors carry one-line messages
        raise PluginError(f"CycleGAN: {exc}") from exc


def _cgan_command(settings: dict[str, Any]) -> list[str]:
    cmd = settings.get("cgan")
    if isinstance(cmd, str):
        cmd = [cmd]
    fix = "run `cgan gimp install` again from the environment where cyclegan-cli is installed"
    if not cmd:
        raise EngineUnavailable("no cgan command is recorded", fix)
    if not Path(cmd[0]).is_file():
        raise EngineUnavailable(f"the cgan command is missing ({cmd[0]})", fix)
    return [str(c) for c in cmd]


def _cgan_env(settings: dict[str, Any]) -> dict[str, str]:
    """The environment for cgan: GIMP's PYTHON* variables (PYTHONPATH, PYTHONHOME) point at
    GIMP's Python and would break another one; FORCE_COLOR would colour its messages."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTHON") and k != "FORCE_COLOR"}
    if settings.get("user_models_dir") and not os.environ.get("CGAN_MODELS"):
        env["CGAN_MODELS"] = str(settings["user_models_dir"])
    # plain text: its "error: ..." lines are read back (no colour codes, whatever GIMP has)
    return {**env, "PYTHONIOENCODING": "utf-8", "NO_COLOR": "1", "TERM": "dumb"}


def _cgan_error(lines: list[str], code: int) -> str:
    for line in reversed(lines):
        if line.startswith("error:"):
            return f"CycleGAN: {line[len('error:'):].strip()}"
    return f"CycleGAN: cgan failed (exit {code}): {lines[-1] if lines else 'no output'}"


_PROGRESS = re.compile(r"^progress: (\d+)/(\d+)$")


def translate_with_cgan(rgba: bytes, width: int, height: int, model: Model, tile: int,
                        settings: dict[str, Any], report: Report | None = None) -> bytes:
    """RGBA u8 pixels translated by ``cgan gimp pixels``: the pixels go through its stdin
    and come back on its stdout (no file holds them); its progress lines come on stderr.
    Its stdin stays open until it has finished: should this process be killed (GIMP's
    Cancel), the pipe closes and cgan stops at once."""
    cmd = _cgan_command(settings)
    args = [*cmd, "gimp", "pixels", "--model", str(model.path), "--width", str(width),
            "--height", str(height), "--tile", str(tile or 0)]
    if model.direction:
        args += ["--direction", model.direction]
    try:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=_cgan_env(settings),
                                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except OSError as exc:
        raise EngineUnavailable(f"cannot start {cmd[0]} ({exc.strerror or exc})",
                                "run `cgan gimp install` again from the environment where "
                                "cyclegan-cli is installed") from exc
    state: dict[str, Any] = {}
    lines: list[str] = []
    box: dict[str, bytes] = {}

    def feed() -> None:
        try:
            proc.stdin.write(rgba)
            proc.stdin.flush()
        except OSError:  # cgan stopped early; its stderr says why
            pass

    def drain() -> None:
        box["out"] = proc.stdout.read()

    def errors() -> None:
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").strip()
            m = _PROGRESS.match(line)
            if m:
                state["fraction"] = int(m.group(1)) / max(int(m.group(2)), 1)
            elif line:
                lines.append(line)

    threads = [threading.Thread(target=f, daemon=True) for f in (feed, drain, errors)]
    for t in threads:
        t.start()
    try:
        _watch(lambda: proc.poll() is None, state, report)
    finally:
        if proc.poll() is None:
            proc.kill()
        for t in threads:
            t.join()
        with contextlib.suppress(OSError):
            proc.stdin.close()
    if proc.returncode != 0:
        raise PluginError(_cgan_error(lines, proc.returncode))
    out = box.get("out", b"")
    if len(out) != width * height * 4:
        raise PluginError(f"CycleGAN: cgan's result has the wrong size ({len(out)} bytes)")
    return out


def translate_pixels(rgba: bytes, width: int, height: int, *, model: Model, tile: int,
                     engine: str, settings: dict[str, Any],
                     report: Report | None = None) -> tuple[bytes, str]:
    """(translated RGBA u8 bytes, the engine that did it). PluginError says what to do."""
    if engine not in ENGINES:
        raise PluginError(f"CycleGAN: unknown engine {engine!r}; use {', '.join(ENGINES)}")
    minimum = settings.get("min_tile")  # the core's rule, recorded by cgan gimp install
    if tile and isinstance(minimum, int) and tile < minimum:
        raise PluginError(f"CycleGAN: the tile size must be 0 (automatic) or at least "
                          f"{minimum} pixels, not {tile}")
    failed: dict[str, EngineUnavailable] = {}
    for name in (("in-process", "cgan") if engine == "auto" else (engine,)):
        try:
            run = translate_in_process if name == "in-process" else translate_with_cgan
            return run(rgba, width, height, model, tile, settings, report), name
        except EngineUnavailable as exc:
            failed[name] = exc
    if engine != "auto":
        raise failed[engine]
    # Both failed: cgan's reason comes first (GIMP's own Python usually has no onnxruntime).
    cgan, inproc = failed["cgan"], failed["in-process"]
    raise PluginError(f"CycleGAN cannot run models: {cgan.cause}; {cgan.fix} ({inproc.cause})")


def _in_background(work: Callable[[], bytes], state: dict[str, Any],
                   report: Report | None) -> bytes:
    """Run ``work`` in a thread, reporting ``state`` every 0.1 s until it is done."""
    if report is None:
        return work()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["out"] = work()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    _watch(thread.is_alive, state, report)
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["out"]


# -- applying the result to the image (a GIMP-like API; see run_on_image) ----------------------
def run_on_image(gimp: Any, image: Any, layers: list[Any], *, model: Model, tile: int,
                 output: str, engine: str, settings: dict[str, Any], progress: Any) -> str:
    """Translate the selected area of each layer, then change the image in one undo group.

    ``gimp`` gives the buffer access (``read``/``write`` of an RGBA u8 rectangle) so this runs
    against GIMP or a stand-in; ``progress`` has ``text``, ``pulse`` and ``fraction``.
    Nothing in the image changes unless every layer translated. Returns the engine used.
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
        progress.text(f"CycleGAN {model.label}: {layer.get_name()}")

        def report(fraction: float | None, i: int = i) -> None:
            if fraction is None:
                progress.pulse()
            else:
                progress.fraction((i + fraction) / len(layers))

        pixels = gimp.read(layer, x, y, w, h)
        out, used = translate_pixels(pixels, w, h, model=model, tile=tile, engine=engine,
                                     settings=settings, report=report)
        jobs.append((layer, (x, y, w, h), out))
        progress.fraction((i + 1) / len(layers))
    if not jobs:
        raise PluginError("CycleGAN: the selection does not touch the selected layer(s)")
    image.undo_group_start()
    try:
        for layer, (x, y, w, h), out in jobs:
            target = layer
            if output == "new-layer":
                target = gimp.copy_above(image, layer, f"{layer.get_name()} ({model.label})")
            gimp.write_through_selection(target, x, y, w, h, out)
    finally:
        image.undo_group_end()
    return used


# -- GIMP --------------------------------------------------------------------------------------
def _gimp_main() -> None:  # pragma: no cover - runs inside GIMP (tests/test_gimp_real.py,
    import gi  # tests/test_gimp_ui.py)

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
            if help_dir().is_dir():  # the offline help page behind the dialog's Help button
                self.set_help_domain(HELP_DOMAIN, Gio.File.new_for_path(str(help_dir())))
            return [PROCEDURE]

        def do_set_i18n(self, name: str) -> bool:
            return False

        def do_create_procedure(self, name: str) -> Any:
            # Run at GIMP's start and again each time the procedure runs: the model list is
            # read from the model folders then, so new models show up without a restart.
            settings = load_settings()
            models = installed_models(settings)
            self.settings, self.models = settings, models  # run() uses them: read once
            proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
            proc.set_image_types("RGB*")
            proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE
                                      | Gimp.ProcedureSensitivityMask.DRAWABLES)
            proc.set_menu_label("_Translate…")
            proc.add_menu_path("<Image>/Filters/CycleGAN")
            proc.set_documentation(
                "Translate the layer with a CycleGAN model",
                "Runs a cyclegan-cli model on the selected area of the selected layers, into a "
                "new layer above or in place. Alpha is kept; one undo step. The model is one "
                "of the installed ones (its file name without .onnx, e.g. golden_hour-AtoB) or "
                f"'{OTHER}' with an .onnx file in model-file.", PROCEDURE)
            proc.set_attribution("cyclegan-cli", "cyclegan-cli", "2026")
            rw = GObject.ParamFlags.READWRITE
            where = ", ".join(settings.get("models_dirs") or []) or "none recorded"
            proc.add_choice_argument(
                "model", LABELS["model"], f"The model and the way it translates (models in: "
                f"{where})", choice(model_choices(models, settings)),
                default_choice(models, settings), rw)
            proc.add_file_argument("model-file", LABELS["model-file"], "An .onnx model file "
                                   f"(used when the model is '{OTHER}')",
                                   Gimp.FileChooserAction.OPEN, True, None, rw)
            rule = settings.get("tile_rule") or "tiles only for large images"
            proc.add_int_argument("tile-size", LABELS["tile-size"], "Translate in tiles of "
                                  f"this many pixels (0: automatic, {rule})", 0, 8192, 0, rw)
            proc.add_choice_argument("output", LABELS["output"], "Where the result goes",
                                     choice([("new-layer", "New layer above", ""),
                                             ("replace", "Replace the layer", "")]),
                                     "new-layer", rw)
            proc.add_choice_argument("engine", LABELS["engine"], "in-process: GIMP's Python; cgan: "
                                     "the installed cgan command; auto: the first that works",
                                     choice([(e, e, "") for e in ENGINES]), "auto", rw)
            return proc

        def dialog(self, procedure: Any, config: Any, models: list[Model],
                   settings: dict[str, Any]) -> bool:
            gi.require_version("GimpUi", "3.0")
            from gi.repository import GimpUi

            GimpUi.init(PROCEDURE)
            dialog = GimpUi.ProcedureDialog.new(procedure, config, "CycleGAN")
            fields = list(DIALOG_FIELDS)
            if not models:  # say at once what to do, not after pressing OK
                text = no_models_text(settings).removeprefix("CycleGAN: ")
                hint = dialog.get_label("no-models", text[:1].upper() + text[1:], False, False)
                label = hint.get_label() if hasattr(hint, "get_label") and \
                    not hasattr(hint, "set_line_wrap") else hint
                with contextlib.suppress(Exception):  # wrapped, not one wide line
                    label.set_line_wrap(True)
                    label.set_max_width_chars(60)
                    label.set_xalign(0.0)
                fields.insert(0, "no-models")
            dialog.fill(fields)
            chooser = dialog.get_widget("model-file", GObject.TYPE_NONE)

            def follow(*_: Any) -> None:  # the file only matters for "another model"
                chooser.set_sensitive(config.get_property("model") == OTHER)

            config.connect("notify::model", follow)
            follow()
            ok = dialog.run()
            dialog.destroy()
            return bool(ok)

        def run(self, procedure: Any, run_mode: Any, image: Any, drawables: Any,
                config: Any, data: Any) -> Any:
            settings = getattr(self, "settings", None) or load_settings()
            models = getattr(self, "models", None)
            if models is None:
                models = installed_models(settings)
            if run_mode == Gimp.RunMode.INTERACTIVE and \
                    not self.dialog(procedure, config, models, settings):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
            Gimp.progress_init("CycleGAN")
            try:
                chosen = config.get_property("model-file")
                model = pick_model(config.get_property("model"),
                                   chosen.get_path() if chosen is not None else None,
                                   settings, models)
                run_on_image(Pixels, image, list(drawables or []), model=model,
                             tile=config.get_property("tile-size"),
                             output=config.get_property("output"),
                             engine=config.get_property("engine"),
                             settings=settings, progress=Progress)
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
