"""Paired data (for pix2pix): which A image goes with which B image, in three layouts, and the
checks made before training starts.

- two folders with matching file names: ``A/x.png`` ↔ ``B/x.png`` (the extension may differ;
  sub-folders are matched by their relative path); every image without a partner is named;
- the reference "AB" layout: one image holding A (left half) and B (right half) side by side,
  in ``DATAROOT/train``, ``val`` and ``test``;
- a CSV of pairs: two columns (A, B; a header row is optional), paths relative to the CSV's
  folder unless absolute.

Sizes are read from the files' headers only, and a pair whose two images differ in size is an
error before any step. Imports the standard library, numpy and pillow (no torch).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cyclegan_cli.data.images import IMAGE_EXTENSIONS, list_images, load_rgb, probe_image
from cyclegan_cli.errors import DataError, ImageReadError

AB_SPLITS = ("train", "val", "test")  # the reference layout's folders under --dataroot
SHOWN = 5  # names listed in a one-line message before "…"


@dataclass(frozen=True)
class Pair:
    """One training example: ``a`` and ``b`` files, or one side-by-side ``ab`` file."""

    a: Path
    b: Path | None = None  # None: ``a`` is an AB image (A left, B right)
    reverse: bool = False  # B is the input (``--direction BtoA``): load gives (B, A)

    @property
    def name(self) -> str:
        return self.a.name if self.b is None else f"{self.a.name} ↔ {self.b.name}"

    def load(self, draft_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(input, target) as HxWx3 uint8 arrays: (A, B), or (B, A) when ``reverse``."""
        if self.b is None:
            a, b = split_ab(load_rgb(self.a, draft_size), self.a)
        else:
            a, b = load_rgb(self.a, draft_size), load_rgb(self.b, draft_size)
        return (b, a) if self.reverse else (a, b)


def _listed(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (f" … ({len(items)} in all)" if len(items) > SHOWN else "")


def pairs_from_folders(dir_a: str | os.PathLike[str],
                       dir_b: str | os.PathLike[str]) -> list[Pair]:
    """Pairs of ``dir_a`` and ``dir_b`` images with the same relative path (extension aside).
    DataError naming the images without a partner, or names that match twice."""
    root_a, root_b = Path(dir_a), Path(dir_b)
    keyed: list[dict[str, Path]] = []
    for root in (root_a, root_b):
        found: dict[str, Path] = {}
        for path in list_images(root):
            key = path.relative_to(root).with_suffix("").as_posix()
            if key in found:
                raise DataError(f"{found[key]} and {path} would both pair with the same image; "
                                "give them different names")
            found[key] = path
        keyed.append(found)
    only_a = sorted(set(keyed[0]) - set(keyed[1]))
    only_b = sorted(set(keyed[1]) - set(keyed[0]))
    if only_a or only_b:
        parts = [f"{len(names)} image(s) in {root} have no partner in {other}: "
                 f"{_listed([keyed[i][k].relative_to(root).as_posix() for k in names])}"
                 for i, (names, root, other) in enumerate(((only_a, root_a, root_b),
                                                           (only_b, root_b, root_a))) if names]
        raise DataError("; ".join(parts) + " (pairs need the same file name on both sides)")
    return [Pair(keyed[0][k], keyed[1][k]) for k in sorted(keyed[0])]


def pairs_from_ab_root(dataroot: str | os.PathLike[str], split: str = "train") -> list[Pair]:
    """The side-by-side images of ``dataroot/split`` (the reference pix2pix layout)."""
    if split not in AB_SPLITS:
        raise DataError(f"unknown split {split!r}; use {', '.join(AB_SPLITS)}")
    folder = Path(dataroot) / split
    if not folder.is_dir():
        raise DataError(f"{folder} not found: a paired --dataroot holds {', '.join(AB_SPLITS)} "
                        "folders of images with A and B side by side")
    return [Pair(p) for p in list_images(folder)]


def pairs_from_csv(path: str | os.PathLike[str]) -> list[Pair]:
    """The pairs a CSV lists: columns A and B, one pair a row (a header row is optional)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is not a CSV of pairs ({exc})") from exc
    if rows and Path(rows[0][0].strip()).suffix.lower() not in IMAGE_EXTENSIONS:
        rows = rows[1:]  # a header
    pairs, missing = [], []
    for number, row in enumerate(rows, start=1):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise DataError(f"{path}: row {number} needs two paths (A, B), got {row!r}")
        a, b = (Path(c.strip()) if Path(c.strip()).is_absolute() else path.parent / c.strip()
                for c in row[:2])
        missing += [str(p) for p in (a, b) if not p.is_file()]
        pairs.append(Pair(a, b))
    if missing:
        raise DataError(f"{path} lists {len(missing)} file(s) that do not exist: "
                        f"{_listed(missing)}")
    if not pairs:
        raise DataError(f"{path} lists no pairs")
    return pairs


def find_pairs(dir_a: str | None, dir_b: str | None, dataroot: str | None,
               pairs_csv: str | None, *, split: str = "train",
               direction: str = "AtoB") -> list[Pair]:
    """The pairs of whichever one layout is given (two folders, a side-by-side ``dataroot``,
    or a CSV), oriented for ``direction`` (BtoA: B is the input)."""
    given = [what for what, there in (("A/ B/ folders", dir_a or dir_b),
                                      ("--dataroot", dataroot), ("--pairs", pairs_csv)) if there]
    if len(given) > 1:
        raise DataError(f"give one source of pairs, not {' and '.join(given)}")
    if dir_a or dir_b:
        if not (dir_a and dir_b):
            raise DataError("paired folders come two at a time: A/ B/ with matching names")
        pairs = pairs_from_folders(dir_a, dir_b)
    elif dataroot:
        pairs = pairs_from_ab_root(dataroot, split)
    elif pairs_csv:
        pairs = pairs_from_csv(pairs_csv)
    else:
        raise DataError("give pairs: two folders with matching file names (A/ B/), "
                        "--dataroot D (D/train/ of side-by-side A|B images) or --pairs FILE.csv")
    return oriented(pairs, direction)


def oriented(pairs: list[Pair], direction: str) -> list[Pair]:
    """``pairs`` with their input first for ``direction`` (AtoB: as they are)."""
    if direction not in ("AtoB", "BtoA"):
        raise DataError(f"unknown direction {direction!r}; use AtoB or BtoA")
    return [replace(p, reverse=direction == "BtoA") for p in pairs]


def held_out_pairs(dataroot: str | os.PathLike[str], direction: str = "AtoB") -> list[Pair]:
    """A side-by-side ``dataroot``'s validation pairs: ``val/``, else ``test/`` (DataError
    when it has neither)."""
    for split in ("val", "test"):
        if (Path(dataroot) / split).is_dir():
            return oriented(pairs_from_ab_root(dataroot, split), direction)
    raise DataError(f"{dataroot} has no val/ or test/ folder of held-out pairs for "
                    "--eval-every; add one, or give --eval-a and --eval-target")


def split_ab(arr: np.ndarray, source: str | os.PathLike[str] = "") -> tuple[np.ndarray, np.ndarray]:
    """(A, B): the left and right halves of a side-by-side image (an odd last column is
    dropped, as the reference does)."""
    half = arr.shape[1] // 2
    if half < 1:
        raise DataError(f"{source or 'an AB image'} is too narrow to hold A and B side by side")
    return arr[:, :half], arr[:, half:2 * half]


def check_pairs(pairs: list[Pair]) -> list[tuple[Pair, str]]:
    """Read every pair's sizes from the headers: DataError naming the pairs whose two images
    differ in size; the unreadable ones are returned as (pair, reason) to be reported and
    left out (as unreadable unpaired images are)."""
    unreadable, mismatched = [], []
    for pair in pairs:
        try:
            if pair.b is None:
                width, height, _ = probe_image(pair.a)
                if width < 2:
                    mismatched.append(f"{pair.a.name} ({width}×{height}, too narrow for A|B)")
                continue
            (wa, ha, _), (wb, hb, _) = probe_image(pair.a), probe_image(pair.b)
        except ImageReadError as err:
            unreadable.append((pair, f"{err.path}: {err.reason}"))
            continue
        if (wa, ha) != (wb, hb):
            mismatched.append(f"{pair.name} ({wa}×{ha} against {wb}×{hb})")
    if mismatched:
        raise DataError(f"{len(mismatched)} pair(s) of different sizes: {_listed(mismatched)} "
                        "(the two images of a pair must match pixel for pixel)")
    return unreadable
