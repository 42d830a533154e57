"""The platform's per-user folders for cyclegan-cli (standard library only, so the inference
core imports with numpy, pillow, onnx and ONNX Runtime alone, as GIMP's Python has them):

* models: ``$CGAN_MODELS``, else ``<data>/models`` (:func:`user_models_dir`);
* data: ``$XDG_DATA_HOME`` or ``~/.local/share`` on Linux, ``~/Library/Application Support`` on
  macOS, ``%LOCALAPPDATA%`` on Windows — then ``cyclegan-cli``;
* cache: ``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS,
  ``%LOCALAPPDATA%\\cyclegan-cli\\Cache`` on Windows (the conventions platformdirs follows).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "cyclegan-cli"


def _env_dir(name: str, default: str) -> Path:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value and Path(value).is_absolute() else \
        Path(default).expanduser()


def user_data_dir() -> Path:
    if sys.platform == "win32":
        return _env_dir("LOCALAPPDATA", "~/AppData/Local") / APP
    if sys.platform == "darwin":
        return Path("~/Library/Application Support").expanduser() / APP
    return _env_dir("XDG_DATA_HOME", "~/.local/share") / APP


MODELS_ENV = "CGAN_MODELS"  # overrides the user models folder


def user_models_dir() -> Path:
    """Where pulled and exported models go and user models are found: ``$CGAN_MODELS``, else
    ``<user data folder>/models``."""
    value = os.environ.get(MODELS_ENV, "").strip()
    return Path(value).expanduser() if value else user_data_dir() / "models"


def user_cache_dir() -> Path:
    if sys.platform == "win32":
        return _env_dir("LOCALAPPDATA", "~/AppData/Local") / APP / "Cache"
    if sys.platform == "darwin":
        return Path("~/Library/Caches").expanduser() / APP
    return _env_dir("XDG_CACHE_HOME", "~/.cache") / APP
