"""Translating large images in overlapping tiles blended with raised-cosine weights.

Tiles are all the same size, so they are run in batches; output rows are finalised as soon as
no later tile touches them, so memory stays proportional to one row of tiles (plus the output).
Imports numpy only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Same-size HxWx3 uint8 tiles -> NxHxWx3 float32 in [-1, 1].
TileForward = Callable[[list[np.ndarray]], np.ndarray]
# Told (tiles done, tiles in all) after each forward call, from the translating thread.
Progress = Callable[[int, int], None]


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Evenly spaced tile offsets covering ``length``; neighbours overlap by >= ``overlap``.

    With ``align`` > 1 (``length`` and ``tile`` multiples of it) every offset is a multiple of
    ``align``: a network that downsamples by ``align`` then sees each tile on the same pixel
    grid as the whole image, so tiles reproduce the untiled output instead of a shifted one.
    """
    if length <= tile:
        return [0]
    step = max(align, tile - overlap - (align - 1))  # room for rounding to ``align``
    count = max(2, -(-(length - tile) // step) + 1)  # ceil
    span = length - tile
    return [round(i * span / (count - 1) / align) * align for i in range(count)]


def _rise(t: np.ndarray) -> np.ndarray:
    """Raised cosine from 0 (t <= 0) to 1 (t >= 1); ``_rise(t) + _rise(1 - t) == 1``."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(t, 0.0, 1.0))


def axis_weights(starts: list[int], size: int, overlap: int) -> list[np.ndarray]:
    """1-D blend weights of each tile along one axis; at every position they sum to one.

    Each pair of neighbours hands over with a raised cosine of (at most) ``overlap`` pixels
    centred in the region they share; a tile's pixels beyond the hand-over get weight zero, so
    the pixels nearest a tile's inner edges (worst affected by its border) are not used.
    """
    centers = np.arange(size, dtype=np.float64) + 0.5
    weights = [np.ones(size, dtype=np.float64) for _ in starts]
    for i in range(len(starts) - 1):
        a, b = starts[i + 1], starts[i] + size  # the region tiles i and i+1 share
        mid = (a + b) / 2
        # no longer than the step, so consecutive hand-overs never overlap
        ramp = min(overlap, b - a, starts[i + 1] - starts[i])
        pos = centers + starts[i + 1]  # global positions of tile i+1's pixels
        if ramp > 0:
            rise = _rise((pos - (mid - ramp / 2)) / ramp)
        else:
            rise = (pos >= mid).astype(np.float64)
        weights[i + 1] *= rise
        pos = centers + starts[i]
        if ramp > 0:
            weights[i] *= 1.0 - _rise((pos - (mid - ramp / 2)) / ramp)
        else:
            weights[i] *= (pos < mid).astype(np.float64)
    return [w.astype(np.float32) for w in weights]


def translate_tiled(rgb: np.ndarray, forward: TileForward, tile: int, overlap: int,
                    batch: int = 4, align: int = 1,
                    crop: tuple[int, int, int, int] | None = None,
                    progress: Progress | None = None) -> np.ndarray:
    """Translate HxWx3 uint8 ``rgb`` tile by tile; returns uint8, HxWx3 or the ``crop``
    (top, left, height, width) of it.

    ``tile`` is the tile side (tiles are smaller only where the image is), ``overlap`` the
    minimum overlap of neighbours, ``batch`` how many tiles one ``forward`` call gets, and
    ``align`` the multiple every tile offset is rounded to (see :func:`tile_starts`).
    ``progress`` is told (done, total) tiles after every ``forward`` call.

    Only one row of tiles is ever held as floats: the blended rows are rounded to uint8 as
    soon as no later tile touches them, so the whole image exists only as uint8 (its input
    and its output), never as a float array.
    """
    h, w = rgb.shape[:2]
    top, left, out_h, out_w = crop or (0, 0, h, w)
    th, tw = min(tile, h), min(tile, w)
    overlap = max(0, min(overlap, tile // 2))
    ys, xs = tile_starts(h, tile, overlap, align), tile_starts(w, tile, overlap, align)
    wy, wx = axis_weights(ys, th, overlap), axis_weights(xs, tw, overlap)
    out = np.empty((out_h, out_w, 3), dtype=np.uint8)
    done_tiles, total = 0, len(ys) * len(xs)
    lo = 0  # first row not yet written; ``acc`` starts there
    acc = np.zeros((0, w, 3), dtype=np.float32)
    wsum = np.zeros((0, w), dtype=np.float32)
    for row, y0 in enumerate(ys):
        grow = y0 + th - lo - acc.shape[0]
        if grow > 0:
            acc = np.concatenate([acc, np.zeros((grow, w, 3), np.float32)])
            wsum = np.concatenate([wsum, np.zeros((grow, w), np.float32)])
        for first in range(0, len(xs), batch):
            group = xs[first:first + batch]
            results = forward([rgb[y0:y0 + th, x0:x0 + tw] for x0 in group])
            for j, x0 in enumerate(group):
                weight = np.outer(wy[row], wx[first + j])
                acc[y0 - lo:y0 - lo + th, x0:x0 + tw] += results[j] * weight[:, :, None]
                wsum[y0 - lo:y0 - lo + th, x0:x0 + tw] += weight
            done_tiles += len(group)
            if progress is not None:
                progress(done_tiles, total)
        done = ys[row + 1] if row + 1 < len(ys) else h
        n = done - lo
        a, b = max(lo, top), min(done, top + out_h)  # the finished rows inside the crop
        if a < b:
            rows = acc[a - lo:b - lo, left:left + out_w] / wsum[a - lo:b - lo, left:left + out_w,
                                                                None]
            out[a - top:b - top] = _to_uint8(rows)
        acc, wsum, lo = acc[n:], wsum[n:], done
    return out


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """[-1, 1] -> uint8, as :func:`~cyclegan_cli.inference.imageops.float_to_uint8`."""
    np.clip(x, -1.0, 1.0, out=x)
    x += 1.0
    x *= 127.5
    return np.rint(x, out=x).astype(np.uint8)
