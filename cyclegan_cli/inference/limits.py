"""The size rules of translation, in one place: when an image is tiled, how large tiles are
and may be. The CLI's help, the GIMP plug-in (through ``cgan gimp install``'s settings) and
the core all ask here. Imports nothing heavy (the CLI reads it to start)."""

from __future__ import annotations

import os

from cyclegan_cli.errors import DataError

MAX_PIXELS = 1_500_000  # larger images are translated in tiles (unless a tile size is given)
TILE = 512  # default tile side
MIN_TILE = 16  # smallest tile side (tiles overlap by half a tile at most: 8 pixels here)
OVERLAP = 64  # pixels shared by neighbouring tiles, blended
TILE_BATCH = 4  # tiles per model call on a GPU (on the CPU one: as fast, far less memory)


# Tiles share the instance-norm statistics of the whole image. Taken at full resolution they
# are exact (tiles then match the untiled output to a level); that pass costs about this many
# bytes a pixel per channel of the first feature map (measured: 7.4 for a ResNet-9 with the
# CPU graph rewrite, 21 without), and it may use up to STATS_MEMORY of the memory available.
# An image too large for that takes its statistics from a copy downscaled to MAX_PIXELS (a
# bounded pass, about 1.5 MP; tiles then differ from the untiled output by a few levels).
STATS_BYTES_PER_CHANNEL = 8
STATS_MEMORY = 2 * 2**30
MEMORY_ENV = "CGAN_MEMORY_MB"  # overrides what is taken to be available


def available_memory() -> int:
    """Bytes of memory available now: ``$CGAN_MEMORY_MB``, else Linux's MemAvailable, else
    half the physical memory (4 GB where nothing says)."""
    if os.environ.get(MEMORY_ENV):
        return int(float(os.environ[MEMORY_ENV]) * 2**20)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):
        return 4 * 2**30


def stats_pixels(channels: int, floor: int = MAX_PIXELS) -> int:
    """The most pixels whose statistics are taken at full resolution: what the statistics
    pass may use (:data:`STATS_MEMORY`, at most half the memory available) over its cost a
    pixel. Never fewer than ``floor`` (the untiled limit: that much always fits)."""
    budget = min(STATS_MEMORY, available_memory() // 2)
    return max(floor, budget // (STATS_BYTES_PER_CHANNEL * max(1, channels)))


def check_tile(tile: int | None) -> int | None:
    """``tile`` when it is a usable tile side (or None: automatic); DataError otherwise."""
    if tile is not None and tile < MIN_TILE:
        raise DataError(f"the tile size must be at least {MIN_TILE} pixels, not {tile}")
    return tile


def describe() -> str:
    """The rule in words, for help texts."""
    return (f"automatic above {MAX_PIXELS / 1e6:g} megapixels; tiles of at least {MIN_TILE} "
            "pixels")
