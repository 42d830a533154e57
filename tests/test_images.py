"""Finding and decoding image files: list_images, load_rgb / open_image, probe_image."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from cyclegan_cli.data.images import list_images, load_rgb, open_image, probe_image, to_rgb
from cyclegan_cli.errors import DataError, ImageReadError

pytestmark = pytest.mark.torchfree  # runs in an install without torch

# --------------------------------------------------------------------------- helpers


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _blocks(h: int = 16, w: int = 24) -> np.ndarray:
    """Four flat colour quadrants (robust to JPEG/WebP loss when checked away from the edges)."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[: h // 2, : w // 2] = (220, 30, 30)
    arr[: h // 2, w // 2 :] = (30, 200, 40)
    arr[h // 2 :, : w // 2] = (20, 40, 210)
    arr[h // 2 :, w // 2 :] = (240, 240, 240)
    return arr


def _jpeg_bytes(arr: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95, **save)
    return buf.getvalue()


def _assert_rgb(arr: np.ndarray, h: int, w: int) -> None:
    assert isinstance(arr, np.ndarray)
    assert arr.shape == (h, w, 3)
    assert arr.dtype == np.uint8
    assert arr.flags["C_CONTIGUOUS"]


# --------------------------------------------------------------------------- list_images


def test_list_images_recursive_sorted_all_extensions(tmp_path: Path) -> None:
    wanted = [
        "a.jpg", "b.JPG", "c.jpeg", "d.png", "e.webp", "f.bmp", "g.tif", "h.TIFF", "i.Png",
        "sub/j.png", "sub/deep/k.jpeg", "z/l.webp", "archive.gif",
    ]
    for name in wanted:
        _touch(tmp_path / name)
    for name in [
        ".hidden.png", ".hiddendir/m.png", "sub/.cache/n.jpg", "notes.txt", "sub/readme.txt",
        "image.png.txt", "noext", "photo.jpg.bak",
    ]:
        _touch(tmp_path / name)
    (tmp_path / "folder.png").mkdir()  # a folder with an image-like name is not a file

    found = list_images(tmp_path)
    assert found == sorted(found)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == sorted(wanted)
    assert all(isinstance(p, Path) and p.is_file() for p in found)


def test_list_images_accepts_str_and_hidden_root(tmp_path: Path) -> None:
    root = tmp_path / ".data"  # only parts *below* the root count as hidden
    _touch(root / "one.png")
    assert list_images(str(root)) == [root / "one.png"]


def test_list_images_missing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "nope"
    with pytest.raises(DataError, match="not found") as info:
        list_images(folder)
    assert str(folder) in str(info.value)


def test_list_images_file_instead_of_folder(tmp_path: Path) -> None:
    file = _touch(tmp_path / "a.png")
    with pytest.raises(DataError, match="not a folder") as info:
        list_images(file)
    assert str(file) in str(info.value)


@pytest.mark.parametrize("contents", [[], ["notes.txt", "sub/more.txt", ".hidden.png"]])
def test_list_images_folder_without_images(tmp_path: Path, contents: list[str]) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    for name in contents:
        _touch(folder / name)
    with pytest.raises(DataError, match="no images") as info:
        list_images(folder)
    assert str(folder) in str(info.value)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- load_rgb: formats


@pytest.mark.parametrize(
    ("ext", "save", "exact"),
    [
        ("png", {}, True),
        ("bmp", {}, True),
        ("tif", {}, True),
        ("tiff", {"compression": "tiff_lzw"}, True),
        ("webp", {"lossless": True}, True),
        ("webp", {"quality": 95}, False),
        ("jpg", {"quality": 95}, False),
        ("jpeg", {"quality": 95}, False),
    ],
)
def test_load_rgb_rgb_formats(tmp_path: Path, ext: str, save: dict, exact: bool) -> None:
    src = _blocks()
    path = tmp_path / f"img.{ext}"
    Image.fromarray(src).save(path, **save)
    arr = load_rgb(path)
    _assert_rgb(arr, 16, 24)
    if exact:
        np.testing.assert_array_equal(arr, src)
    else:  # lossy: compare the inside of each flat quadrant
        for r, c in [(4, 6), (4, 18), (12, 6), (12, 18)]:
            diff = np.abs(arr[r - 2 : r + 2, c - 2 : c + 2].astype(int) - src[r, c].astype(int))
            assert diff.max() <= 12, (r, c, arr[r, c], src[r, c])


def test_load_rgb_grayscale_l(tmp_path: Path) -> None:
    gray = np.arange(0, 240, 10, dtype=np.uint8).reshape(4, 6)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    arr = load_rgb(tmp_path / "g.png")
    _assert_rgb(arr, 4, 6)
    np.testing.assert_array_equal(arr, np.repeat(gray[..., None], 3, axis=2))


def test_load_rgb_one_bit(tmp_path: Path) -> None:
    bits = np.zeros((8, 10), bool)
    bits[2:5, 3:7] = True
    Image.fromarray(bits).convert("1").save(tmp_path / "b.png")
    assert Image.open(tmp_path / "b.png").mode == "1"
    arr = load_rgb(tmp_path / "b.png")
    _assert_rgb(arr, 8, 10)
    np.testing.assert_array_equal(arr, np.repeat(bits[..., None], 3, axis=2) * np.uint8(255))


PALETTE = [(255, 0, 0), (0, 128, 255), (12, 34, 56), (250, 250, 0)]


def _palette_image(h: int = 6, w: int = 8) -> tuple[Image.Image, np.ndarray]:
    idx = (np.arange(h * w).reshape(h, w) % len(PALETTE)).astype(np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette([v for rgb in PALETTE for v in rgb])
    return img, idx


def test_load_rgb_palette_exact_colours(tmp_path: Path) -> None:
    img, idx = _palette_image()
    img.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    arr = load_rgb(tmp_path / "p.png")
    _assert_rgb(arr, 6, 8)
    np.testing.assert_array_equal(arr, np.array(PALETTE, np.uint8)[idx])


def test_load_rgb_palette_with_transparency(tmp_path: Path) -> None:
    img, idx = _palette_image()
    img.save(tmp_path / "pt.png", transparency=2)  # index 2 fully transparent
    with Image.open(tmp_path / "pt.png") as check:
        assert check.mode == "P" and "transparency" in check.info
    arr = load_rgb(tmp_path / "pt.png")
    _assert_rgb(arr, 6, 8)
    expected = np.array(PALETTE, np.uint8)[idx]
    expected[idx == 2] = 255  # composited over white
    np.testing.assert_array_equal(arr, expected)


def test_load_rgb_rgba_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (0, 0, 0, 0)  # fully transparent black -> white
    rgba[0, 1] = (10, 200, 30, 255)  # opaque keeps its colour
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black -> mid gray
    rgba[1, 0] = (200, 100, 0, 0)  # transparent colour -> still white
    rgba[1, 1] = (255, 0, 0, 128)  # half-transparent red -> pink
    rgba[1, 2] = (0, 0, 255, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    arr = load_rgb(tmp_path / "a.png").astype(int)
    _assert_rgb(arr.astype(np.uint8), 2, 3)
    assert arr[0, 0].tolist() == [255, 255, 255]
    assert arr[1, 0].tolist() == [255, 255, 255]
    assert arr[0, 1].tolist() == [10, 200, 30]
    assert arr[1, 2].tolist() == [0, 0, 255]
    assert np.abs(arr[0, 2] - 127).max() <= 1
    assert arr[1, 1, 0] == 255 and np.abs(arr[1, 1, 1:] - 127).max() <= 1
    assert load_rgb(tmp_path / "a.png").flags["C_CONTIGUOUS"]


def test_load_rgb_la_composited_over_white(tmp_path: Path) -> None:
    la = np.array([[[0, 0], [50, 255], [0, 128], [200, 0]]], np.uint8)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert Image.open(tmp_path / "la.png").mode == "LA"
    arr = load_rgb(tmp_path / "la.png")
    _assert_rgb(arr, 1, 4)
    assert arr[0, 0].tolist() == [255, 255, 255]
    assert arr[0, 1].tolist() == [50, 50, 50]
    assert np.abs(arr[0, 2].astype(int) - 127).max() <= 1
    assert arr[0, 3].tolist() == [255, 255, 255]


@pytest.mark.parametrize("ext", ["jpg", "tif"])
def test_load_rgb_cmyk(tmp_path: Path, ext: str) -> None:
    img = Image.new("CMYK", (16, 12), (0, 255, 255, 0))  # no cyan, full magenta+yellow: red
    img.paste((0, 0, 0, 255), (8, 0, 16, 12))  # right half: full black
    img.save(tmp_path / f"c.{ext}")
    assert Image.open(tmp_path / f"c.{ext}").mode == "CMYK"
    arr = load_rgb(tmp_path / f"c.{ext}").astype(int)
    _assert_rgb(arr.astype(np.uint8), 12, 16)
    r, g, b = arr[3:9, 1:5].reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 60 and b < 60, (r, g, b)
    assert arr[3:9, 11:15].max() < 60


def test_load_rgb_16bit_grayscale_png(tmp_path: Path) -> None:
    vals = np.array([[0, 257, 32768, 65535]], np.uint16)
    Image.fromarray(vals).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    arr = load_rgb(tmp_path / "g16.png").astype(int)
    _assert_rgb(arr.astype(np.uint8), 1, 4)
    assert (arr == arr[..., :1]).all()  # gray stays gray
    assert arr[0, 0, 0] == 0
    assert arr[0, 1, 0] == 1
    assert abs(arr[0, 2, 0] - 128) <= 1
    assert arr[0, 3, 0] == 255


def test_load_rgb_mode_i_holding_16bit_values(tmp_path: Path) -> None:
    """Pillow < 10.3 opens 16-bit PNGs as 32-bit "I"; 16-bit data there must not turn black."""
    vals = np.array([[0, 32768, 65535]], np.int32)
    Image.fromarray(vals).save(tmp_path / "i.tif")
    assert Image.open(tmp_path / "i.tif").mode == "I"
    arr = load_rgb(tmp_path / "i.tif").astype(int)
    _assert_rgb(arr.astype(np.uint8), 1, 3)
    assert arr[0, 0, 0] == 0 and abs(arr[0, 1, 0] - 128) <= 1 and arr[0, 2, 0] == 255


def test_to_rgb_mode_i_full_range_and_negative_do_not_wrap() -> None:
    vals = np.array([[-(2**31), -1, 0, 2**30, 2**31 - 1]], np.int32)
    arr = np.asarray(to_rgb(Image.fromarray(vals)))[0, :, 0].astype(int)
    assert arr.tolist()[:3] == [0, 0, 0]  # negatives clip to black, never wrap to white
    assert abs(arr[3] - 128) <= 1 and arr[4] == 255


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 0.5, 1.0], [0, 128, 255]),  # 0..1 floats scale up
        ([0.0, 128.0, 300.0], [0, 128, 255]),  # 0..255 floats clip
        ([-1.0, float("nan"), 1.0], [0, 0, 255]),  # a NaN does not disable the 0..1 scaling
    ],
)
def test_load_rgb_float_tiff(tmp_path: Path, values: list[float], expected: list[int]) -> None:
    path = tmp_path / "f.tif"
    try:
        Image.fromarray(np.array([values], np.float32)).save(path)
    except (OSError, KeyError, ValueError):  # pragma: no cover - depends on the Pillow build
        pytest.skip("this Pillow cannot write mode F TIFF")
    assert Image.open(path).mode == "F"
    arr = load_rgb(path)
    _assert_rgb(arr, 1, 3)
    assert arr[0, :, 0].tolist() == expected
    assert (arr == arr[..., :1]).all()


# --------------------------------------------------------------------------- EXIF orientation


def _oriented_jpeg(path: Path, orientation: int) -> None:
    """40x20 (w x h) blue JPEG with a red 10x10 block in its stored top-left corner."""
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:] = (0, 0, 230)
    arr[:10, :10] = (230, 0, 0)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(path, quality=95, exif=exif)


def _is_red(px: np.ndarray) -> bool:
    r, g, b = px.reshape(-1, 3).astype(int).mean(axis=0)
    return r > 180 and g < 60 and b < 60


def test_exif_orientation_rotate_90_cw(tmp_path: Path) -> None:
    path = tmp_path / "rot.jpg"
    _oriented_jpeg(path, 6)
    assert Image.open(path).size == (40, 20)  # stored landscape
    arr = load_rgb(path)
    _assert_rgb(arr, 40, 20)  # displayed portrait
    # rotating 90 degrees clockwise moves the stored top-left corner to the top-right
    assert _is_red(arr[2:8, 12:18])
    assert not _is_red(arr[2:8, 2:8])
    assert not _is_red(arr[32:38, 12:18])
    assert not _is_red(arr[32:38, 2:8])
    assert probe_image(path)[:2] == (40, 20)  # the probe reports stored size (header only)


def test_exif_orientation_normal_is_untouched(tmp_path: Path) -> None:
    path = tmp_path / "norm.jpg"
    _oriented_jpeg(path, 1)
    arr = load_rgb(path)
    _assert_rgb(arr, 20, 40)
    assert _is_red(arr[2:8, 2:8])


def test_exif_orientation_with_draft(tmp_path: Path) -> None:
    big = np.zeros((800, 1200, 3), np.uint8)
    big[:] = (0, 0, 230)
    big[:200, :200] = (230, 0, 0)
    img = Image.fromarray(big)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "bigrot.jpg", quality=90, exif=exif)
    arr = load_rgb(tmp_path / "bigrot.jpg", draft_size=200)
    assert arr.shape[0] > arr.shape[1]  # rotated to portrait
    assert min(arr.shape[:2]) >= 200 and max(arr.shape[:2]) < 1200
    h, w = arr.shape[:2]
    assert _is_red(arr[h // 40 : h // 10, w - w // 6 : w - w // 40])


# --------------------------------------------------------------------------- errors


def _error_files(tmp_path: Path) -> dict[str, Path]:
    jpeg = _jpeg_bytes(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    buf = io.BytesIO()
    Image.fromarray(_blocks(64, 64)).save(buf, format="PNG")
    png = buf.getvalue()
    (tmp_path / "adir.png").mkdir()
    return {
        "truncated_jpeg": _touch(tmp_path / "trunc.jpg", jpeg[: len(jpeg) // 2]),
        "truncated_png": _touch(tmp_path / "trunc.png", png[: len(png) // 2]),
        "text_as_jpg": _touch(tmp_path / "x.jpg", b"hello, I am not a picture\n" * 20),
        "empty_png": _touch(tmp_path / "x.png", b""),
        "header_only": _touch(tmp_path / "h.jpg", jpeg[:20]),
        "missing": tmp_path / "missing.png",
        "directory": tmp_path / "adir.png",
    }


ERROR_CASES = [
    "truncated_jpeg", "truncated_png", "text_as_jpg", "empty_png", "header_only", "missing",
    "directory",
]


@pytest.mark.parametrize("case", ERROR_CASES)
def test_load_rgb_errors_are_image_read_errors(tmp_path: Path, case: str) -> None:
    path = _error_files(tmp_path)[case]
    for call in (lambda: load_rgb(path), lambda: load_rgb(str(path), draft_size=32)):
        with pytest.raises(ImageReadError) as info:  # any other exception type fails the test
            call()
        err = info.value
        assert err.path == str(path)
        assert err.reason and "\n" not in err.reason
        msg = str(err)
        assert "\n" not in msg and msg.startswith(str(path)) and err.reason in msg


def test_specific_error_reasons(tmp_path: Path) -> None:
    files = _error_files(tmp_path)
    with pytest.raises(ImageReadError, match="truncated"):
        load_rgb(files["truncated_jpeg"])
    with pytest.raises(ImageReadError, match="not an image"):
        load_rgb(files["text_as_jpg"])
    with pytest.raises(ImageReadError, match="not found"):
        load_rgb(files["missing"])


def test_decompression_bomb_is_image_read_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (40, 20)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 800 px > 2x limit -> error
    for call in (load_rgb, probe_image):
        with pytest.raises(ImageReadError, match="too large") as info:
            call(path)
        assert info.value.path == str(path)


def test_open_image_returns_loaded_independent_image(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(_blocks()).save(path)
    img = open_image(path)
    path.unlink()  # the file handle is closed and the pixels are already in memory
    assert img.size == (24, 16)
    np.testing.assert_array_equal(np.asarray(img.convert("RGB")), _blocks())


# --------------------------------------------------------------------------- draft_size


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    y, x = np.mgrid[0:1200, 0:2000]
    arr = np.stack([x * 255 // 1999, y * 255 // 1199, (x + y) * 255 // 3198], axis=2)
    path = tmp_path_factory.mktemp("draft") / "big.jpg"
    Image.fromarray(arr.astype(np.uint8)).save(path, quality=85)
    return path


def test_draft_size_without_draft_is_full_size(big_jpeg: Path) -> None:
    _assert_rgb(load_rgb(big_jpeg), 1200, 2000)


@pytest.mark.parametrize("draft", [286, 300, 301, 599, 600, 150, 100])
def test_draft_size_decodes_smaller_but_not_below(big_jpeg: Path, draft: int) -> None:
    arr = load_rgb(big_jpeg, draft_size=draft)
    h, w = arr.shape[:2]
    assert min(h, w) >= draft
    assert (h, w) != (1200, 2000)  # every one of these allows at least a 1/2 scale decode
    assert abs(w / h - 2000 / 1200) < 0.02  # aspect ratio kept
    _assert_rgb(arr, h, w)


def test_draft_size_286_exact_scale(big_jpeg: Path) -> None:
    assert load_rgb(big_jpeg, draft_size=286).shape == (300, 500, 3)


@pytest.mark.parametrize("draft", [700, 1000, 1200, 5000])
def test_draft_size_too_large_for_reduction_keeps_full_size(big_jpeg: Path, draft: int) -> None:
    _assert_rgb(load_rgb(big_jpeg, draft_size=draft), 1200, 2000)


def test_draft_size_ignored_for_png(tmp_path: Path) -> None:
    Image.new("RGB", (400, 300), (1, 2, 3)).save(tmp_path / "p.png")
    _assert_rgb(load_rgb(tmp_path / "p.png", draft_size=50), 300, 400)


# --------------------------------------------------------------------------- probe_image


@pytest.mark.parametrize(
    ("mode", "ext", "expected_mode"),
    [
        ("RGB", "png", "RGB"), ("L", "jpg", "L"), ("RGBA", "webp", "RGBA"), ("CMYK", "tif", "CMYK"),
        ("P", "png", "P"), ("I;16", "png", "I;16"), ("RGB", "bmp", "RGB"),
    ],
)
def test_probe_image_size_and_mode(tmp_path: Path, mode: str, ext: str, expected_mode: str) -> None:
    path = tmp_path / f"p.{ext}"
    Image.new(mode, (40, 20)).save(path)
    assert probe_image(path) == (40, 20, expected_mode)
    assert probe_image(str(path)) == (40, 20, expected_mode)


def test_probe_image_does_not_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(_jpeg_bytes(_blocks(30, 50)))

    def no_decode(self, *args, **kwargs):
        raise AssertionError("probe_image decoded pixel data")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    assert probe_image(path) == (50, 30, "RGB")


def test_probe_image_reads_header_of_truncated_file(tmp_path: Path) -> None:
    path = _error_files(tmp_path)["truncated_jpeg"]
    assert probe_image(path) == (64, 64, "RGB")  # header intact, pixels never decoded
    with pytest.raises(ImageReadError):
        load_rgb(path)


@pytest.mark.parametrize("case", ["text_as_jpg", "empty_png", "header_only", "missing",
                                  "directory"])
def test_probe_image_errors(tmp_path: Path, case: str) -> None:
    path = _error_files(tmp_path)[case]
    with pytest.raises(ImageReadError) as info:
        probe_image(path)
    assert info.value.path == str(path)
    assert "\n" not in str(info.value)


def test_probe_image_random_garbage(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for i in range(5):
        path = _touch(tmp_path / f"g{i}.png", rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
        with pytest.raises(ImageReadError):
            probe_image(path)
        with pytest.raises(ImageReadError):
            load_rgb(path)
