"""Contact sheets: rows of images side by side (input | output | target), labelled, as PNG."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cyclegan_cli.atomic import atomic_open

GAP = 4
LABEL = 14  # pixels of caption above each row


def _fit(img: np.ndarray, height: int) -> Image.Image:
    pil = Image.fromarray(img[..., :3])
    width = max(1, round(pil.width * height / pil.height))
    return pil.resize((width, height), Image.Resampling.LANCZOS)


def contact_sheet(rows: Sequence[tuple[str, Sequence[np.ndarray]]], path: str | os.PathLike,
                  columns: Sequence[str] = (), height: int = 192) -> Path:
    """Write ``rows`` — (caption, images) — as one PNG, every image scaled to ``height``.

    ``columns`` name the images of each row (e.g. input, output, target); the caption and the
    column names are written above each row.
    """
    if not rows:
        raise ValueError("a contact sheet needs at least one row")
    fitted = [(caption, [_fit(img, height) for img in images]) for caption, images in rows]
    width = max(sum(i.width for i in imgs) + GAP * (len(imgs) - 1) for _, imgs in fitted)
    sheet = Image.new("RGB", (width + 2 * GAP, len(fitted) * (height + LABEL + GAP) + GAP),
                      "white")
    draw = ImageDraw.Draw(sheet)
    y = GAP
    for caption, imgs in fitted:
        x = GAP
        draw.text((x, y), caption, fill="black")
        for k, img in enumerate(imgs):
            if k < len(columns) and k > 0:
                draw.text((x, y), columns[k], fill="dimgray")
            sheet.paste(img, (x, y + LABEL))
            x += img.width + GAP
        y += height + LABEL + GAP
    out = Path(path)
    with atomic_open(out, "wb") as fh:
        sheet.save(fh, format="PNG")
    return out
