"""The translation plan: what `cgan translate` does with its inputs, built without the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclegan_cli.errors import CganError
from cyclegan_cli.inference.plan import Stream, TranslationPlan, open_translator

pytestmark = pytest.mark.torchfree  # runs in an install without torch


@pytest.fixture
def inputs(tmp_path) -> Path:
    """photos/a.png, photos/sub/b.jpg, photos/anim.gif, clip.mp4 (a name only: the plan does
    not open videos), frames/f_1.png, frames/f_2.png."""
    rgb = np.zeros((8, 8, 3), np.uint8)
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    Image.fromarray(rgb).save(tmp_path / "photos" / "a.png")
    Image.fromarray(rgb).save(tmp_path / "photos" / "sub" / "b.jpg")
    frames = [Image.fromarray(rgb + i) for i in range(2)]
    frames[0].save(tmp_path / "photos" / "anim.gif", save_all=True, append_images=frames[1:])
    (tmp_path / "clip.mp4").write_bytes(b"")
    (tmp_path / "frames").mkdir()
    for i in (1, 2):
        Image.fromarray(rgb).save(tmp_path / "frames" / f"f_{i}.png")
    return tmp_path


def names(paths) -> list[str]:
    return [p.name for p in paths]


def test_images_videos_and_gifs_are_sorted_out(inputs) -> None:
    out = inputs / "out"
    plan = TranslationPlan.build([inputs / "photos", inputs / "clip.mp4"], out)
    assert [(j.src.name, j.dst.relative_to(out).as_posix()) for j in plan.images] == [
        ("a.png", "a.png"), ("b.jpg", "sub/b.jpg")]
    assert plan.videos == [Stream(inputs / "clip.mp4", out / "clip.mp4", "video"),
                           Stream(inputs / "photos" / "anim.gif", out / "anim.gif", "gif")]
    assert plan.sequences == [] and plan.failed == [] and plan.count == plan.total == 4


def test_gif_first_frames_are_still_images(inputs) -> None:
    plan = TranslationPlan.build([inputs / "photos"], inputs / "out", gif_frames="first")
    assert names(j.dst for j in plan.images) == ["a.png", "anim.png", "b.jpg"]
    assert plan.videos == []
    tif = TranslationPlan.build([inputs / "photos"], inputs / "o2", gif_frames="first",
                                fmt="tif")
    assert names(j.dst for j in tif.images) == ["a.tif", "anim.tif", "b.tif"]


def test_frame_folders_with_to_video_or_stabilize(inputs) -> None:
    folder = inputs / "frames"
    plain = TranslationPlan.build([folder], inputs / "out")
    assert names(j.src for j in plain.images) == ["f_1.png", "f_2.png"]  # just images
    movie = TranslationPlan.build([folder], inputs / "out", to_video=inputs / "f.mp4")
    assert movie.sequences == [Stream(folder, inputs / "f.mp4", "frames")] and not movie.images
    steady = TranslationPlan.build([folder], inputs / "out", stabilize=True)
    assert steady.sequences == [Stream(folder, inputs / "out" / "frames", "frames")]
    with pytest.raises(CganError, match="exactly one folder of frames"):
        TranslationPlan.build([folder, inputs / "photos"], inputs / "out",
                              to_video=inputs / "f.mp4")


def test_a_video_file_output_for_several_videos_fails_those_videos(inputs) -> None:
    shutil.copy(inputs / "clip.mp4", inputs / "second.mp4")
    plan = TranslationPlan.build([inputs / "clip.mp4", inputs / "second.mp4"],
                                 inputs / "out.mp4")
    assert plan.videos == [] and [(p.name, r) for p, r in plan.failed] == [
        ("clip.mp4", f"{inputs / 'out.mp4'}: several videos need an output folder, not a "
                     "file name"),
        ("second.mp4", f"{inputs / 'out.mp4'}: several videos need an output folder, not a "
                       "file name")]
    single = TranslationPlan.build([inputs / "clip.mp4"], inputs / "out.mp4")
    assert single.videos == [Stream(inputs / "clip.mp4", inputs / "out.mp4")]


def test_shards_cover_each_kind_once(inputs) -> None:
    every = [inputs / "photos", inputs / "clip.mp4"]
    whole = TranslationPlan.build(every, inputs / "out")
    parts = [TranslationPlan.build(every, inputs / "out", shard=f"{k}/3") for k in range(3)]
    assert all(p.total == whole.total and p.shard == (k, 3) for k, p in enumerate(parts))
    assert sorted(str(j.src) for p in parts for j in p.images) == sorted(
        str(j.src) for j in whole.images)
    assert sorted(str(v.src) for p in parts for v in p.videos) == sorted(
        str(v.src) for v in whole.videos)
    assert sum(p.count for p in parts) == whole.count
    with pytest.raises(CganError, match="expected K/N"):
        TranslationPlan.build(every, inputs / "out", shard="3/3")


def test_open_translator_by_name_and_direction() -> None:
    forward = open_translator("golden_hour")  # the file's own direction: AtoB by default
    assert forward.info.direction == "AtoB" and forward.info.domain_to == "golden hour"
    back = open_translator("golden_hour", "BtoA", provider="cpu")
    assert back.info.direction == "BtoA" and back.device == "CPU"
    with pytest.raises(CganError, match="model not found"):
        open_translator("no_such_model")
