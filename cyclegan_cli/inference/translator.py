"""The :class:`Translator`: one generator (ONNX or torch backend) plus the shared image code.

Imports numpy, pillow, onnxruntime and the standard library; the torch backend is imported
only when asked for.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cyclegan_cli.errors import DataError, ModelError
from cyclegan_cli.inference.imageops import (
    float_to_uint8,
    from_model,
    image_to_array,
    join_channels,
    pad_image,
    split_channels,
    to_model,
)
from cyclegan_cli.inference.limits import (
    MAX_PIXELS,
    OVERLAP,
    TILE,
    TILE_BATCH,
    check_tile,
    stats_pixels,
)
from cyclegan_cli.inference.metadata import DIRECTIONS, OUTPUT_NAME, ModelInfo, only_direction
from cyclegan_cli.inference.norm_stats import NormStats, OnnxNormStats, Stats
from cyclegan_cli.inference.tiling import Progress, translate_tiled

Backend = Callable[[np.ndarray], np.ndarray]  # NCHW float32 in [-1, 1] -> same



class Translator:
    """Translates images with a generator ``run`` described by ``info``.

    ``run`` takes and returns NCHW float32 RGB in [-1, 1]; everything else (modes, alpha,
    padding to the size multiple, tiling) happens here, the same for every backend.
    Images with more than ``max_pixels`` pixels are translated in tiles of ``tile_size``.
    With a ``norm`` (see :mod:`~cyclegan_cli.inference.norm_stats`) and ``global_norm``, every
    tile is normalised with the statistics of the whole image (downscaled to ``max_pixels``
    when larger), so tiles agree in tone with each other and with untiled output.
    """

    def __init__(self, run: Backend, info: ModelInfo, *, backend: str = "custom",
                 source: str = "", device: str = "", max_pixels: int = MAX_PIXELS,
                 tile_size: int = TILE,
                 overlap: int = OVERLAP, tile_batch: int = TILE_BATCH,
                 norm: NormStats | None = None, global_norm: bool = True) -> None:
        self.run = run
        self.norm = norm
        self.global_norm = global_norm
        self.info = info
        self.backend = backend
        self.source = source
        self.device = device  # what runs the network, for messages ("CPU", "CUDA", "cuda:0")
        self.max_pixels = max_pixels
        self.tile_size = tile_size
        self.overlap = overlap
        self.tile_batch = tile_batch
        self.notes: list[str] = []  # warnings for the user (e.g. a model without metadata)

    def __repr__(self) -> str:
        i = self.info
        return (f"Translator({self.source or i.architecture!s}, {i.direction} "
                f"{i.domain_from}->{i.domain_to}, backend={self.backend})")

    # -- core ----------------------------------------------------------------------------------
    def forward(self, images: Sequence[np.ndarray], stats: Stats | None = None) -> np.ndarray:
        """Same-size HxWx3 uint8 images -> NxHxWx3 float32 in [-1, 1] (one backend call),
        normalised with ``stats`` when given (needs ``norm``)."""
        h, w = images[0].shape[:2]
        if any(img.shape[:2] != (h, w) for img in images):
            raise DataError("images in one batch must have the same size")
        padded = [pad_image(img, self.info.size_multiple, self.min_side) for img in images]
        top, left = padded[0][1]
        x = to_model([p for p, _ in padded])
        if stats is not None and self.norm is not None:
            y = np.asarray(self.norm.apply(x, stats))
        else:
            y = np.asarray(self.run(x))
        if y.shape != x.shape:
            raise ModelError(f"{self.source or 'model'}: output shape {tuple(y.shape)} does not "
                             f"match input shape {tuple(x.shape)}")
        return from_model(y)[:, top:top + h, left:left + w]

    @property
    def min_side(self) -> int:
        """Smallest input side the network accepts: its size multiple, and at least 8 (a ResNet
        reflect-pads its 1/4-scale features, which must be 2 pixels or more)."""
        return max(self.info.size_multiple, 8)

    def tile_for(self, tile: int | None) -> int:
        """The tile side actually used: ``tile`` (or the default) rounded up to the multiple.
        DataError for a tile under :data:`MIN_TILE`."""
        m = self.info.size_multiple
        side = max(self.min_side, check_tile(tile) or self.tile_size)
        return -(-side // m) * m

    def translate_rgb(self, rgb: np.ndarray, tile: int | None = None,
                      stats: Stats | None = None, progress: Progress | None = None
                      ) -> np.ndarray:
        """HxWx3 uint8 -> HxWx3 uint8, tiled when ``tile`` is given or the image has more
        than ``max_pixels`` pixels; normalised with ``stats`` when given. A tiled image is
        never held as floats as a whole (see :func:`translate_tiled`). ``progress`` is told
        (steps done, steps in all): one per tile, plus one for the whole-image statistics
        pass where there is one; an untiled image is one step."""
        h, w = rgb.shape[:2]
        if tile is None and h * w <= self.max_pixels:
            out = float_to_uint8(self.forward([rgb], stats)[0])
            if progress is not None:
                progress(1, 1)
            return out
        side = self.tile_for(tile)
        m = self.info.size_multiple
        # Pad as the untiled path does, so tiles sit on the whole image's pixel grid.
        padded, (top, left) = pad_image(rgb, m, self.min_side)
        forward: Callable[[list[np.ndarray]], np.ndarray] = self.forward
        tiled_progress = progress
        if stats is None and self.global_norm:
            stats = self.image_stats(padded)
            if progress is not None and stats is not None:  # that pass was one step more
                def tiled_progress(done: int, total: int) -> None:
                    progress(done + 1, total + 1)
        if stats is not None:
            forward = functools.partial(self.forward, stats=stats)
        return translate_tiled(padded, forward, side, min(self.overlap, side // 2),
                               self.tile_batch, align=m, crop=(top, left, h, w),
                               progress=tiled_progress)

    def image_stats(self, rgb: np.ndarray) -> Stats | None:
        """Instance-norm statistics of the whole image, or None when the backend offers none
        or the model has no instance norm. They are exact (taken at full resolution) when
        that pass fits its memory budget (:func:`~cyclegan_cli.inference.limits.stats_pixels`);
        otherwise they come from a copy downscaled to ``max_pixels`` (a bounded pass)."""
        if self.norm is None or getattr(self.norm, "count", 1) == 0:
            return None
        h, w = rgb.shape[:2]
        if h * w > stats_pixels(getattr(self.norm, "channels", 64), self.max_pixels):
            scale = (self.max_pixels / (h * w)) ** 0.5
            size = (max(self.min_side, int(w * scale)), max(self.min_side, int(h * scale)))
            rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))
        padded, _ = pad_image(rgb, self.info.size_multiple, self.min_side)
        return self.norm.collect(to_model([padded]))

    # -- public --------------------------------------------------------------------------------
    def translate_array(self, arr: np.ndarray, tile: int | None = None,
                        progress: Progress | None = None) -> np.ndarray:
        """Translate one image array of any accepted shape (see ``split_channels``).

        Returns HxWx3 uint8, or HxWx4 when the input had alpha (kept unchanged).
        ``progress`` see :meth:`translate_rgb`.
        """
        rgb, alpha = split_channels(arr)
        return join_channels(self.translate_rgb(rgb, tile, progress=progress), alpha)

    def translate_image(self, img: Image.Image, tile: int | None = None) -> Image.Image:
        """Translate a PIL image: RGB out, or RGBA where the input had transparency."""
        out = self.translate_array(image_to_array(img), tile)
        return Image.fromarray(out, "RGBA" if out.shape[2] == 4 else "RGB")

    def translate_batch(self, arrays: Sequence[np.ndarray], tile: int | None = None
                        ) -> list[np.ndarray]:
        """Translate several arrays; same-size ones share one backend call.

        Results equal ``translate_array`` of each. Images that need tiling go one at a time.
        """
        split = [split_channels(a) for a in arrays]
        outs: list[np.ndarray | None] = [None] * len(split)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (rgb, _) in enumerate(split):
            h, w = rgb.shape[:2]
            if tile is not None or h * w > self.max_pixels:
                outs[i] = self.translate_rgb(rgb, tile)
            else:
                groups.setdefault((h, w), []).append(i)
        for indices in groups.values():
            batch = float_to_uint8(self.forward([split[i][0] for i in indices]))
            for i, out in zip(indices, batch, strict=True):
                outs[i] = out
        return [join_channels(o, a)
                for o, (_, a) in zip(outs, split, strict=True)]  # type: ignore[arg-type]


def onnx_backend(session: Any) -> Backend:
    """A backend callable for an onnxruntime session (casts for fp16 input/output)."""
    first = session.get_inputs()[0]
    in_type, in_name = first.type, first.name
    names = [o.name for o in session.get_outputs()]
    out_name = OUTPUT_NAME if OUTPUT_NAME in names else names[0]

    def run(batch: np.ndarray) -> np.ndarray:
        x = batch.astype(np.float16) if in_type == "tensor(float16)" else batch
        (y,) = session.run([out_name], {in_name: x})
        return np.asarray(y, dtype=np.float32)

    return run


def check_direction(info: ModelInfo, direction: str | None, source: str) -> None:
    """ModelError when ``direction`` is given and is not what the model does."""
    if direction is None:
        return
    if direction not in DIRECTIONS:
        raise ModelError(f"unknown direction {direction!r}; use AtoB or BtoA")
    if direction != info.direction and info.one_way:
        raise ModelError(only_direction(
            f"model {source}", info.direction, f"{info.domain_from}→{info.domain_to}; a "
            f"one-direction {info.family or 'trained'} model"))
    if direction != info.direction:
        raise ModelError(f"model {source} translates {info.direction} ({info.domain_from}→"
                         f"{info.domain_to}); you asked for {direction}")


def load_model(path: str | os.PathLike[str], *, backend: str = "onnx",
               direction: str | None = None, provider: str = "auto",
               providers: list[Any] | None = None, threads: int | None = None,
               device: str | None = None, cpu_rewrite: bool | None = None,
               checkpoint: str | None = None, **options: Any) -> Translator:
    """A :class:`Translator` for an ONNX file (``backend="onnx"``) or a training run directory
    (``backend="torch"``, which needs torch).

    ``provider`` picks ONNX Runtime's execution provider by name (``auto``, ``cpu``, ``cuda``,
    ``tensorrt``, ``coreml``, ``directml``, ``rocm``; see
    :mod:`~cyclegan_cli.inference.providers`): one that is not installed, or that does not
    start, is a ProviderError saying why. ``providers`` (ONNX Runtime's own list) overrides it.
    ``options`` go to :class:`Translator` (``max_pixels``, ``tile_size``, ``overlap``,
    ``tile_batch``); ``cpu_rewrite`` see :func:`~cyclegan_cli.inference.session.make_session`.
    ``checkpoint`` (torch backend): which of the run's checkpoints, see
    :meth:`~cyclegan_cli.rundir.RunDir.choose_checkpoint` (default auto: best, else latest).
    """
    source = str(path)
    if checkpoint not in (None, "auto") and backend != "torch":
        raise ModelError(f"--checkpoint {checkpoint} applies to run directories (the torch "
                         f"backend); {path} is a model file")
    if backend == "onnx":
        from cyclegan_cli.inference.providers import active_provider, providers_for
        from cyclegan_cli.inference.session import FOREIGN, make_session, session_info

        chosen = providers or providers_for(provider)  # the norm sessions share it
        notes: list[str] = []
        common = dict(threads=threads, cpu_rewrite=cpu_rewrite, foreign_ok=True)
        session = make_session(path, providers=chosen, notes=notes, **common,
                               provider=provider if providers is None else "cpu")  # cpu: no check
        if notes:  # auto fell back to the CPU: a CPU session (rewritten for speed), as planned
            chosen = ["CPUExecutionProvider"]
            session = make_session(path, providers=chosen, **common)
        info = session_info(session, path, foreign_ok=True)
        if info.format == FOREIGN:
            info.direction = direction or "AtoB"
            t = Translator(onnx_backend(session), info, backend="onnx", source=source,
                           device=active_provider(session), **options)
            t.notes += notes
            t.notes.append(f"{path} has no cyclegan-cli metadata: assuming RGB in [-1, 1], "
                           f"sizes a multiple of {info.size_multiple} (found by trying); its "
                           "direction is not checked. cgan export writes the metadata")
            return t
        check_direction(info, direction, source)
        norm = OnnxNormStats(path, providers=chosen, threads=threads, cpu_rewrite=cpu_rewrite)
        device = active_provider(session)
        options.setdefault("tile_batch", 1 if device == "CPU" else TILE_BATCH)
        t = Translator(onnx_backend(session), info, backend="onnx", source=source, norm=norm,
                       device=device, **options)
        t.notes += notes
        return t
    if backend == "torch":
        from cyclegan_cli.inference.torch_backend import load_run

        if direction is not None and direction not in DIRECTIONS:
            raise ModelError(f"unknown direction {direction!r}; use AtoB or BtoA")
        run, info, norm = load_run(Path(path), direction, device=device,
                                   threads=threads, checkpoint=checkpoint)
        return Translator(run, info, backend="torch", source=source, norm=norm,
                          device=f"torch {norm.device}", **options)
    raise ModelError(f"unknown backend {backend!r}; use onnx or torch")
