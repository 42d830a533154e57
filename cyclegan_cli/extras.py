"""The optional parts of an installation: which extra brings which module, the one-line hint
for a missing one, and what this environment has (``cgan doctor``).

The extras (pyproject.toml): ``[cpu]`` ONNX Runtime for the CPU, ``[gpu]`` ONNX Runtime with
CUDA (the two replace each other's files: install one), ``[train]`` torch, for training, export
and the demo, ``[metrics]`` the standard FID/KID (torch-fidelity) and LPIPS, ``[tensorboard]``
TensorBoard event files from training. The base install without them lists models and makes
sample photos.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import platform
from dataclasses import dataclass, field

from cyclegan_cli import __version__
from cyclegan_cli.errors import first_line

DIST = "cyclegan-cli"
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"

# top-level module -> (what needs it, the install command that brings it)
EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("training, export and the demo",
              f"pip install '{DIST}[train]' (CPU-only machine: pip install torch "
              f"--index-url {CPU_TORCH_INDEX} first)"),
    "onnxruntime": ("running models",
                    f"pip install '{DIST}[cpu]', or '{DIST}[gpu]' for NVIDIA GPUs"),
    "onnx": ("reading model files", f"pip install --force-reinstall '{DIST}'"),
    "skimage": ("sample photos and SSIM", f"pip install --force-reinstall '{DIST}'"),
    "imageio_ffmpeg": ("video", f"pip install --force-reinstall '{DIST}'"),
    "tensorboard": ("--tensorboard", f"pip install '{DIST}[tensorboard]'"),
    "torch_fidelity": ("the standard FID/KID", f"pip install '{DIST}[metrics]'"),
    "lpips": ("LPIPS", f"pip install '{DIST}[metrics]'"),
}


def missing_module_hint(name: str | None) -> str | None:
    """One line for a missing module that an extra (or the base install) provides, or None
    for any other module."""
    top = (name or "").split(".")[0]
    if top not in EXTRAS:
        return None
    what, command = EXTRAS[top]
    return f"{what} needs {top}, which is not installed: {command}"


def has_module(name: str) -> bool:
    """Whether ``name`` can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken or half-removed install
        return False


def version_of(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


OPTIONAL = {"metrics": ("torch-fidelity", "lpips"), "tensorboard": ("tensorboard",)}
ORT_DISTS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-rocm",
             "onnxruntime-migraphx", "onnxruntime-openvino", "onnxruntime-qnn")


@dataclass
class Environment:
    """What this installation has and can do."""

    version: str
    python: str
    platform: str
    onnxruntime: list[str] = field(default_factory=list)  # installed ONNX Runtime packages
    providers: dict[str, str] = field(default_factory=dict)  # --provider name -> status
    torch: str | None = None  # version, or None when not installed
    torch_devices: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # shipped folders -> path or problem
    optional: dict[str, str] = field(default_factory=dict)  # extra -> versions or how to get
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        ort = ", ".join(self.onnxruntime) or f"not installed ({EXTRAS['onnxruntime'][1]})"
        providers = ", ".join(f"{name} ({status})" if status else name
                              for name, status in self.providers.items())
        torch = (f"{self.torch} ({', '.join(self.torch_devices)})" if self.torch_devices
                 else self.torch or f"not installed (training: {EXTRAS['torch'][1]})")
        return [f"cyclegan-cli {self.version} (Python {self.python}, {self.platform})",
                f"onnxruntime: {ort}",
                f"providers: {providers or 'none'}",
                f"torch: {torch}",
                *(f"{what}: {state}" for what, state in self.optional.items()),
                *(f"{what}: {where}" for what, where in self.files.items()),
                *(f"problem: {p}" for p in self.problems)]


def environment(check_torch: bool = True, probe: bool = False) -> Environment:
    """This installation: ONNX Runtime packages and providers (with ``probe``, each one is
    started on a tiny network), torch and its devices (``check_torch`` imports it, a few
    seconds; otherwise only its version is read), and the shipped files."""
    from cyclegan_cli.shipped import plugins_dir, weights_dir

    env = Environment(__version__, platform.python_version(),
                      f"{platform.system()} {platform.machine()}")
    env.onnxruntime = [f"{d} {v}" for d in ORT_DISTS if (v := version_of(d))]
    if len(env.onnxruntime) > 1:
        env.problems.append(
            f"several ONNX Runtime packages are installed ({', '.join(env.onnxruntime)}); they "
            "overwrite each other's files: uninstall all of them and install one")
    if has_module("onnxruntime"):
        from cyclegan_cli.inference import providers

        for name in providers.available_providers():
            why = providers.probe(name) if probe else None
            env.providers[name] = ("works" if probe else "") if why is None else why
    env.torch = version_of("torch") if has_module("torch") else None
    if env.torch and check_torch:
        env.torch_devices = _torch_devices()
    for extra, dists in OPTIONAL.items():
        found = [f"{d} {v}" for d in dists if (v := version_of(d))]
        if len(found) < len(dists):
            env.optional[extra] = f"not installed (pip install '{DIST}[{extra}]')"
            continue
        broken = next((why for d in dists if (why := _import_problem(d.replace("-", "_")))),
                      None) if check_torch else None
        env.optional[extra] = ", ".join(found) + (f" — does not load: {broken}" if broken
                                                  else "")
    models = sorted(p.name for p in weights_dir().glob("*.onnx"))
    env.files["shipped models"] = (f"{weights_dir()} ({len(models)} files)" if models
                                   else "missing")
    plugin = plugins_dir() / "gimp" / "cyclegan" / "cyclegan.py"
    env.files["GIMP plug-in"] = str(plugin) if plugin.is_file() else "missing"
    env.problems += [f"the {what} are missing from this install; reinstall cyclegan-cli"
                     for what, where in env.files.items() if where == "missing"]
    return env


def _import_problem(module: str) -> str | None:
    """None when ``module`` imports, else why not (one line; e.g. a torchvision built for
    another torch)."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - anything a broken install raises
        return f"{type(exc).__name__}: {first_line(exc, 120) if str(exc).strip() else ''}"
    return None


def _torch_devices() -> list[str]:
    try:
        import torch
    except Exception as exc:  # a broken torch install: say so rather than fail
        return [f"cannot import: {type(exc).__name__}"]
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append(f"cuda ×{torch.cuda.device_count()}: {torch.cuda.get_device_name(0)}")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def short_summary() -> str:
    """One line for ``cgan --version``: the version, the providers and torch."""
    env = environment(check_torch=False)
    providers = ", ".join(env.providers) or "none (no ONNX Runtime)"
    return (f"cyclegan-cli {env.version} (Python {env.python}; providers: {providers}; torch: "
            f"{env.torch or 'not installed'})")
