"""``cgan gimp install/uninstall``: put the GIMP 3 plug-in (plugins/gimp/cyclegan/) into
GIMP's plug-ins folder with the settings it needs, or take it out again."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cyclegan_cli.atomic import atomic_open
from cyclegan_cli.errors import CganError
from cyclegan_cli.shipped import plugins_dir

PLUGIN_NAME = "cyclegan"
PLUGIN_SOURCE = plugins_dir() / "gimp" / PLUGIN_NAME
CONFIG_FILE = "cyclegan.json"
GIMP_VERSION = "3.0"


def gimp_config_dirs() -> list[Path]:
    """GIMP 3's user folders for this platform, the usual one first (then Flatpak's)."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
        return [base / "GIMP" / GIMP_VERSION]
    if sys.platform == "darwin":
        return [home / "Library" / "Application Support" / "GIMP" / GIMP_VERSION]
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [xdg / "GIMP" / GIMP_VERSION,
            home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / GIMP_VERSION]


def default_gimp_config_dir() -> Path:
    """The first of :func:`gimp_config_dirs` that exists, else the usual one."""
    dirs = gimp_config_dirs()
    return next((d for d in dirs if d.is_dir()), dirs[0])


def cgan_command() -> list[str]:
    """How the plug-in runs this environment's cgan: the ``cgan`` script beside this Python,
    else ``python -m cyclegan_cli``."""
    exe = Path(sys.executable)
    for folder in (exe.parent, exe.parent / "Scripts"):  # Scripts\: Windows outside a venv
        for name in ("cgan", "cgan.exe"):
            if (folder / name).is_file():
                return [str(folder / name)]
    return [str(exe), "-m", "cyclegan_cli"]


def plugin_model_dirs() -> list[Path]:
    """The folders the plug-in lists models from: those ``--model NAME`` searches here and
    now (:func:`~cyclegan_cli.inference.resolve.model_dirs`, so ./weights of the folder
    install runs in where it exists), made absolute, plus the user models folder even before
    it exists (``cgan models pull`` and ``cgan export`` write there)."""
    from cyclegan_cli.inference.resolve import model_dirs
    from cyclegan_cli.userdirs import user_models_dir

    folders = [f.resolve() for f in model_dirs()]
    user = user_models_dir().resolve()
    return folders if user in folders else [*folders, user]


def plugin_settings() -> dict[str, Any]:
    """What the plug-in needs to know about this environment (written to cyclegan.json)."""
    from cyclegan_cli.inference import limits
    from cyclegan_cli.inference.naming import name_suffixes
    from cyclegan_cli.inference.resolve import how_to_get_models
    from cyclegan_cli.shipped import DEFAULT_MODEL
    from cyclegan_cli.userdirs import user_models_dir

    return {
        "version": 2,
        "cgan": cgan_command(),
        "package_root": str(Path(__file__).resolve().parents[1]),
        "python": sys.executable,
        "models_dirs": [str(f) for f in plugin_model_dirs()],
        "user_models_dir": str(user_models_dir().resolve()),
        "default_model": DEFAULT_MODEL,
        "no_models_hint": how_to_get_models(),
        # the core's rules, for the plug-in (it cannot import the package)
        "min_tile": limits.MIN_TILE,
        "tile_rule": limits.describe(),
        "model_suffixes": name_suffixes(),
    }


PLUGIN_SUFFIXES = (".py", ".xml", ".html")  # the plug-in's own files: script and help pages


def plugin_files() -> dict[str, Path]:
    """The plug-in's files, by their path inside the plug-in folder (the script, its help);
    nothing else that may lie in the source folder (caches, editor backups)."""
    return {p.relative_to(PLUGIN_SOURCE).as_posix(): p
            for p in sorted(PLUGIN_SOURCE.rglob("*"))
            if p.is_file() and p.suffix in PLUGIN_SUFFIXES and "__pycache__" not in p.parts
            and not any(part.startswith(".") for part in p.relative_to(PLUGIN_SOURCE).parts)}


def listed_models(folders: list[str]) -> list[tuple[Path, list[str]]]:
    """Each folder with the usable model names in it, as the plug-in will list them."""
    from cyclegan_cli.inference.catalog import list_models

    out = []
    for folder in map(Path, folders):
        entries = list_models([folder]) if folder.is_dir() else []
        out.append((folder, sorted({e.name for e in entries if not e.problem})))
    return out


@dataclass
class InstallReport:
    """What install or uninstall did, for the CLI to print."""

    plugin_dir: Path
    actions: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    removed: bool = False  # uninstall took the plug-in out
    folders: list[tuple[Path, list[str]]] = field(default_factory=list)  # install: listed


def _write_if_changed(path: Path, data: bytes, mode: int, report: InstallReport) -> None:
    old = path.read_bytes() if path.is_file() else None
    if old == data and os.access(path, os.X_OK) == bool(mode & 0o100):
        report.actions.append(f"unchanged {path}")
        return
    with atomic_open(path) as fh:
        fh.write(data)
    path.chmod(mode)
    report.actions.append(f"{'updated' if old is not None else 'wrote'} {path}")


def install(config_dir: Path | None = None) -> InstallReport:
    """Copy the plug-in to ``<config_dir>/plug-ins/cyclegan/`` (run bit set) with its
    settings. Idempotent: files already up to date are left alone."""
    source = PLUGIN_SOURCE / f"{PLUGIN_NAME}.py"
    if not source.is_file():
        raise CganError(f"the plug-in source is missing ({source}); this installation of "
                        "cyclegan-cli is incomplete: reinstall it (pip install --force-reinstall "
                        "cyclegan-cli)")
    root = Path(config_dir or default_gimp_config_dir()).expanduser()
    if root.exists() and not root.is_dir():
        raise CganError(f"{root} is not a folder")
    target = root / "plug-ins" / PLUGIN_NAME
    settings = plugin_settings()
    report = InstallReport(target, settings=settings,
                           folders=listed_models(settings["models_dirs"]))
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, path in plugin_files().items():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            mode = 0o755 if name == f"{PLUGIN_NAME}.py" else 0o644
            _write_if_changed(target / name, path.read_bytes(), mode, report)
        text = json.dumps(report.settings, indent=2, ensure_ascii=False) + "\n"
        _write_if_changed(target / CONFIG_FILE, text.encode(), 0o644, report)
    except OSError as exc:
        raise CganError(f"cannot install into {target}: {exc.strerror or exc}") from exc
    return report


def uninstall(config_dir: Path | None = None) -> InstallReport:
    """Remove ``<config_dir>/plug-ins/cyclegan/`` (only the plug-in's own files; the folder
    goes when it is then empty). Idempotent."""
    root = Path(config_dir or default_gimp_config_dir()).expanduser()
    target = root / "plug-ins" / PLUGIN_NAME
    report = InstallReport(target)
    if not target.is_dir():
        report.actions.append(f"not installed in {target}")
        return report
    try:
        for name in [*plugin_files(), CONFIG_FILE]:
            if (target / name).is_file():
                (target / name).unlink()
                report.actions.append(f"removed {target / name}")
                report.removed = True
        shutil.rmtree(target / "__pycache__", ignore_errors=True)
        if (target / "help").is_dir():  # its help pages, this version's or an older one's
            shutil.rmtree(target / "help")
            report.actions.append(f"removed {target / 'help'}")
        if not any(target.iterdir()):
            target.rmdir()
            report.actions.append(f"removed {target}")
        else:
            left = ", ".join(sorted(p.name for p in target.iterdir()))
            report.actions.append(f"kept {target} (it holds other files: {left})")
    except OSError as exc:
        raise CganError(f"cannot uninstall from {target}: {exc.strerror or exc}") from exc
    return report
