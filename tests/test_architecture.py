"""The import rules of cyclegan_cli/layers.py hold: no module imports a layer above its own
(lazy imports included), families stay below the trainer, and the torch-free layers import
without torch (the inference package loads torch only in its torch backend)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import cyclegan_cli
from cyclegan_cli.layers import INSIDE, LAYERS, TORCH_BACKEND, TORCH_FREE, layer_of

pytestmark = pytest.mark.torchfree  # (the runtime check blocks torch itself)

PACKAGE = Path(cyclegan_cli.__file__).resolve().parent
KNOWN = {p.stem if p.name != "__init__.py" else p.parent.name
         for p in PACKAGE.glob("*/__init__.py")} | {p.stem for p in PACKAGE.glob("*.py")}


def modules() -> dict[str, Path]:
    """``data.images`` -> its file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "_shipped" in path.parts:
            continue
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module without ``cyclegan_cli.``) for every import of the package,
    at any depth (function bodies too), relative imports resolved."""
    out = []
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                names = [".".join([*base, node.module] if node.module else base)]
                names = ["cyclegan_cli." + names[0]] if names[0] else ["cyclegan_cli"]
            else:
                names = [node.module or ""]
            if names[0] == "cyclegan_cli":  # from cyclegan_cli import x: a module or a name
                names = [f"cyclegan_cli.{a.name}" if a.name in KNOWN else "cyclegan_cli.__init__"
                         for a in node.names]
        else:
            continue
        out += [(node.lineno, n.removeprefix("cyclegan_cli.")) for n in names
                if n.startswith("cyclegan_cli.")]
    return out


def _is_torch(name: str | None) -> bool:
    return (name or "").split(".")[0] == "torch"


def torch_imports(path: Path) -> list[int]:
    """Lines that import torch: import statements and ``importlib.import_module("torch")``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        dynamic = (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
            node.func, "id", "")) == "import_module" and node.args
            and isinstance(node.args[0], ast.Constant) and _is_torch(str(node.args[0].value)))
        if dynamic or (isinstance(node, ast.Import) and any(_is_torch(a.name)
                                                            for a in node.names)) or (
                isinstance(node, ast.ImportFrom) and _is_torch(node.module)):
            lines.append(node.lineno)
    return lines


def test_every_module_has_a_layer() -> None:
    for module in modules():
        layer_of(module)  # KeyError names the module


def test_no_module_imports_a_higher_layer() -> None:
    wrong = []
    for module, path in modules().items():
        mine = layer_of(module)
        for line, other in imports(path, module):
            if layer_of(other) > mine:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} ({LAYERS[mine][0]}) imports "
                             f"cyclegan_cli.{other} ({LAYERS[layer_of(other)][0]})")
            for package, banned in INSIDE:
                if (module == package or module.startswith(package + ".")) and any(
                        other == b or other.startswith(b + ".") for b in banned):
                    wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports "
                                 f"cyclegan_cli.{other} ({package} may not)")
    assert not wrong, "\n".join(wrong)


def test_the_rule_sees_a_violation(tmp_path) -> None:
    """The checker is not blind: an upward import, nested in a function, is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from cyclegan_cli.training.loop import train\n")
    assert imports(bad, "inference.bad") == [(2, "training.loop")]
    assert layer_of("training.loop") > layer_of("inference.bad")
    assert torch_imports(tmp_path / "bad.py") == []
    (tmp_path / "t.py").write_text("import importlib\nx = importlib.import_module('torch')\n")
    assert torch_imports(tmp_path / "t.py") == [2]


def test_inference_imports_torch_only_in_its_torch_backend() -> None:
    wrong = [f"{path.relative_to(PACKAGE)}:{line}" for module, path in modules().items()
             if module.startswith("inference") and module != TORCH_BACKEND
             for line in torch_imports(path)]
    assert not wrong, wrong


def test_torch_free_layers_import_without_torch() -> None:
    free = [m for m in modules() if LAYERS[layer_of(m)][0] in TORCH_FREE]
    code = ("import importlib, sys\n"
            "sys.modules['torch'] = None  # any import of torch fails\n"
            f"for name in {free!r}:\n"
            "    importlib.import_module('cyclegan_cli.' + name if name != '__init__' "
            "else 'cyclegan_cli')\n"
            "print(len(sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-1500:]
    assert len(free) > 30
