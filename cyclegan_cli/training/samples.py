"""Sample grids: the fixed images a run translates as it trains, written as PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from cyclegan_cli.atomic import atomic_write
from cyclegan_cli.rundir.report import CAPTION_KEY, COLUMN_SEPARATOR, STEP_KEY


def to_uint8(batch: torch.Tensor) -> np.ndarray:
    """NxCxHxW in [-1, 1] -> NxHxWxC uint8."""
    x = ((batch.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def save_grid(path: Path, rows: list[list[torch.Tensor]], columns: tuple[str, ...] = (),
              step: int | None = None) -> None:
    """Write a PNG grid: each row lists 1xCxHxW images shown left to right (sizes may differ;
    smaller tiles are padded with black). ``columns`` names them and ``step`` is the training
    step, both in the PNG's text (the run report captions and orders the grids by them)."""
    tiles = [[to_uint8(t)[0] for t in row] for row in rows]
    height = max(t.shape[0] for row in tiles for t in row)
    lines = [np.concatenate([np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0)))
                             for t in row], axis=1) for row in tiles]
    width = max(line.shape[1] for line in lines)
    grid = np.concatenate([np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)))
                           for line in lines], axis=0)
    image = Image.fromarray(grid)
    info = PngInfo()
    if columns:
        info.add_itxt(CAPTION_KEY, COLUMN_SEPARATOR.join(columns))
    if step is not None:
        info.add_text(STEP_KEY, str(step))
    atomic_write(path, lambda fh: image.save(fh, format="PNG", pnginfo=info))
