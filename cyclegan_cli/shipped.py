"""Files that ship with cyclegan-cli: the models of ``weights/`` and the GIMP plug-in of
``plugins/``.

Both folders have one copy, at the top of the source repository. A wheel carries them inside
the package as ``cyclegan_cli/_shipped/weights`` and ``cyclegan_cli/_shipped/plugins``
(pyproject.toml, ``force-include``); an editable install of a checkout (``pip install -e .``)
uses the top-level folders directly. Everything else asks this module where they are.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_MODEL = "golden_hour"  # the model that ships (weights/golden_hour-*.onnx)
PACKAGED = "_shipped"  # the folder inside the installed package


def _folder(name: str) -> Path:
    """``name`` inside the installed package, else beside the package in a source checkout
    (which may not exist: callers check)."""
    packaged = resources.files(__package__ or "cyclegan_cli") / PACKAGED / name
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name


def weights_dir() -> Path:
    """The folder of the models that ship with the package (``golden_hour-AtoB.onnx`` …)."""
    return _folder("weights")


def plugins_dir() -> Path:
    """The folder of the plug-ins that ship with the package (``gimp/cyclegan/cyclegan.py``)."""
    return _folder("plugins")
