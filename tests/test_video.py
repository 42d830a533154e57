"""Video translation: streaming through ffmpeg, kept fps/size/frames/audio, ranges, errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="video needs imageio-ffmpeg")

from cyclegan_cli.cli import app  # noqa: E402
from cyclegan_cli.inference import load_model  # noqa: E402
from cyclegan_cli.inference.resolve import SHIPPED_DIR  # noqa: E402
from cyclegan_cli.inference.video import (  # noqa: E402
    VideoError,
    VideoOptions,
    probe_video,
    translate_video,
)
from tests.conftest import needs_torch  # noqa: E402

pytestmark = pytest.mark.torchfree  # runs in an install without torch

W, H, FRAMES, FPS = 96, 64, 15, 12


def _pan_frames() -> list[np.ndarray]:
    """A slow pan across a sample photograph (known motion: 4 pixels a frame)."""
    from skimage import data

    photo = data.astronaut()
    return [np.ascontiguousarray(photo[100:100 + H, 40 + 4 * i:40 + 4 * i + W])
            for i in range(FRAMES)]


def _write(path: Path, frames: list[np.ndarray], fps: float = FPS) -> Path:
    writer = imageio_ffmpeg.write_frames(str(path), (frames[0].shape[1], frames[0].shape[0]),
                                         fps=fps, quality=9, macro_block_size=1)
    writer.send(None)
    for f in frames:
        writer.send(f)
    writer.close()
    return path


def _read(path: Path) -> list[np.ndarray]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in reader]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    plain = _write(root / "pan.mp4", _pan_frames())
    with_audio = root / "pan_tone.mp4"  # the same clip with a 440 Hz tone track
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi",
                    "-i", f"sine=frequency=440:duration={FRAMES / FPS}", "-i", str(plain),
                    "-c:v", "copy", "-c:a", "aac", "-shortest", str(with_audio)], check=True)
    return {"plain": plain, "audio": with_audio}


@pytest.fixture(scope="module")
def model():
    return load_model(SHIPPED_DIR / "golden_hour-AtoB.onnx", threads=1)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm", ".mov", ".avi"])
def test_video_keeps_frames_fps_size_and_audio(clips, model, tmp_path, suffix) -> None:
    dst = tmp_path / f"out{suffix}"
    assert translate_video(model, clips["audio"], dst) == FRAMES
    info = probe_video(dst)
    assert (info.width, info.height, info.frames) == (W, H, FRAMES)
    assert info.fps == pytest.approx(FPS)
    assert info.audio_codec  # the tone track came along
    assert [p.name for p in tmp_path.iterdir()] == [dst.name]  # no temporary left


def test_tile_reaches_video_frames_and_frame_folders(clips, model, tmp_path,
                                                     monkeypatch) -> None:
    """--tile is used for videos and frame folders too (it was ignored for them)."""
    seen: list[int | None] = []
    original = type(model).translate_batch

    def spy(self, arrays, tile=None):
        seen.append(tile)
        return original(self, arrays, tile)

    monkeypatch.setattr(type(model), "translate_batch", spy)
    translate_video(model, clips["plain"], tmp_path / "t.mp4", VideoOptions(tile=32))
    assert seen and set(seen) == {32}
    from PIL import Image

    from cyclegan_cli.errors import DataError
    from cyclegan_cli.inference.frames import translate_frames

    (tmp_path / "frames").mkdir()
    for i, frame in enumerate(_read(clips["plain"])[:3]):
        Image.fromarray(frame).save(tmp_path / "frames" / f"f_{i}.png")
    seen.clear()
    translate_frames(model, tmp_path / "frames", tmp_path / "out", VideoOptions(tile=48))
    assert seen and set(seen) == {48}
    with pytest.raises(DataError, match="at least 16"):  # the core's rule (limits.MIN_TILE)
        VideoOptions(tile=8).check()


def test_video_frames_are_the_models_translation(clips, model, tmp_path) -> None:
    dst = tmp_path / "out.mp4"
    translate_video(model, clips["plain"], dst, VideoOptions(quality=10))
    source = _read(clips["plain"])
    expected = model.translate_batch(source)
    got = _read(dst)
    assert len(got) == len(expected) == FRAMES
    diff = np.mean([np.abs(g.astype(int) - e).mean() for g, e in zip(got, expected,
                                                                       strict=True)])
    untouched = np.mean([np.abs(s.astype(int) - e).mean() for s, e in zip(source, expected,
                                                                          strict=True)])
    assert diff < 3 and untouched > 3 * diff, (diff, untouched)  # codec loss only
    assert probe_video(dst).audio_codec is None  # no audio in, none out


def test_gif_and_ranges(clips, model, tmp_path) -> None:
    gif = tmp_path / "out.gif"  # the tone track is dropped: GIF has no audio
    assert translate_video(model, clips["audio"], gif) == FRAMES
    assert probe_video(gif).frames == FRAMES
    back = tmp_path / "from_gif.avi"  # a GIF as input, and a chosen codec for the output
    assert translate_video(model, gif, back, VideoOptions(codec="mpeg4", quality=5)) == FRAMES
    assert probe_video(back).codec.startswith("mpeg4")
    part = tmp_path / "part.mp4"
    assert translate_video(model, clips["audio"], part, VideoOptions(start=2, end=12, every=2)) == 5
    info = probe_video(part)
    assert info.frames == 5 and info.fps == pytest.approx(FPS / 2)
    assert info.audio_codec is None  # audio only for whole clips


@pytest.mark.parametrize("content", [b"", b"not a video at all", "truncated"])
def test_unreadable_videos_are_clear_errors(clips, model, tmp_path, content) -> None:
    bad = tmp_path / "bad.mp4"
    data = clips["plain"].read_bytes()
    bad.write_bytes(data[: len(data) // 3] if content == "truncated" else content)
    with pytest.raises(VideoError, match="bad.mp4: not a readable video") as err:
        translate_video(model, bad, tmp_path / "out.mp4")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out.mp4").exists()


def test_clip_without_video_frames(model, tmp_path) -> None:
    audio_only = tmp_path / "tone.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi",
                    "-i", "sine=frequency=440:duration=0.5", "-c:a", "aac", str(audio_only)],
                   check=True)
    with pytest.raises(VideoError, match="tone.mp4: the file has no video stream"):
        translate_video(model, audio_only, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_bad_arguments(clips, model, tmp_path) -> None:
    with pytest.raises(VideoError, match="unknown video container"):
        translate_video(model, clips["plain"], tmp_path / "out.xyz")
    with pytest.raises(VideoError, match="overwrite the input"):
        translate_video(model, clips["plain"], clips["plain"])
    with pytest.raises(VideoError, match="no frames in the chosen range"):
        translate_video(model, clips["plain"], tmp_path / "late.mp4", VideoOptions(start=100))
    assert list(tmp_path.iterdir()) == []


def test_interrupted_translation_leaves_nothing_under_the_final_name(clips, model, tmp_path):
    dst = tmp_path / "out.mp4"
    dst_old = b"an earlier result"
    dst.write_bytes(dst_old)

    def stop(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        translate_video(model, clips["plain"], dst, VideoOptions(batch_size=4), on_progress=stop)
    assert dst.read_bytes() == dst_old  # the old file is untouched, no partial output
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_cli_translates_videos_and_reports_bad_ones(clips, tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "golden.mp4"
    result = runner.invoke(app, ["translate", "-m", "golden_hour", "--direction", "AtoB",
                                 str(clips["audio"]), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert probe_video(out).frames == FRAMES
    bad = tmp_path / "bad.mp4"
    bad.write_text("hello")
    result = runner.invoke(app, ["translate", "-m", "golden_hour", "--direction", "AtoB",
                                 str(bad), str(clips["plain"]), "-o", str(tmp_path / "many"),
                                 "-q", "--every", "3"])
    assert result.exit_code == 1
    assert "bad.mp4" in result.output and "not a readable video" in result.output
    assert probe_video(tmp_path / "many" / "pan.mp4").frames == 5


# -- stabilisation and the flicker metric -------------------------------------------------------
from cyclegan_cli.inference.stabilize import Stabilizer, flicker  # noqa: E402

PAN = 4  # pixels a frame: a multiple of the generators' stride, so motion alone is exact


def _pan(n: int = 24, w: int = 128, h: int = 96) -> list[np.ndarray]:
    from skimage import data

    photo = data.astronaut()
    return [np.ascontiguousarray(photo[100:100 + h, 40 + PAN * i:40 + PAN * i + w])
            for i in range(n)]


def _stabilized(translator, frames: list[np.ndarray], window: float) -> list[np.ndarray]:
    stabilizer, out = Stabilizer(translator, window), []
    for i in range(0, len(frames), 8):
        out += stabilizer.translate(frames[i:i + 8])
    return out


def test_flicker_metric() -> None:
    frames = _pan(6)
    assert flicker(frames, frames, (0, PAN)) == 0  # the pan itself is not flicker
    jitter = [np.clip(f.astype(int) + (6 if i % 2 else -6), 0, 255).astype(np.uint8)
              for i, f in enumerate(frames)]
    assert flicker(frames, jitter, (0, PAN)) > 0.3
    with pytest.raises(ValueError):
        flicker(frames[:1], frames[:1])
    with pytest.raises(ValueError, match="do not change"):
        flicker([frames[0]] * 3, frames[:3])


def test_stabilize_with_a_one_frame_window_is_plain_translation(model) -> None:
    frames = _pan(5)
    plain = model.translate_batch(frames)
    same = _stabilized(model, frames, 1.0)
    assert max(np.abs(a.astype(int) - b).max() for a, b in zip(plain, same, strict=True)) <= 1


@pytest.mark.parametrize("which", ["shipped", pytest.param("random", marks=needs_torch)])
def test_stabilize_reduces_flicker(model, tmp_path, which) -> None:
    translator = model
    if which == "random":  # an untrained plain ResNet: strong per-frame normalisation effects
        from cyclegan_cli.inference import ModelInfo
        from tests.test_inference import HORSE, export, make_net

        info = ModelInfo(**HORSE, architecture="resnet_6blocks", size_multiple=4)
        translator = load_model(export(make_net("resnet_6blocks", 8), tmp_path / "r.onnx",
                                       info), threads=1)
    frames = _pan()
    plain = flicker(frames, translator.translate_batch(frames), (0, PAN))
    steady = flicker(frames, _stabilized(translator, frames, 8.0), (0, PAN))
    assert steady < 0.9 * plain, (plain, steady)  # measured: 0.0131 -> 0.0083, 0.242 -> 0.203


@needs_torch
def test_stabilize_needs_instance_norm(tmp_path) -> None:
    from cyclegan_cli.errors import ModelError
    from cyclegan_cli.inference import ModelInfo
    from tests.test_inference import HORSE, export, make_net

    info = ModelInfo(**HORSE, architecture="resnet_6blocks", size_multiple=4)
    plain = load_model(export(make_net("resnet_6blocks", 8, norm="none"), tmp_path / "n.onnx",
                              info), threads=1)
    with pytest.raises(ModelError, match="instance normalisation"):
        Stabilizer(plain)


def test_cli_stabilize(clips, tmp_path) -> None:
    out = tmp_path / "steady.mp4"
    result = CliRunner().invoke(app, ["translate", "-m", "golden_hour", "--direction", "AtoB",
                                      str(clips["plain"]), "-o", str(out), "-q", "--stabilize",
                                      "--stabilize-frames", "4"])
    assert result.exit_code == 0, result.output
    assert probe_video(out).frames == FRAMES


# -- folders of numbered frames -----------------------------------------------------------------
def _frame_folder(root: Path, n: int = 12) -> Path:
    from PIL import Image

    folder = root / "frames"
    folder.mkdir()
    for i, frame in enumerate(_pan(n, 96, 64)):  # names that sort wrongly as plain text
        Image.fromarray(frame).save(folder / f"frame_{i + 1}.png")
    return folder


def test_natural_order() -> None:
    from cyclegan_cli.inference.frames import natural_key

    names = ["frame_10.png", "frame_2.png", "frame_1.png", "Frame_3.png"]
    assert sorted(names, key=lambda n: natural_key(Path(n))) == [
        "frame_1.png", "frame_2.png", "Frame_3.png", "frame_10.png"]


def test_frame_folder_to_frames_and_to_video(model, tmp_path) -> None:
    from cyclegan_cli.data.images import load_rgb
    from cyclegan_cli.inference.frames import frame_files, translate_frames

    folder = _frame_folder(tmp_path)
    files = frame_files(folder)
    assert [p.name for p in files][:3] == ["frame_1.png", "frame_2.png", "frame_3.png"]
    out = tmp_path / "out"
    assert translate_frames(model, folder, out, VideoOptions(batch_size=5)) == 12
    for p in files:  # each frame is its own translation, under the same name
        np.testing.assert_array_equal(load_rgb(out / p.name),
                                      model.translate_array(load_rgb(p)))
    clip = tmp_path / "clip.mp4"
    assert translate_frames(model, folder, clip, VideoOptions(fps=10)) == 12
    info = probe_video(clip)
    assert (info.frames, info.width, info.height, info.fps) == (12, 96, 64, 10.0)
    # the video's frames are in natural order: each is closest to its own translated frame
    got = _read(clip)
    expected = [load_rgb(out / p.name) for p in files]
    for i, g in enumerate(got):
        errors = [np.abs(g.astype(int) - e).mean() for e in expected]
        assert int(np.argmin(errors)) == i


def test_frame_folder_round_trip_through_the_cli(tmp_path) -> None:
    folder = _frame_folder(tmp_path, 6)
    runner = CliRunner()
    clip = tmp_path / "clip.mp4"
    result = runner.invoke(app, ["translate", "-m", "golden_hour", "--direction", "AtoB",
                                 str(folder), "--to-video", str(clip), "--fps", "8", "-q"])
    assert result.exit_code == 0, result.output
    assert probe_video(clip).frames == 6 and probe_video(clip).fps == 8.0
    steady = tmp_path / "steady"
    result = runner.invoke(app, ["translate", "-m", "golden_hour", "--direction", "AtoB",
                                 str(folder), "-o", str(steady), "--stabilize", "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (steady / "frames").iterdir()) == sorted(
        p.name for p in folder.iterdir())
    (folder / "odd.png").write_bytes((folder / "frame_1.png").read_bytes()[:10])
    result = runner.invoke(app, ["translate", "-m", "golden_hour", "--direction", "AtoB",
                                 str(folder), "--to-video", str(tmp_path / "bad.mp4"), "-q"])
    assert result.exit_code == 1 and "odd.png" in result.output
    assert not (tmp_path / "bad.mp4").exists()


def test_read_only_containers_are_translated_to_mp4(clips, tmp_path) -> None:
    import shutil

    flv = tmp_path / "clip.flv"  # ffmpeg reads it by content; the output becomes mp4
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i",
                    str(clips["plain"]), "-c:v", "flv1", str(flv)], check=True)
    result = CliRunner().invoke(app, ["translate", "-m", "golden_hour", "--direction", "AtoB",
                                      str(flv), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    assert probe_video(tmp_path / "out" / "clip.mp4").frames == FRAMES
    shutil.rmtree(tmp_path / "out")


def test_memory_stays_flat_with_clip_length(tmp_path) -> None:
    """Peak memory of a 10× longer clip is within a few MB of the short one's (streaming)."""
    import sys

    script = (
        "import resource, sys\n"
        "from cyclegan_cli.inference import load_model\n"
        "from cyclegan_cli.inference.resolve import SHIPPED_DIR\n"
        "from cyclegan_cli.inference.video import translate_video\n"
        "t = load_model(SHIPPED_DIR / 'golden_hour-AtoB.onnx', threads=1)\n"
        "n = translate_video(t, sys.argv[1], sys.argv[2])\n"
        "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    peaks = {}
    for n in (16, 160):
        frames = [np.ascontiguousarray(np.roll(_pan(1, 256, 144)[0], i, axis=1))
                  for i in range(n)]
        src = _write(tmp_path / f"c{n}.mp4", frames, fps=25)
        run = subprocess.run([sys.executable, "-c", script, str(src), str(tmp_path / f"o{n}.mp4")],
                             capture_output=True, text=True, timeout=300, check=True)
        count, peak_kb = map(int, run.stdout.split())
        assert count == n
        peaks[n] = peak_kb / 1024
    # 144 more frames of 256×144 held in memory would be 16 MB of uint8 alone
    assert peaks[160] < peaks[16] + 12, peaks


@needs_torch
def test_stabilize_with_the_torch_backend(tiny_data, tmp_path) -> None:
    import os

    from rich.console import Console

    from cyclegan_cli.training.loop import train
    from tests.conftest import tiny_config

    cfg = tiny_config(tiny_data, tmp_path / "runs", max_steps=2)
    run = train(cfg, console=Console(file=open(os.devnull, "w")), quiet=True).run_dir  # noqa: SIM115
    translator = load_model(run, backend="torch", direction="AtoB")
    frames = _pan(5, 96, 64)
    plain = translator.translate_batch(frames)
    one = _stabilized(translator, frames, 1.0)  # per-frame statistics through the hooks
    assert max(np.abs(a.astype(int) - b).max() for a, b in zip(plain, one, strict=True)) <= 1
    steady = _stabilized(translator, frames, 8.0)
    assert max(np.abs(a.astype(int) - b).mean() for a, b in zip(plain, steady,
                                                                strict=True)) > 0
