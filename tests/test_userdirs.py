"""The platform's user folders (cyclegan_cli/userdirs.py), without platformdirs: the inference
core must import in GIMP's Python with numpy, pillow, onnx and ONNX Runtime only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cyclegan_cli import userdirs

pytestmark = pytest.mark.torchfree


@pytest.mark.parametrize(("platform", "data", "cache"), [
    ("linux", "/x/data/cyclegan-cli", "/x/cache/cyclegan-cli"),
    ("darwin", "~/Library/Application Support/cyclegan-cli", "~/Library/Caches/cyclegan-cli"),
    ("win32", "/x/local/cyclegan-cli", "/x/local/cyclegan-cli/Cache"),
])
def test_each_platform_has_its_folders(platform: str, data: str, cache: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setenv("XDG_DATA_HOME", "/x/data")
    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")
    monkeypatch.setenv("LOCALAPPDATA", "/x/local")
    assert userdirs.user_data_dir() == Path(data).expanduser()
    assert userdirs.user_cache_dir() == Path(cache).expanduser()


def test_a_relative_xdg_folder_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")  # the XDG spec: ignore it
    assert userdirs.user_data_dir() == Path("~/.local/share/cyclegan-cli").expanduser()


def test_the_inference_core_imports_with_only_what_gimps_python_has() -> None:
    """numpy, pillow, onnx and onnxruntime: any other third-party import fails here."""
    code = (
        "import sys, importlib.abc\n"
        "allowed = {'numpy', 'PIL', 'onnx', 'onnxruntime', 'google', 'typing_extensions',\n"
        "           'ml_dtypes', 'coloredlogs', 'humanfriendly', 'flatbuffers', 'packaging',\n"
        "           'sympy', 'mpmath', 'protobuf', 'cyclegan_cli'}\n"
        "import sysconfig\n"
        "site = sysconfig.get_paths()['purelib']\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        top = name.split('.')[0]\n"
        "        if top in allowed or top in sys.stdlib_module_names: return None\n"
        "        raise ImportError(f'not in GIMP: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import cyclegan_cli.inference, cyclegan_cli.inference.resolve\n"
        "from cyclegan_cli.inference.resolve import model_dirs; model_dirs()\n")
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=root, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
