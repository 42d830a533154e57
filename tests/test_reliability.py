"""Faults injected on purpose: a training process killed with SIGKILL at random moments, a
full disk and unwritable folders, hostile image files (random bytes included, through
hypothesis), random arrays through the inference core, and no tracebacks for user errors.
docs/reliability.md maps each fault to what the user sees and to the test here."""

from __future__ import annotations

import errno
import importlib.util
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from cyclegan_cli.cli import app
from cyclegan_cli.data.images import load_rgb, probe_image
from cyclegan_cli.errors import ImageReadError
from cyclegan_cli.inference import load_model
from tests.conftest import tmpfs

PROJECT = Path(__file__).resolve().parents[1]
MODEL = PROJECT / "weights" / "golden_hour-AtoB.onnx"
TRAIN = ["--net-g", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load-size", "36",
         "--crop-size", "32", "--save-every", "1", "--log-every", "1", "--device", "cpu",
         "--num-workers", "0", "--seed", "1", "--quiet"]


def _cgan(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "cyclegan_cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# -- SIGKILL during training -------------------------------------------------------------------
def test_sigkill_at_random_moments_then_resume(tmp_path, tiny_data) -> None:
    """Kill -9 three times at random moments after the first checkpoint; every checkpoint on
    disk always loads, each resume continues, and the finished run has every logged step
    exactly once and the same weights as a run that was never killed."""
    data = [str(tiny_data / "trainA"), str(tiny_data / "trainB")]
    steps = 48
    rng = random.Random(int(time.time()))
    seed_note = f"kill delays drawn with seed {rng.getstate()[1][0]}"
    run = tmp_path / "runs" / "k"
    args = ["train", *data, "--runs-dir", "runs", "--name", "k", "--max-steps", str(steps),
            *TRAIN]
    killed = 0
    for attempt in range(3):
        proc = _cgan(*args, cwd=tmp_path)
        deadline = time.monotonic() + 120
        start_step = _checkpoint_step(run) if attempt else -1
        while time.monotonic() < deadline and proc.poll() is None:
            if (run / "checkpoints" / "latest.pt").exists() and \
                    _checkpoint_step(run) > start_step:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        killed += proc.returncode == -signal.SIGKILL
        for ckpt in (run / "checkpoints").glob("*.pt"):  # never half-written
            torch.load(ckpt, map_location="cpu", weights_only=False)
        args = ["train", "--resume", "runs/k", "--max-steps", str(steps), "--quiet"]
    final = _cgan(*args, cwd=tmp_path)
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, f"{seed_note}\n{err[-2000:]}"
    assert killed >= 1, "no kill landed mid-run"
    assert not list((run / "checkpoints").glob(".*.tmp")), "stale temporaries were left"
    logged = [int(line.split(",")[0]) for line in
              (run / "losses.csv").read_text().splitlines()[1:]]
    assert logged == list(range(1, steps + 1)), seed_note

    whole = _cgan("train", *data, "--runs-dir", "runs", "--name", "w", "--max-steps",
                  str(steps), *TRAIN, cwd=tmp_path)
    assert whole.wait(timeout=300) == 0
    a = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)["trainer"]["nets"]
    b = torch.load(tmp_path / "runs" / "w" / "checkpoints" / "latest.pt",
                   weights_only=False)["trainer"]["nets"]
    for net in a:
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} ({seed_note})"


def _checkpoint_step(run: Path) -> int:
    try:
        return int(torch.load(run / "checkpoints" / "latest.pt",
                              weights_only=False)["trainer"]["global_step"])
    except Exception:  # being replaced right now
        return -1


def test_loss_log_drops_a_line_cut_short_by_a_kill(tmp_path) -> None:
    from cyclegan_cli.rundir import LossLog

    path = tmp_path / "losses.csv"
    log = LossLog(path, ["D_A"])
    for step in (1, 2, 3):
        log.write({"step": step, "epoch": 1, "lr": 0.1, "images_per_s": 2.0, "D_A": 0.5})
    log.close()
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("1")  # the start of step 10's row: it would read as step 1
    LossLog(path, ["D_A"], resume_step=3).close()
    rows = path.read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]


# -- a full disk and unwritable folders -------------------------------------------------------
def _disk_full_after(monkeypatch, n_ok: int) -> None:
    """Every fsync after the first ``n_ok`` fails as a full disk does."""
    real = os.fsync
    calls = {"n": 0}

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > n_ok:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def _photos(folder: Path, n: int, side: int = 40) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        paths.append(folder / f"p{i}.png")
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def _no_temporaries(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_disk_full_during_translation(tmp_path, monkeypatch) -> None:
    _photos(tmp_path / "in", 4)
    out = tmp_path / "out"
    _disk_full_after(monkeypatch, 2)
    result = CliRunner().invoke(app, ["translate", "-m", str(MODEL), str(tmp_path / "in"),
                                      "-o", str(out), "--quiet"])
    assert result.exit_code == 1
    assert result.output.count("the disk is full") == 2  # each failed file named once
    assert "Traceback" not in result.output
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == ["p0.png", "p1.png"]  # earlier outputs complete
    for p in out.glob("*.png"):
        load_rgb(p)
    _no_temporaries(out)


def test_disk_full_during_export_keeps_the_old_file(tmp_path, tiny_data, monkeypatch) -> None:
    from cyclegan_cli.training.loop import train
    from tests.conftest import tiny_config

    train(tiny_config(tiny_data, tmp_path / "runs", max_steps=2), quiet=True)
    run = tmp_path / "runs" / "tiny"
    first = CliRunner().invoke(app, ["export", str(run), "-o", str(tmp_path / "w")])
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in (tmp_path / "w").glob("*.onnx")}
    _disk_full_after(monkeypatch, 0)
    result = CliRunner().invoke(app, ["export", str(run), "-o", str(tmp_path / "w")])
    assert result.exit_code != 0 and "the disk is full" in result.output
    assert "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in (tmp_path / "w").glob("*.onnx")} == before
    _no_temporaries(tmp_path / "w")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_disk_full_during_training_keeps_the_last_checkpoint(tmp_path, tiny_data,
                                                             monkeypatch) -> None:
    runs = tmp_path / "runs"
    args = ["train", str(tiny_data / "trainA"), str(tiny_data / "trainB"), "--runs-dir",
            str(runs), "--name", "f", "--max-steps", "2", *TRAIN]
    assert CliRunner().invoke(app, args).exit_code == 0
    latest = runs / "f" / "checkpoints" / "latest.pt"
    before = latest.read_bytes()
    real = os.fsync

    def fsync(fd: int) -> None:  # the disk fills up just as the checkpoint is written
        if "latest.pt" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = CliRunner().invoke(app, ["train", "--resume", str(runs / "f"), "--max-steps",
                                      "4", "--quiet"])
    assert result.exit_code == 1
    assert "the disk is full" in result.output and "cgan train --resume" in result.output
    assert "Traceback" not in result.output
    assert latest.read_bytes() == before
    _no_temporaries(runs / "f")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("where", ["samples", "losses.csv"])
def test_disk_full_for_samples_or_the_loss_log(tmp_path, tiny_data, monkeypatch, where) -> None:
    """The disk fills while a sample grid or a loss-log line is written: one line, the last
    checkpoint intact, and the run resumes once there is room."""
    runs = tmp_path / "runs"
    base = ["train", str(tiny_data / "trainA"), str(tiny_data / "trainB"), "--runs-dir",
            str(runs), "--name", "s", *TRAIN]
    assert CliRunner().invoke(app, [*base, "--max-steps", "8"]).exit_code == 0
    latest = runs / "s" / "checkpoints" / "latest.pt"
    before = latest.read_bytes()
    if where == "samples":
        real = os.fsync

        def fsync(fd: int) -> None:
            if "/samples/" in os.readlink(f"/proc/self/fd/{fd}"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)
    else:
        from cyclegan_cli.rundir import LossLog

        def full(self, row):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

        monkeypatch.setattr(LossLog, "write", full)
    result = CliRunner().invoke(app, ["train", "--resume", str(runs / "s"), "--max-steps",
                                      "16", "--quiet", "--sample-every", "10"])
    assert result.exit_code == 1 and "the disk is full" in result.output, result.output
    assert "Traceback" not in result.output
    assert torch.load(latest, weights_only=False)["trainer"]["global_step"] == 8
    assert latest.read_bytes() == before
    monkeypatch.undo()
    again = CliRunner().invoke(app, ["train", "--resume", str(runs / "s"), "--max-steps", "16",
                                     "--quiet"])
    assert again.exit_code == 0, again.output


def test_a_real_full_disk_and_a_read_only_folder(tmp_path, tiny_data) -> None:
    """A 300 KB tmpfs really fills up; then it is remounted read-only (translate, train and
    export into it each give one line)."""
    trained = tmp_path / "runs" / "t"
    assert CliRunner().invoke(app, ["train", str(tiny_data / "trainA"),
                                    str(tiny_data / "trainB"), "--runs-dir",
                                    str(tmp_path / "runs"), "--name", "t", "--max-steps", "1",
                                    *TRAIN]).exit_code == 0
    with tmpfs(tmp_path / "disk", "size=300k") as disk:
        _photos(tmp_path / "in", 8, side=160)  # ~77 KB each as PNG output
        run = CliRunner().invoke(app, ["translate", "-m", str(MODEL), str(tmp_path / "in"),
                                       "-o", str(disk / "out"), "--quiet"])
        assert run.exit_code == 1 and "the disk is full" in run.output, run.output
        written = list((disk / "out").glob("*.png"))
        assert 0 < len(written) < 8
        for p in written:
            load_rgb(p)  # complete files only
        _no_temporaries(disk)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        ro = CliRunner().invoke(app, ["translate", "-m", str(MODEL), str(tmp_path / "in"),
                                      "-o", str(disk / "out2"), "--quiet"])
        assert ro.exit_code != 0 and "read-only" in ro.output, ro.output
        assert "Traceback" not in ro.output
        for args in (["train", str(tiny_data / "trainA"), str(tiny_data / "trainB"),
                      "--runs-dir", str(disk / "runs"), "--max-steps", "1", *TRAIN],
                     ["export", str(trained), "-o", str(disk / "weights")]):
            result = CliRunner().invoke(app, args)
            assert result.exit_code != 0 and "read-only" in result.output, result.output
            assert result.output.startswith("error:") and "Traceback" not in result.output


# -- hostile and odd image files, through translate and train ---------------------------------
def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header declares width×height and whose data is a few bytes."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(
            ">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(
        ">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory) -> tuple[Path, dict[str, str | None]]:
    """A folder of odd inputs; for each, the reason its translation fails (None: it works)."""
    root = tmp_path_factory.mktemp("odd")
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    expect: dict[str, str | None] = {}

    def save(name: str, img: Image.Image, ok: str | None = None, **kw) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        img.save(root / name, **kw)
        expect[name] = ok

    (root / "empty.png").write_bytes(b"")
    expect["empty.png"] = "not an image"
    Image.fromarray(photo).save(root / "full.jpg", quality=90)
    (root / "truncated.jpg").write_bytes((root / "full.jpg").read_bytes()[:600])
    (root / "full.jpg").unlink()
    expect["truncated.jpg"] = "truncated"
    Image.fromarray(photo).save(root / "full.png")
    (root / "truncated.png").write_bytes((root / "full.png").read_bytes()[:300])
    (root / "full.png").unlink()
    expect["truncated.png"] = "truncated"
    (root / "notes.png").write_text("this is text, not a picture")
    expect["notes.png"] = "not an image"
    _png_header_only(root / "bomb.png", 20000, 20000)
    expect["bomb.png"] = "--max-megapixels 401"
    save("one_pixel.png", Image.new("RGB", (1, 1), (200, 10, 10)))
    save("sixteen_bit.png", Image.fromarray((rng.integers(0, 65535, (20, 30))).astype(np.uint16)))
    save("cmyk.jpg", Image.fromarray(photo).convert("CMYK"))
    pal = Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    save("palette_transparent.png", pal, transparency=0)
    frames = [Image.fromarray(np.roll(photo, 8 * i, axis=1)) for i in range(3)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:], duration=80)
    expect["animated.gif"] = None
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    save("rotated.jpg", Image.fromarray(photo), exif=exif)
    save("gray.png", Image.fromarray(photo[..., 0]))
    save("with spaces ünïcödé 写真.png", Image.fromarray(photo))
    (root / "loop").mkdir()
    (root / "loop" / "again").symlink_to("..")  # a symlink loop inside the input folder
    return root, expect


def test_translate_odd_files(tmp_path, odd_files) -> None:
    root, expect = odd_files
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["translate", "-m", str(MODEL), str(root), "-o",
                                      str(out), "--gif-frames", "first", "--quiet"])
    assert result.exit_code == 1  # some inputs failed
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())  # unwrapped
    for name, reason in expect.items():
        if reason is None:
            stem = Path(name).with_suffix("").name
            found = list(out.glob(f"{stem}.*"))
            assert len(found) == 1, name
            load_rgb(found[0])
        else:
            assert f"{name}: " in text and reason in text, (name, reason)
    rotated = load_rgb(out / "rotated.jpg")
    assert rotated.shape[:2] == (64, 48)  # EXIF rotation applied
    assert load_rgb(out / "one_pixel.png").shape == (1, 1, 3)
    assert Image.open(out / "palette_transparent.png").mode == "RGBA"  # alpha kept


def test_translate_all_gif_frames(tmp_path, odd_files) -> None:
    root, _ = odd_files
    result = CliRunner().invoke(app, ["translate", "-m", str(MODEL), str(root / "animated.gif"),
                                      "-o", str(tmp_path / "o"), "--quiet"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "o" / "animated.gif") as gif:
        assert gif.n_frames == 3


def test_bomb_limit_can_be_raised(tmp_path) -> None:
    _png_header_only(tmp_path / "big.png", 3000, 2000)  # 6 MP declared, almost no data
    args = ["translate", "-m", str(MODEL), str(tmp_path / "big.png"), "-o", str(tmp_path / "o")]
    low = CliRunner().invoke(app, ["--max-megapixels", "5", *args])
    assert low.exit_code == 1 and "over the 5 MP limit" in low.output
    assert "--max-megapixels 7" in " ".join(low.output.split())
    high = CliRunner().invoke(app, ["--max-megapixels", "7", *args])
    assert "over the" not in high.output  # past the limit; the broken data fails later
    assert "big.png" in high.output and high.exit_code == 1


def test_train_on_odd_files(tmp_path, odd_files, tiny_data) -> None:
    """Training uses every readable image (GIF: its first frame) and names each skipped one."""
    root, expect = odd_files
    result = CliRunner().invoke(app, ["train", str(root), str(tiny_data / "trainB"),
                                      "--runs-dir", str(tmp_path / "runs"), "--name", "odd",
                                      "--max-steps", "16", *TRAIN])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    bad = [n for n, reason in expect.items() if reason is not None]
    for name in bad:
        assert f"skipping unreadable image {root / name}" in text, name
    assert f"{len(bad)} unreadable image(s) were skipped" in text


# -- random arrays through the inference core; random bytes through the image reader ---------
@pytest.fixture(scope="module")
def core():
    return load_model(MODEL)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 70), w=st.integers(1, 70), channels=st.sampled_from([0, 1, 2, 3, 4]),
       wide=st.booleans(), seed=st.integers(0, 2**16))
def test_any_image_array_translates_to_its_own_size(core, h, w, channels, wide, seed) -> None:
    """Every size, channel count (0 = a 2-D gray array) and 8/16-bit type: the output has the
    input's size, uint8, RGB (+ the input's alpha), and no exception."""
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 0 else (h, w, channels)
    arr = rng.integers(0, 65536 if wide else 256, shape).astype(np.uint16 if wide else np.uint8)
    out = core.translate_array(arr)
    assert out.dtype == np.uint8 and out.shape[:2] == (h, w)
    assert out.shape[2] == (4 if channels in (2, 4) else 3)
    if channels == 4 and not wide:
        np.testing.assert_array_equal(out[..., 3], arr[..., 3])  # alpha untouched


def _image_bytes(data: st.DataObject) -> bytes:
    """Real image files of random kinds, then damaged at random (truncated, bytes flipped)."""
    import io

    fmt = data.draw(st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]))
    mode = data.draw(st.sampled_from(["RGB", "L", "P", "RGBA", "1"]))
    if fmt == "JPEG" and mode in ("RGBA", "P"):
        mode = "RGB"
    size = (data.draw(st.integers(1, 40)), data.draw(st.integers(1, 40)))
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, fmt)
    raw = bytearray(buf.getvalue())
    cut = data.draw(st.integers(0, len(raw)))
    raw = raw[:cut] if data.draw(st.booleans()) else raw
    for _ in range(data.draw(st.integers(0, 8))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    return bytes(raw)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), junk=st.binary(max_size=2000))
def test_fuzz_the_image_reader(tmp_path, data, junk) -> None:
    """Damaged images and random bytes: the reader either returns an RGB array or raises
    ImageReadError naming the file — nothing else (a bounded fuzz run: ~300 cases)."""
    for i, raw in enumerate((_image_bytes(data), junk)):
        path = tmp_path / f"case{i}.png"
        path.write_bytes(raw)
        for read in (load_rgb, probe_image):
            try:
                result = read(path)
            except ImageReadError as err:
                assert err.path == str(path) and err.reason
                continue
            if read is load_rgb:
                assert result.dtype == np.uint8 and result.ndim == 3 and result.shape[2] == 3


# -- no tracebacks for user errors; --debug shows them ----------------------------------------
@pytest.mark.parametrize("args", [
    ["translate", "-m", "no_such_model", "x.png"],
    ["translate", "-m", "golden_hour", "missing_folder/"],
    ["translate", "-m", str(PROJECT / "README.md"), "."],
    ["train", "no_such_A/", "no_such_B/"],
    ["train", "--resume", "no_such_run/"],
    ["export", "no_such_run/"],
    ["eval", "-m", "golden_hour", "missing/"],
    ["translate", "-m", "golden_hour", ".", "--shard", "3/2"],
])
def test_user_errors_print_one_line_not_a_traceback(tmp_path, args) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "cyclegan_cli", *args], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode not in (0, None)
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stderr.strip().startswith("error:") or "Usage:" in run.stderr
    debug = subprocess.run([sys.executable, "-m", "cyclegan_cli", "--debug", *args],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    if "Usage:" not in run.stderr:
        assert "Traceback" in debug.stderr  # --debug shows where it came from


# -- model files --------------------------------------------------------------------------------
def _foreign_onnx(path: Path, inputs: int = 1, fixed: bool = False) -> None:
    """A ResNet generator exported by plain torch.onnx: no cyclegan-cli metadata, own names."""
    from cyclegan_cli.models import build_generator

    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", ngf=8).eval()
    model = net if inputs == 1 else _TwoInputs(net)
    example = (torch.zeros(1, 3, 32, 32),) * inputs
    axes = None if fixed else {"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}}
    names = ["x"] if inputs == 1 else ["x", "x2"]
    torch.onnx.export(model, example, str(path), input_names=names, output_names=["y"],
                      dynamic_axes=axes, dynamo=False)


class _TwoInputs(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x, x2):
        return self.net(x + x2)


def test_onnx_without_metadata_is_used_with_a_warning(tmp_path) -> None:
    _foreign_onnx(tmp_path / "plain.onnx")
    _photos(tmp_path / "in", 1, side=50)
    result = CliRunner().invoke(app, ["translate", "-m", str(tmp_path / "plain.onnx"),
                                      str(tmp_path / "in"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "warning:" in text and "no cyclegan-cli metadata" in text and "multiple of 4" in text
    assert load_rgb(tmp_path / "o" / "p0.png").shape == (50, 50, 3)


@pytest.mark.parametrize(("kind", "says"), [
    ("two_inputs", "2 inputs"), ("fixed", "input size is fixed"), ("truncated", "not a usable"),
    ("text", "not a usable")])
def test_unusable_model_files_are_one_line_errors(tmp_path, kind, says) -> None:
    path = tmp_path / "m.onnx"
    if kind == "two_inputs":
        _foreign_onnx(path, inputs=2)
    elif kind == "fixed":
        _foreign_onnx(path, fixed=True)
    elif kind == "truncated":
        path.write_bytes(MODEL.read_bytes()[:5000])
    else:
        path.write_text("not a model")
    _photos(tmp_path / "in", 1)
    result = CliRunner().invoke(app, ["translate", "-m", str(path), str(tmp_path / "in"),
                                      "-o", str(tmp_path / "o")])
    assert result.exit_code != 0
    text = " ".join(result.output.split())
    assert text.startswith("error:") and says in text and "Traceback" not in text


def test_checkpoint_of_another_architecture(tmp_path, tiny_data) -> None:
    """A checkpoint from a run of another architecture (another --ngf), given to export or
    put in place of a run's own: each says so in one line."""
    import shutil

    runs = tmp_path / "runs"
    for name, ngf in (("a", "4"), ("b", "8")):
        args = ["train", str(tiny_data / "trainA"), str(tiny_data / "trainB"), "--runs-dir",
                str(runs), "--name", name, "--max-steps", "1", *TRAIN, "--ngf", ngf]
        assert CliRunner().invoke(app, args).exit_code == 0
    other = runs / "b" / "checkpoints" / "latest.pt"
    exported = CliRunner().invoke(app, ["export", str(runs / "a"), "--checkpoint", str(other),
                                        "-o", str(tmp_path / "w")])
    assert exported.exit_code != 0, exported.output
    assert exported.output.startswith("error:") and "Traceback" not in exported.output
    assert not (tmp_path / "w").exists() or not list((tmp_path / "w").glob("*.onnx"))
    shutil.copyfile(other, runs / "a" / "checkpoints" / "latest.pt")
    resumed = CliRunner().invoke(app, ["train", "--resume", str(runs / "a"), "--max-steps", "2"])
    assert resumed.exit_code != 0 and "Traceback" not in resumed.output
    assert resumed.output.startswith("error:"), resumed.output


# -- reliability, round two: training -----------------------------------------------------------
@pytest.mark.parametrize(("content", "says"), [
    ("[1, 2]", "not a configuration"),
    ("null", "not a configuration"),
    ('{"ngf": "eight"}', "--ngf must be a whole number, not 'eight'"),
    ('{"ngf": 8.5}', "--ngf must be a whole number, not 8.5"),
    ('{"netG": "foo"}', "--net-g must be one of resnet_9blocks"),
])
def test_a_config_json_of_the_wrong_shape_is_one_line(tmp_path, tiny_data, content,
                                                      says) -> None:
    bad = tmp_path / "config.json"
    bad.write_text(content)
    result = CliRunner().invoke(app, ["train", "--config", str(bad), str(tiny_data / "trainA"),
                                      str(tiny_data / "trainB")])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], lines
    assert str(bad) in lines[0] and "unexpected" not in lines[0]


def test_a_run_folder_deleted_while_training_is_put_back(tmp_path, tiny_data) -> None:
    """The run's folder goes while it trains: the run notices, writes config.json and
    losses.csv again, finishes, and stays resumable."""
    data = [str(tiny_data / "trainA"), str(tiny_data / "trainB")]
    run = tmp_path / "runs" / "d"
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    proc = _cgan("train", *data, "--runs-dir", "runs", "--name", "d", "--max-steps", "200",
                 *TRAIN, *(["--tensorboard"] if tensorboard else []), cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (run / "checkpoints" / "latest.pt").exists():
        time.sleep(0.05)
    for _ in range(100):  # the run writes on while the folder goes: delete until it is gone
        shutil.rmtree(run, ignore_errors=True)
        if not run.exists():
            break
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "was deleted while the run trained" in err
    assert (run / "config.json").is_file() and (run / "losses.csv").is_file()
    assert "finished" in (run / "report.html").read_text()
    if tensorboard:  # a new event file, with the steps after the folder went
        assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    resumed = CliRunner().invoke(app, ["train", "--resume", str(run), "--max-steps", "202",
                                       "--quiet"])
    assert resumed.exit_code == 0, resumed.output


def test_resume_from_the_checkpoint_alone(tmp_path, tiny_data) -> None:
    data = [str(tiny_data / "trainA"), str(tiny_data / "trainB")]
    first = CliRunner().invoke(app, ["train", *data, "--runs-dir", str(tmp_path), "--name", "c",
                                     "--max-steps", "2", *TRAIN])
    assert first.exit_code == 0, first.output
    (tmp_path / "c" / "config.json").unlink()
    resumed = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "c"),
                                       "--max-steps", "4"])
    assert resumed.exit_code == 0, resumed.output
    assert "config.json is missing; the run's settings come from its checkpoint" in " ".join(
        resumed.output.split())
    assert (tmp_path / "c" / "config.json").is_file()


def test_training_on_a_folder_whose_name_reads_as_markup(tmp_path, tiny_data) -> None:
    """A folder "scans[" holding a bad file "!]x.png" (first in order, so the sample grid
    meets it): the path reads "scans[/!]x.png", a Rich closing tag. The file is skipped and
    named literally; training goes on."""
    scans = tmp_path / "scans["
    shutil.copytree(tiny_data / "trainA", scans)
    (scans / "!]x.png").write_bytes(b"not an image")
    result = CliRunner().invoke(app, ["train", str(scans), str(tiny_data / "trainB"),
                                      "--runs-dir", str(tmp_path / "runs"), "--name", "m",
                                      "--max-steps", "2", *TRAIN])
    assert result.exit_code == 0, result.output
    assert "skipping unreadable image" in result.output and "scans[/!]x.png" in result.output
