"""What an installation offers and says: the shipped files inside the package, the extras
(one line naming the one to install when it is missing), ONNX Runtime providers by name,
``cgan doctor`` and ``cgan --version``, and the README's quick start without torch.

.ci/run also runs this module in a fresh venv made from the built wheel, without torch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cyclegan_cli import extras, shipped
from cyclegan_cli.cli import app
from cyclegan_cli.data.images import load_rgb
from cyclegan_cli.inference import providers
from tests.conftest import HAS_TORCH

pytestmark = pytest.mark.torchfree  # runs in an install without torch

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def cgan(*args: str, block: tuple[str, ...] = (), cwd: Path | None = None
         ) -> subprocess.CompletedProcess:
    """``cgan ARGS`` in a fresh Python in which the modules ``block`` cannot be imported (as in
    an install without them)."""
    code = ("import sys\n"
            f"for name in {list(block)!r}:\n"
            "    sys.modules[name] = None  # import fails with ModuleNotFoundError\n"
            "from cyclegan_cli.cli import main\n"
            f"sys.argv = ['cgan', *{list(args)!r}]\n"
            "main()\n")
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


# -- shipped files ------------------------------------------------------------------------------
def test_shipped_models_and_plugin_are_found() -> None:
    models = sorted(p.name for p in shipped.weights_dir().glob("*.onnx"))
    assert models == ["golden_hour-AtoB.onnx", "golden_hour-BtoA.onnx"]
    assert (shipped.plugins_dir() / "gimp" / "cyclegan" / "cyclegan.py").is_file()
    listed = json.loads(runner.invoke(app, ["models", "--json"]).output)
    assert {m["name"] for m in listed["models"]} >= {"golden_hour"}
    assert shipped.weights_dir().resolve() in {Path(f).resolve() for f in listed["folders"]}


def test_the_wheel_carries_the_models_and_the_plugin(tmp_path) -> None:
    """The wheel users install holds weights/ and plugins/ inside the package, once
    ($CGAN_WHEEL: the one .ci/run built; else one is built here from the checkout)."""
    wheel = os.environ.get("CGAN_WHEEL")
    if not wheel:
        if not (ROOT / "pyproject.toml").is_file():
            pytest.skip("needs the source checkout (or $CGAN_WHEEL) to build the wheel")
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                        str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=600)
        wheel = str(next(tmp_path.glob("cyclegan_cli-*.whl")))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("cyclegan_cli/_shipped/weights/golden_hour-AtoB.onnx",
                   "cyclegan_cli/_shipped/weights/golden_hour-BtoA.onnx",
                   "cyclegan_cli/_shipped/weights/README.md",
                   "cyclegan_cli/_shipped/plugins/gimp/cyclegan/cyclegan.py",
                   "cyclegan_cli/_shipped/plugins/gimp/cyclegan/help/en/gimp-help.xml",
                   "cyclegan_cli/_shipped/plugins/gimp/cyclegan/help/en/index.html",
                   "cyclegan_cli/shipped.py", "cyclegan_cli/cli.py"):
        assert needed in names, needed
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "weights/"))]
    meta = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: BSD-3-Clause" in meta
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    base = [r for r in requires if "extra ==" not in r]
    assert not [r for r in base if "torch" in r or "onnxruntime" in r], base  # torch-free base
    for extra, package in (("cpu", "onnxruntime"), ("gpu", "onnxruntime-gpu"),
                           ("train", "torch")):
        assert any(r.startswith(f"Requires-Dist: {package}") and f"extra == '{extra}'" in r
                   for r in requires), (extra, requires)


# -- extras -------------------------------------------------------------------------------------
def test_missing_extras_are_named_in_one_line(tmp_path) -> None:
    train = one_line_error(cgan("train", str(tmp_path), str(tmp_path), block=("torch",)))
    assert "cyclegan-cli[train]" in train and "download.pytorch.org/whl/cpu" in train
    export = one_line_error(cgan("export", str(tmp_path), block=("torch",)))
    assert "cyclegan-cli[train]" in export
    photo = tmp_path / "p.png"
    photo.write_bytes(b"")  # never read: the model cannot load
    run = one_line_error(cgan("translate", "-m", "golden_hour", str(photo), "-o",
                              str(tmp_path / "o"), block=("onnxruntime",)))
    assert "cyclegan-cli[cpu]" in run and "cyclegan-cli[gpu]" in run
    # what needs no ONNX Runtime still works without it
    listed = cgan("models", "--json", block=("onnxruntime", "torch"))
    assert listed.returncode == 0 and "golden_hour" in listed.stdout
    assert extras.missing_module_hint("some_other_module") is None
    assert extras.missing_module_hint("torch.nn") == extras.missing_module_hint("torch")


def test_a_run_directory_without_torch_says_what_to_do(tmp_path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "checkpoints" / "latest.pt").write_bytes(b"")
    photos = tmp_path / "photos"
    photos.mkdir()
    from PIL import Image

    Image.new("RGB", (16, 16)).save(photos / "p.png")
    line = one_line_error(cgan("translate", "-m", str(run), "--backend", "torch",
                               str(photos), "-o", str(tmp_path / "o"), block=("torch",)))
    assert "cyclegan-cli[train]" in line and "cgan export" in line


# -- providers ----------------------------------------------------------------------------------
def test_provider_names_and_errors(monkeypatch) -> None:
    assert providers.providers_for("cpu") == ["CPUExecutionProvider"]
    assert providers.providers_for("auto")[-1] == "CPUExecutionProvider"
    with pytest.raises(providers.ProviderError, match="unknown provider 'gpu'.*auto, cpu, cuda"):
        providers.providers_for("gpu")
    monkeypatch.setattr(providers.ort, "get_available_providers",
                        lambda: ["CPUExecutionProvider"])
    with pytest.raises(providers.ProviderError, match=r"CUDA provider is not in this install "
                       r"\(it has: cpu\).*pip uninstall onnxruntime.*cyclegan-cli\[gpu\]"):
        providers.providers_for("cuda")
    with pytest.raises(providers.ProviderError, match="onnxruntime-directml"):
        providers.providers_for("directml")
    assert providers.providers_for("auto") == ["CPUExecutionProvider"]


def test_auto_prefers_an_installed_gpu_provider_and_checks_what_started(monkeypatch) -> None:
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(providers, "preload_cuda_libraries", lambda: "")
    auto = providers.providers_for("auto")
    assert [p if isinstance(p, str) else p[0] for p in auto] == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]  # TensorRT only when asked for
    assert auto[0][1]["cudnn_conv_algo_search"] == "HEURISTIC"
    trt = [p if isinstance(p, str) else p[0] for p in providers.providers_for("tensorrt")]
    assert trt == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers.available_providers() == ["cpu", "cuda", "tensorrt"]

    class FellBack:  # ONNX Runtime falls back to the CPU when CUDA cannot start
        @staticmethod
        def get_providers() -> list[str]:
            return ["CPUExecutionProvider"]

    with pytest.raises(providers.ProviderError, match="CUDA provider is installed but did not "
                       "start"):
        providers.check_started(FellBack(), "cuda")
    note = providers.check_started(FellBack(), "auto", "EP Error: no CUDA device\n")
    assert note == "the GPU provider did not start (no CUDA device); running on the CPU"
    assert providers.active_provider(FellBack()) == "CPU"


def test_the_cli_offers_every_provider_name() -> None:
    import typing

    from cyclegan_cli import cli

    assert typing.get_args(cli.Provider) == providers.PROVIDER_NAMES
    result = runner.invoke(app, ["translate", "-m", "golden_hour", ".", "--provider", "gpu"])
    assert result.exit_code == 2 and "auto" in result.output  # a usage error listing them


def test_why_a_provider_did_not_start_is_read_from_what_onnx_runtime_printed() -> None:
    class FellBack:
        @staticmethod
        def get_providers() -> list[str]:
            return ["CPUExecutionProvider"]

    # as onnxruntime-gpu 1.31 printed it on a machine without an NVIDIA driver
    printed = ("\x1b[1;31m2026-12-04 16:04:35 [E:onnxruntime:Default, provider_bridge_ort.cc:2458 "
               "operator()] ... : FAIL : Failed to load library /venv/onnxruntime/capi/"
               "libonnxruntime_providers_cuda.so with error: libcuda.so.1: cannot open shared "
               "object file: No such file or directory\n\x1b[m")
    assert providers.start_failure(FellBack(), "cuda", printed) == (
        "libcuda.so.1: cannot open shared object file: No such file or directory")
    assert providers.start_failure(FellBack(), "cuda", "EP Error: no CUDA device\n") == \
        "no CUDA device"
    assert "no usable device" in providers.start_failure(FellBack(), "cuda", "")
    assert providers.start_failure(FellBack(), "cpu", "") is None


def test_captured_output_takes_native_writes_too(capfd) -> None:
    with providers.captured_output() as out:
        os.write(2, b"from native code\n")
        os.write(1, b"on stdout\n")
        print("from python", file=sys.stderr)
    assert {"from native code", "on stdout", "from python"} <= set(out.getvalue().split("\n"))
    seen = capfd.readouterr()
    assert "native" not in seen.err + seen.out and "python" not in seen.err


@pytest.mark.gpu
def test_cuda_provider_translates_like_the_cpu() -> None:
    if "cuda" not in providers.available_providers() or providers.probe("cuda") is not None:
        pytest.skip("needs a working CUDA provider (onnxruntime-gpu and an NVIDIA GPU)")
    from cyclegan_cli.inference import load_model

    photo = np.asarray(__import__("skimage").data.chelsea())[:128, :192]
    model = shipped.weights_dir() / "golden_hour-AtoB.onnx"
    gpu = load_model(model, provider="cuda")
    assert gpu.device == "CUDA"
    cpu = load_model(model, provider="cpu").translate_array(photo).astype(int)
    assert np.abs(gpu.translate_array(photo).astype(int) - cpu).max() <= 2


def test_translate_with_a_provider_that_is_not_installed_is_one_line(tmp_path) -> None:
    missing = next((n for n in ("cuda", "directml", "rocm", "coreml")
                    if n not in providers.available_providers()), None)
    if missing is None:
        pytest.skip("every provider is installed here")
    photo = tmp_path / "p.png"
    from PIL import Image

    Image.new("RGB", (16, 16)).save(photo)
    line = one_line_error(cgan("translate", "-m", "golden_hour", str(photo), "-o",
                               str(tmp_path / "o"), "--provider", missing))
    assert "not in this install" in line and not (tmp_path / "o").exists()
    cpu = cgan("translate", "-m", "golden_hour", str(photo), "-o", str(tmp_path / "o"),
               "--provider", "cpu", "--quiet")
    assert cpu.returncode == 0 and "CPU" in cpu.stderr, cpu.stderr
    assert (tmp_path / "o" / "p.png").is_file()


def test_doctor_and_version_say_what_this_install_has() -> None:
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "providers: cpu (works)" in text
    assert f"shipped models: {shipped.weights_dir()} (2 files)" in text
    assert "GIMP plug-in: " in text and "problem" not in text
    assert ("torch: not installed" in text) == (not HAS_TORCH)
    for extra, module in (("metrics", "torch_fidelity"), ("tensorboard", "tensorboard")):
        line = next(x for x in text.splitlines() if x.startswith(f"{extra}: "))
        missing = importlib.util.find_spec(module) is None
        assert (f"pip install 'cyclegan-cli[{extra}]'" in line) == missing, line
    version = runner.invoke(app, ["--version"]).output
    assert version.startswith("cyclegan-cli ") and "providers: cpu" in version
    assert "torch: " + ("not installed" if not HAS_TORCH else "") in version


def test_doctor_reports_two_onnx_runtimes(monkeypatch) -> None:
    versions = {"onnxruntime": "1.20.0", "onnxruntime-gpu": "1.20.0"}
    monkeypatch.setattr(extras, "version_of", lambda dist: versions.get(dist))
    env = extras.environment(check_torch=False)
    assert any("several ONNX Runtime packages" in p for p in env.problems)


# -- the README's quick start ---------------------------------------------------------------------
def test_quick_start_without_torch(tmp_path) -> None:
    """``cgan samples photos/ && cgan translate -m golden_hour --direction AtoB photos/ -o
    golden/`` with torch unavailable, then ``cgan eval`` of the result against the true grade."""
    block = ("torch",)
    assert cgan("samples", "photos", block=block, cwd=tmp_path).returncode == 0
    done = cgan("translate", "-m", "golden_hour", "--direction", "AtoB", "photos/", "-o",
                "golden/", "--quiet", block=block, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    photos = sorted((tmp_path / "photos").glob("*.png"))
    assert [p.name for p in photos] == ["chelsea.png", "coffee.png"]
    change = []
    for photo in photos:
        before, after = load_rgb(photo), load_rgb(tmp_path / "golden" / photo.name)
        assert before.shape == after.shape and (before != after).any()
        change.append(np.abs(before.astype(int) - after).mean())
    assert max(change) > 2, change  # visibly graded (chelsea: ~9 levels, coffee: <1)
    from PIL import Image

    from cyclegan_cli.data.demo import golden_hour

    truth = tmp_path / "truth"
    truth.mkdir()
    for photo in photos:
        Image.fromarray(golden_hour(load_rgb(photo))).save(truth / photo.name)
    report = cgan("eval", "-m", "golden_hour", "--direction", "AtoB", "photos/", "--target",
                  "truth/", "--json", "--quiet", block=block, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    summary = json.loads(report.stdout)["summary"]
    assert summary["psnr"]["mean"] > summary["identity_psnr"]["mean"], summary
