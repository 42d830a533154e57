"""Steadier video: instance-norm statistics smoothed over time instead of taken per frame.

Run frame by frame, a CycleGAN generator re-estimates every instance norm's mean and variance
on each frame, so tones and textures shift a little from one frame to the next (flicker). The
:class:`Stabilizer` measures each frame's statistics (the collect pass of
:mod:`~cyclegan_cli.inference.norm_stats`), keeps an exponential moving average over the
frames, and translates each frame with the averaged statistics (the apply pass). Torch-free.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from cyclegan_cli.errors import ModelError
from cyclegan_cli.inference.imageops import float_to_uint8
from cyclegan_cli.inference.norm_stats import Stats, average


class Stabilizer:
    """Translates a stream of frames with statistics averaged over about ``frames`` frames.

    ``frames`` is the time constant of the moving average (each new frame gets weight
    1/frames); 1 means no smoothing. Feed the frames in order with :meth:`translate`.
    """

    def __init__(self, translator, frames: float = 8.0, tile: int | None = None) -> None:
        if frames < 1:
            raise ValueError("the stabilisation window must be at least 1 frame")
        if translator.norm is None or getattr(translator.norm, "count", 1) == 0:
            raise ModelError("--stabilize needs a model with instance normalisation (a float32 "
                             "cyclegan-cli generator)")
        self.translator = translator
        self.tile = tile
        self.weight = 1.0 / frames
        self.state: Stats | None = None

    def update(self, frame: np.ndarray) -> Stats:
        """Fold one frame's statistics into the running average; returns the average."""
        own = self.translator.image_stats(frame)
        if own is None:  # pragma: no cover - excluded in __init__
            raise ModelError("the model offers no normalisation statistics")
        self.state = own if self.state is None else average([self.state, own],
                                                            [1 - self.weight, self.weight])
        return self.state

    def translate(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Translate the next same-size HxWx3 uint8 frames (in order) -> uint8 frames."""
        t = self.translator
        smoothed = [self.update(f) for f in frames]
        h, w = frames[0].shape[:2]
        if self.tile is not None or h * w > t.max_pixels:  # tiled, a frame at a time
            return [t.translate_rgb(f, self.tile, stats=s)
                    for f, s in zip(frames, smoothed, strict=True)]
        stacked = [np.concatenate([s[k] for s in smoothed]) for k in range(len(smoothed[0]))]
        return list(float_to_uint8(t.forward(list(frames), stacked)))


def frame_translator(translator, stabilize: float | None, tile: int | None = None
                     ) -> Callable[[Sequence[np.ndarray]], list[np.ndarray]]:
    """What translates a video's successive batches of frames: the translator's own
    ``translate_batch``, or with ``stabilize`` (a window in frames) a :class:`Stabilizer`;
    in tiles of ``tile`` when given."""
    if stabilize:
        return Stabilizer(translator, stabilize, tile).translate
    return functools.partial(translator.translate_batch, tile=tile)


def flicker(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray],
            motion: tuple[int, int] = (0, 0), margin: int = 8) -> float:
    """Temporal flicker of a translated clip whose true motion is known.

    ``motion`` = (dy, dx): how far the view moves each frame (a pan by +dx shows at column c
    of frame t+1 what column c+dx of frame t showed). Each output frame is compared with the
    previous one moved by that motion, so only changes the input does not explain remain; the
    mean absolute difference (0-255, ``margin`` pixels off every border) is divided by the
    input's mean absolute change between frames. 0 means perfectly steady output.
    """
    if len(inputs) != len(outputs) or len(inputs) < 2:
        raise ValueError("need the same number (>= 2) of input and output frames")
    dy, dx = motion
    h, w = outputs[0].shape[:2]
    m = margin

    def steady_change(prev: np.ndarray, cur: np.ndarray) -> float:
        a = prev[max(dy, 0) + m:h + min(dy, 0) - m, max(dx, 0) + m:w + min(dx, 0) - m]
        b = cur[max(-dy, 0) + m:h + min(-dy, 0) - m, max(-dx, 0) + m:w + min(-dx, 0) - m]
        if a.size == 0:
            raise ValueError("the motion and margin leave no overlap between frames")
        return float(np.abs(b.astype(np.float32) - a.astype(np.float32)).mean())

    base = float(np.mean([np.abs(b.astype(np.float32) - a.astype(np.float32)).mean()
                          for a, b in zip(inputs[:-1], inputs[1:], strict=True)]))
    if base == 0:
        raise ValueError("the input frames do not change: flicker is undefined")
    return float(np.mean([steady_change(a, b) for a, b in zip(outputs[:-1], outputs[1:],
                                                               strict=True)])) / base
