"""Reliability, round two (translation): video writes that fail, names printed literally,
truncated clips, exact GIFs, per-file failures, --skip-existing for videos, SIGTERM and stale
temporaries, option checks, file modes, output checks before the work, and memory and
statistics for huge images. Each test reproduces a failure of an outside reliability test
(docs/reliability.md lists them)."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence
from typer.testing import CliRunner

from cyclegan_cli.atomic import new_file_mode
from cyclegan_cli.cli import app
from cyclegan_cli.evaluation.metrics import psnr
from cyclegan_cli.inference import ModelInfo, Translator, load_model
from cyclegan_cli.inference.gif import _frame_blocks, gif_frames, translate_gif, write_gif
from cyclegan_cli.inference.video import VideoError, VideoOptions, translate_video
from cyclegan_cli.shipped import weights_dir
from tests.conftest import tmpfs

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="video needs imageio-ffmpeg")

pytestmark = pytest.mark.torchfree  # runs in an install without torch

MODEL = weights_dir() / "golden_hour-AtoB.onnx"
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def cgan(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real command in a fresh process (no terminal: plain output)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "cyclegan_cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)


def clip(path: Path, seconds: float = 4.0, faststart: bool = True) -> Path:
    """A 12 fps 96×64 test clip with a tone track (the index first, as a web mp4 has it)."""
    subprocess.run([FFMPEG, "-y", "-v", "error", "-f", "lavfi", "-i",
                    f"testsrc=size=96x64:rate=12:duration={seconds}", "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={seconds}", "-pix_fmt", "yuv420p",
                    "-c:v", "libx264", "-c:a", "aac",
                    *(["-movflags", "+faststart"] if faststart and path.suffix == ".mp4"
                      else []), str(path)], check=True)
    return path


def photos(folder: Path, names: list[str], side: int = 24) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for name in names:
        out.append(folder / name)
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(out[-1])
    return out


@pytest.fixture(scope="module")
def model():
    return load_model(MODEL, threads=1)


# -- 1. a video write that fails is a failure -----------------------------------------------------
def test_a_failed_video_write_leaves_no_output_and_keeps_the_old_one(tmp_path, model) -> None:
    src = clip(tmp_path / "c.mp4", 1.0)
    dst = tmp_path / "out.mp4"
    with pytest.raises(VideoError, match=r"out\.mp4: the video could not be written \(.*bogus"):
        translate_video(model, src, dst, VideoOptions(codec="bogus"))
    assert not dst.exists() and not list(tmp_path.glob(".*.tmp"))
    dst.write_bytes(b"the old file")
    result = cgan("translate", "-m", MODEL, src, "-o", dst, "--codec", "bogus", "--quiet")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "c.mp4" in failed[0] and "could not be written" in failed[0]
    assert dst.read_bytes() == b"the old file" and not list(tmp_path.glob(".*.tmp"))


def test_a_video_on_a_full_disk_is_a_failure(tmp_path, model) -> None:
    src = clip(tmp_path / "c.mp4", 4.0)
    with tmpfs(tmp_path / "disk", "size=24k") as disk:
        with pytest.raises(VideoError, match="could not be written.*No space left"):
            translate_video(model, src, disk / "out.mp4", VideoOptions(quality=10))
        assert list(disk.iterdir()) == []


def test_video_outputs_get_the_usual_file_mode_and_quality_0_works(tmp_path, model) -> None:
    src = clip(tmp_path / "c.mp4", 1.0)
    assert translate_video(model, src, tmp_path / "q0.mp4", VideoOptions(quality=0)) == 12
    mode = stat.S_IMODE((tmp_path / "q0.mp4").stat().st_mode)
    assert mode == new_file_mode()  # 0666 less the umask, as images (not mkstemp's 0600)
    small = (tmp_path / "q0.mp4").stat().st_size
    translate_video(model, src, tmp_path / "q10.mp4", VideoOptions(quality=10))
    assert (tmp_path / "q10.mp4").stat().st_size > small  # 0 is the smallest, 10 the best


# -- 3. a truncated clip is a failure -------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_truncated_clip_is_a_failure(tmp_path, model, suffix) -> None:
    full = clip(tmp_path / f"full{suffix}")
    half = tmp_path / f"half{suffix}"
    half.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(VideoError, match=r"truncated or damaged: \d+ of about 48 frames"):
        translate_video(model, half, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()
    assert translate_video(model, full, tmp_path / "ok.mp4") == 48  # the whole one is fine
    # a sound clip whose audio runs longer than its video is not taken for truncated
    longer = tmp_path / f"long_audio{suffix}"
    subprocess.run([FFMPEG, "-y", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=96x64:rate=12:duration=2", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=3", "-pix_fmt", "yuv420p", "-c:v", "libx264",
                    "-c:a", "aac", str(longer)], check=True)
    assert translate_video(model, longer, tmp_path / "long.mp4") == 24


# -- 4. GIFs keep their frames and durations ------------------------------------------------------
def _gif(path: Path, frames: list[np.ndarray], durations: list[int], loop: int | None) -> Path:
    write_gif([_frame_blocks(f) for f in frames], (frames[0].shape[1], frames[0].shape[0]),
              durations, loop, path)
    return path


def _frames_of(path: Path) -> list[np.ndarray]:
    with Image.open(path) as im:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]


def test_gif_frame_count_durations_and_loop_are_kept(tmp_path, model) -> None:
    from skimage import data

    a, b = data.chelsea()[100:140, 150:206], data.coffee()[200:240, 300:356]
    cases = {  # identical neighbours (a pause) stay separate frames
        "anim": ([a, a, b, a], [100, 250, 40, 500], 0),
        "once": ([a, b], [70, 30], None),
        "still": ([a], [100], None),
    }
    for name, (frames, durations, loop) in cases.items():
        src = _gif(tmp_path / f"{name}.gif", frames, durations, loop)
        assert gif_frames(src) == (len(frames), durations, loop)
        out = tmp_path / f"{name}_out.gif"
        assert translate_gif(model, src, out) == len(frames)
        assert gif_frames(out) == (len(frames), durations, loop), name
        expected = model.translate_batch(_frames_of(src))
        for got, want in zip(_frames_of(out), expected, strict=True):
            assert np.abs(got.astype(int) - want).mean() < 4  # (a 256-colour palette)
    # through the command: an animated GIF in a folder stays one, frame for frame
    (tmp_path / "in").mkdir()
    shutil.copy(tmp_path / "anim.gif", tmp_path / "in" / "anim.gif")
    result = cgan("translate", "-m", MODEL, tmp_path / "in", "-o", tmp_path / "o", "--quiet")
    assert result.returncode == 0, result.stderr
    assert gif_frames(tmp_path / "o" / "anim.gif") == (4, [100, 250, 40, 500], 0)


def test_a_truncated_gif_keeps_its_frame_count(tmp_path, model) -> None:
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    src = _gif(tmp_path / "two.gif", frames, [80, 120], 0)
    cut = tmp_path / "cut.gif"
    cut.write_bytes(src.read_bytes()[:-1])  # the trailer byte is gone
    assert translate_gif(model, cut, tmp_path / "out.gif") == 2
    assert gif_frames(tmp_path / "out.gif")[:2] == (2, [80, 120])
    broken = tmp_path / "broken.gif"
    broken.write_bytes(src.read_bytes()[: src.stat().st_size * 2 // 3])  # inside frame 2
    with pytest.raises(VideoError, match="broken.gif"):
        translate_gif(model, broken, tmp_path / "b.gif")
    assert not (tmp_path / "b.gif").exists()


# -- 5. and 8. one video's failure spares the rest; --skip-existing for videos ------------------
def test_a_video_failure_does_not_stop_the_images(tmp_path) -> None:
    src = tmp_path / "in"
    photos(src, ["a.png", "b.png"])
    (src / "sub").mkdir()
    shutil.copy(clip(tmp_path / "c.mp4", 1.0), src / "sub" / "c.mp4")
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("a file where the video's folder should be")
    result = cgan("translate", "-m", MODEL, src / "sub" / "c.mp4", src / "a.png",
                  src / "b.png", "-o", out / "sub" / "deep", "--quiet")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "is a file, not a folder" in result.stderr  # found before any work
    gif = tmp_path / "in" / "g.gif"
    _gif(gif, [np.zeros((16, 16, 3), np.uint8)], [100], None)
    (out / "g.gif").mkdir()  # a folder in the way of one animated GIF's output
    result = cgan("translate", "-m", MODEL, gif, src / "a.png", src / "b.png", "-o", out,
                  "--quiet")
    assert result.returncode == 1, result.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "b.png"]  # still written
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "g.gif" in failed[0]


def test_skip_existing_leaves_videos_and_gifs_alone(tmp_path) -> None:
    video = clip(tmp_path / "c.mp4", 1.0)
    gif = _gif(tmp_path / "g.gif", [np.zeros((16, 16, 3), np.uint8)] * 2, [50, 50], 0)
    out = tmp_path / "out"
    assert cgan("translate", "-m", MODEL, video, gif, "-o", out, "--quiet").returncode == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    time.sleep(0.05)
    again = cgan("translate", "-m", MODEL, video, gif, "-o", out, "--quiet", "--skip-existing")
    assert again.returncode == 0, again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert again.stderr.count("skipped") == 2


# -- 9. SIGTERM and stale temporaries ------------------------------------------------------------
def test_sigterm_stops_translate_cleanly_and_says_how_to_continue(tmp_path) -> None:
    photos(tmp_path / "in", [f"p{i:03d}.png" for i in range(400)], side=96)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cyclegan_cli", "translate", "-m", MODEL,
                             tmp_path / "in", "-o", tmp_path / "out", "--quiet",
                             "--batch-size", "1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((tmp_path / "out").glob("*.png"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--skip-existing" in err
    written = list((tmp_path / "out").glob("*.png"))
    assert 3 <= len(written) < 400 and not list((tmp_path / "out").glob(".*"))
    for p in written:
        Image.open(p).load()  # complete files only


def test_stale_temporaries_of_our_outputs_are_removed(tmp_path) -> None:
    (a,) = photos(tmp_path / "in", ["a.png"])
    out = tmp_path / "out"
    out.mkdir()
    ours = out / ".a.png.k3j4h5g6.tmp"  # what a killed run leaves (atomic-write naming)
    ours.write_bytes(b"x" * 1000)
    other = out / ".b.png.abcdefgh.tmp"  # not an output of this run: another job's, maybe
    other.write_bytes(b"y")
    assert cgan("translate", "-m", MODEL, a, "-o", out, "--quiet").returncode == 0
    assert not ours.exists() and other.exists() and (out / "a.png").is_file()


# -- 10. option checks ---------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["--quality", "11"], ["--quality", "-1"], ["--fps", "nan"],
                                  ["--fps", "-1"], ["--fps", "0"], ["--stabilize-frames", "-1"],
                                  ["--stabilize-frames", "nan"], ["--every", "0"],
                                  ["--tile", "8"], ["--batch-size", "0"], ["--start", "-2"]])
def test_numeric_options_are_checked_up_front(tmp_path, args) -> None:
    (a,) = photos(tmp_path / "in", ["a.png"])
    result = CliRunner().invoke(app, ["translate", "-m", str(MODEL), str(a), "-o",
                                      str(tmp_path / "out"), *args])
    assert result.exit_code == 2 and "Invalid value" in result.output, result.output
    assert not (tmp_path / "out").exists()


# -- 12. output checks before any work; -o a file name -------------------------------------------
def test_output_problems_are_found_before_any_work(tmp_path) -> None:
    paths = photos(tmp_path / "in", ["a.png", "b.png"])
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    result = cgan("translate", "-m", MODEL, *paths, "-o", blocker, "--quiet")
    assert result.returncode == 1 and result.stderr.startswith("error:")
    assert "is a file, not a folder" in result.stderr and str(blocker) in result.stderr
    single = cgan("translate", "-m", MODEL, paths[0], "-o", tmp_path / "result.png",
                  "--quiet")
    assert single.returncode == 0 and (tmp_path / "result.png").is_file()  # the file itself
    assert not (tmp_path / "result.png").is_dir()


def test_a_read_only_output_is_named_not_its_temporary(tmp_path) -> None:
    paths = photos(tmp_path / "in", ["a.png"])
    with tmpfs(tmp_path / "ro", "size=64k,ro") as disk:
        result = cgan("translate", "-m", MODEL, *paths, "-o", disk, "--quiet")
        assert result.returncode == 1 and "read-only" in result.stderr, result.stderr
        assert ".tmp" not in result.stderr and str(disk) in result.stderr


# -- 2. names, paths and metadata print literally -------------------------------------------------
def test_markup_and_control_characters_in_names_print_literally(tmp_path) -> None:
    scans = tmp_path / "scans["
    good = photos(scans, ["ok.png"])
    bad_names = ["[red]bad.png", "]x.png", "\x1b[2Jclear.png", "two\nlines.png",
                 "\x1b]0;title\x07.png"]  # "scans[" + "/" + "]x.png" reads as markup "[/]"
    for name in bad_names:
        (scans / name).write_bytes(b"not an image")
    result = cgan("translate", "-m", MODEL, scans, "-o", tmp_path / "out[/]", "--quiet")
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert "Traceback" not in err and "MarkupError" not in err
    assert "\x1b" not in err and "\x07" not in err  # no control sequence reaches the terminal
    failed = [line for line in err.splitlines() if line.startswith("failed:")]
    assert len(failed) == len(bad_names)  # one line each: the newline did not split one
    text = "\n".join(failed)
    for shown in ("[red]bad.png", "scans[/]x.png", "\\x1b[2Jclear.png", "two\\nlines.png",
                  "\\x1b]0;title\\x07.png"):
        assert shown in text, shown
    assert (tmp_path / "out[/]" / good[0].name).is_file()
    assert "out[/]" in err


def test_metadata_prints_literally(tmp_path) -> None:
    import onnx

    m = onnx.load(str(MODEL))
    for prop in m.metadata_props:
        if prop.key.endswith("domain_from"):
            prop.value = "photo[/]"
        if prop.key.endswith("domain_to"):
            prop.value = "[bold]gold\x1b[31m"
    odd = tmp_path / "odd-AtoB.onnx"
    onnx.save(m, str(odd))
    (a,) = photos(tmp_path / "in", ["a.png"])
    result = cgan("translate", "-m", odd, a, "-o", tmp_path / "out", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "photo[/] → [bold]gold\\x1b[31m" in result.stderr


# -- 13. memory: no whole-image float buffer when tiling -----------------------------------------
def test_tiling_never_makes_a_whole_image_float_buffer() -> None:
    info = ModelInfo(direction="AtoB", domain_from="a", domain_to="b", architecture="test",
                     size_multiple=4)
    t = Translator(lambda batch: batch, info)  # the identity: only the image handling counts
    h, w = 1500, 1400
    img = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    tracemalloc.start()
    try:
        out = t.translate_array(img, tile=256)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.array_equal(out, img)
    # uint8 whole-image buffers (padded input, output: 3 bytes a pixel each) plus a row of
    # tiles; one float32 copy of the image alone would be 12 bytes a pixel
    assert peak < 7 * h * w + 16 * 2**20, peak / (h * w)


# -- 14. tiles with full-resolution statistics match the whole image ------------------------------
def test_tiled_output_matches_the_whole_image_on_a_trained_generator() -> None:
    from skimage import data

    parts = [np.asarray(Image.fromarray(x).resize((500, 500))) for x in
             (data.astronaut(), data.chelsea(), data.coffee(), data.astronaut()[:, ::-1])]
    row = np.concatenate(parts, axis=1)
    photo = np.concatenate([row, row[:, ::-1], np.roll(row, 700, axis=1)])  # 1500×2000
    t = load_model(MODEL, threads=2)  # the shipped, trained generator
    t.max_pixels = photo.shape[0] * photo.shape[1]
    whole = t.translate_array(photo)
    t.max_pixels = 1_500_000  # 3 MP is above it: translated in tiles
    tiled = t.translate_array(photo)
    assert psnr(tiled, whole) >= 50, psnr(tiled, whole)  # measured: identical to 1 level
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_gif_module_reads_only_gifs(tmp_path) -> None:
    bogus = tmp_path / "x.gif"
    bogus.write_bytes(b"GIF89a" + b"\x00" * 3)
    with pytest.raises(VideoError, match="x.gif: not a readable GIF"):
        gif_frames(bogus)
