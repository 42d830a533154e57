"""The size rules of translation, in one place: when an image is tiled, how large tiles are
and may be. The CLI's help, the GIMP plug-in (through ``cgan gimp install``'s settings) and
the core all ask here. Imports nothing heavy (the CLI reads it to start)."""

from __future__ import annotations

from cyclegan_cli.errors import DataError

MAX_PIXELS = 1_500_000  # larger images are translated in tiles (unless a tile size is given)
TILE = 512  # default tile side
MIN_TILE = 16  # smallest tile side (tiles overlap by half a tile at most: 8 pixels here)
OVERLAP = 64  # pixels shared by neighbouring tiles, blended
TILE_BATCH = 4  # tiles per model call


def check_tile(tile: int | None) -> int | None:
    """``tile`` when it is a usable tile side (or None: automatic); DataError otherwise."""
    if tile is not None and tile < MIN_TILE:
        raise DataError(f"the tile size must be at least {MIN_TILE} pixels, not {tile}")
    return tile


def describe() -> str:
    """The rule in words, for help texts."""
    return (f"automatic above {MAX_PIXELS / 1e6:g} megapixels; tiles of at least {MIN_TILE} "
            "pixels")
