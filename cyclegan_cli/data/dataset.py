"""Unaligned two-domain dataset, the paired one (pix2pix), a deterministic resumable sampler,
and the DataLoader factory.

Every random choice (epoch order, the B image drawn for each step, crop, flip) is derived from
``(seed, epoch, position)``, never from worker or global RNG state. So the data of step *k* is
the same whatever the number of workers, and a run resumed mid-epoch sees exactly the batches it
would have seen without the interruption.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from cyclegan_cli.cpu import cpu_count
from cyclegan_cli.data.images import list_images, load_rgb
from cyclegan_cli.data.pairs import Pair
from cyclegan_cli.data.transforms import Preprocessor
from cyclegan_cli.errors import DataError, ImageReadError

SampleKey = tuple[int, int, int, int]  # (index in A, index in B, epoch, position)


def resolve_domains(
    dir_a: str | None, dir_b: str | None, dataroot: str | None
) -> tuple[Path, Path]:
    """The A and B folders from either ``A/ B/`` or the reference ``--dataroot D`` layout."""
    if dataroot and (dir_a or dir_b):
        raise DataError("give either the A/ and B/ folders or --dataroot, not both")
    if dataroot:
        return Path(dataroot) / "trainA", Path(dataroot) / "trainB"
    if not dir_a or not dir_b:
        raise DataError("give two image folders (cgan train A/ B/) or --dataroot D")
    return Path(dir_a), Path(dir_b)


class UnalignedDataset(Dataset):
    """Images from two unpaired folders, decoded to RGB and preprocessed as uint8 CxHxW tensors.

    Indexed by :data:`SampleKey` tuples from :class:`EpochSampler`. A file that cannot be read is
    skipped (the next file of its domain is used instead) and its path is returned in ``bad``
    so the main process can report it once.
    """

    def __init__(
        self,
        files_a: Sequence[Path],
        files_b: Sequence[Path],
        preprocessor: Preprocessor,
        seed: int = 0,
        cache: bool = False,
    ) -> None:
        if not files_a or not files_b:
            raise DataError("both domains need at least one image")
        self.files = (list(files_a), list(files_b))
        self.pre = preprocessor
        self.seed = seed
        self._bad: set[Path] = set()
        self._cache: tuple[list[np.ndarray | None], list[np.ndarray | None]] | None = None
        if cache:
            self.fill_cache()

    @classmethod
    def from_folders(
        cls, dir_a: Path, dir_b: Path, preprocessor: Preprocessor, *, seed: int = 0,
        cache: bool = False, max_size: int = 0,
    ) -> UnalignedDataset:
        files = [list_images(dir_a), list_images(dir_b)]
        if max_size > 0:
            files = [f[:max_size] for f in files]
        return cls(files[0], files[1], preprocessor, seed=seed, cache=cache)

    def __len__(self) -> int:
        return max(len(self.files[0]), len(self.files[1]))

    @property
    def sizes(self) -> tuple[int, int]:
        return len(self.files[0]), len(self.files[1])

    def fill_cache(self, on_bad=None) -> None:
        """Decode and prepare every image now; unreadable files are dropped and reported."""
        cache: list[list[np.ndarray | None]] = [[], []]
        for domain in (0, 1):
            for path in self.files[domain]:
                try:
                    cache[domain].append(self.pre.prepare(load_rgb(path, self.pre.draft_size)))
                except ImageReadError as err:
                    cache[domain].append(None)
                    self._bad.add(path)
                    if on_bad is not None:
                        on_bad(err)
        for domain, name in ((0, "A"), (1, "B")):
            if all(a is None for a in cache[domain]):
                raise DataError(f"no readable images in domain {name}")
        self._cache = (cache[0], cache[1])

    def _prepared(self, domain: int, index: int, bad: list[str]) -> np.ndarray:
        files = self.files[domain]
        for step in range(len(files)):
            i = (index + step) % len(files)
            if self._cache is not None:
                arr = self._cache[domain][i]
                if arr is not None:
                    return arr
                continue
            path = files[i]
            if path in self._bad:
                continue
            try:
                return self.pre.prepare(load_rgb(path, self.pre.draft_size))
            except ImageReadError as err:
                self._bad.add(path)
                bad.append(f"{err.path}: {err.reason}")
        raise DataError(f"no readable images in domain {'AB'[domain]}")

    def load(self, domain: int, index: int, rng: np.random.Generator | None,
             bad: list[str] | None = None) -> torch.Tensor:
        """One preprocessed image as a uint8 CxHxW tensor (centred, unflipped if rng is None);
        unreadable files met on the way are added to ``bad`` ("path: reason")."""
        arr = self.pre.augment(self._prepared(domain, index, [] if bad is None else bad), rng)
        return torch.from_numpy(arr).permute(2, 0, 1)

    def __getitem__(self, key: SampleKey) -> dict:
        index_a, index_b, epoch, position = key
        rng = np.random.default_rng([self.seed, epoch, position])
        bad: list[str] = []
        a = self.pre.augment(self._prepared(0, index_a, bad), rng)
        b = self.pre.augment(self._prepared(1, index_b, bad), rng)
        return {
            "A": torch.from_numpy(a).permute(2, 0, 1),
            "B": torch.from_numpy(b).permute(2, 0, 1),
            "bad": bad,
        }


class PairedDataset(Dataset):
    """Pairs of images (pix2pix; :mod:`cyclegan_cli.data.pairs` finds them), decoded and
    preprocessed as uint8 CxHxW tensors, both images of a pair with the same crop and flip.

    The same interface as :class:`UnalignedDataset` (a key's B index is not used: B is the
    pair's own). A pair that cannot be read is skipped (the next pair is used) and named in
    ``bad``."""

    def __init__(self, pairs: Sequence[Pair], preprocessor: Preprocessor, seed: int = 0,
                 cache: bool = False) -> None:
        if not pairs:
            raise DataError("no image pairs")
        self.pairs = list(pairs)
        self.pre = preprocessor
        self.seed = seed
        self._bad: set[int] = set()
        self._cache: list[tuple[np.ndarray, np.ndarray] | None] | None = None
        if cache:
            self.fill_cache()

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def sizes(self) -> tuple[int, int]:
        return len(self.pairs), len(self.pairs)

    @property
    def files(self) -> tuple[list[Path], list[Path]]:
        """The A and B files (an AB image stands for both)."""
        return ([p.a for p in self.pairs], [p.b or p.a for p in self.pairs])

    def _read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.pairs[index].load(self.pre.draft_size)
        return self.pre.prepare(a), self.pre.prepare(b)

    def fill_cache(self, on_bad=None) -> None:
        """Decode and prepare every pair now; unreadable ones are dropped and reported."""
        cache: list[tuple[np.ndarray, np.ndarray] | None] = []
        for index in range(len(self.pairs)):
            try:
                cache.append(self._read(index))
            except ImageReadError as err:
                cache.append(None)
                self._bad.add(index)
                if on_bad is not None:
                    on_bad(err)
        if all(c is None for c in cache):
            raise DataError("no readable image pairs")
        self._cache = cache

    def _prepared(self, index: int, bad: list[str]) -> tuple[np.ndarray, np.ndarray]:
        for step in range(len(self.pairs)):
            i = (index + step) % len(self.pairs)
            if self._cache is not None:
                if self._cache[i] is not None:
                    return self._cache[i]
                continue
            if i in self._bad:
                continue
            try:
                return self._read(i)
            except ImageReadError as err:
                self._bad.add(i)
                bad.append(f"{err.path}: {err.reason}")
        raise DataError("no readable image pairs")

    def load(self, domain: int, index: int, rng: np.random.Generator | None,
             bad: list[str] | None = None) -> torch.Tensor:
        """One side (0: A, 1: B) of a pair as a uint8 CxHxW tensor (centred, unflipped if rng
        is None), as :meth:`UnalignedDataset.load`."""
        # one side alone draws what augment_pair draws for both
        arr = self.pre.augment(self._prepared(index, [] if bad is None else bad)[domain], rng)
        return torch.from_numpy(arr).permute(2, 0, 1)

    def __getitem__(self, key: SampleKey) -> dict:
        index, _, epoch, position = key
        rng = np.random.default_rng([self.seed, epoch, position])
        bad: list[str] = []
        a, b = self.pre.augment_pair(*self._prepared(index, bad), rng)
        return {"A": torch.from_numpy(a).permute(2, 0, 1),
                "B": torch.from_numpy(b).permute(2, 0, 1), "bad": bad}


class EpochSampler(Sampler[SampleKey]):
    """Yields the sample keys of one epoch; ``set_epoch(e, start)`` selects the epoch and the
    position to start from (for resuming mid-epoch)."""

    def __init__(self, sizes: tuple[int, int], seed: int, serial: bool = False,
                 rank: int = 0, world: int = 1) -> None:
        self.size_a, self.size_b = sizes
        self.length = max(sizes)
        self.seed = seed
        self.serial = serial
        self.rank, self.world = rank, world
        self.per_rank = -(-self.length // world)  # every rank gets as many (padded by wrapping)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def keys(self, epoch: int) -> list[SampleKey]:
        rng = np.random.default_rng([self.seed, epoch, 2**31 - 1])
        if self.serial:
            order = np.arange(self.length)
            index_b = order % self.size_b
        else:
            order = rng.permutation(self.length)
            index_b = rng.integers(self.size_b, size=self.length)
        keys = [
            (int(i % self.size_a), int(b), epoch, pos)
            for pos, (i, b) in enumerate(zip(order, index_b, strict=True))
        ]
        if self.world == 1:
            return keys
        padded = (keys * self.world)[:self.per_rank * self.world]
        return padded[self.rank::self.world]  # this rank's share of the epoch

    def __iter__(self) -> Iterator[SampleKey]:
        return iter(self.keys(self.epoch)[self.start :])

    def __len__(self) -> int:
        return self.per_rank - self.start


def collate(samples: list[dict]) -> dict:
    """Stack A and B (uint8) and gather the names of unreadable files."""
    try:
        a = torch.stack([s["A"] for s in samples])
        b = torch.stack([s["B"] for s in samples])
    except RuntimeError as exc:
        shapes = sorted({tuple(s["A"].shape[1:]) for s in samples}
                        | {tuple(s["B"].shape[1:]) for s in samples})
        raise DataError(
            f"images in one batch differ in size ({shapes}); with --preprocess none or "
            "scale_width use --batch-size 1 or images of one size"
        ) from exc
    return {"A": a, "B": b, "bad": [p for s in samples for p in s["bad"]]}


def _worker_init(_worker_id: int) -> None:
    """Workers leave Ctrl-C / SIGTERM to the main process, which saves a checkpoint and then
    shuts them down (they also exit by themselves if the main process dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def auto_workers(requested: int, reserved: int = 1) -> int:
    """-1 means: up to 8 workers on the cores left after ``reserved`` (the training process's
    own threads: on a CPU run its compute threads, so that workers never oversubscribe)."""
    if requested >= 0:
        return requested
    return max(0, min(8, cpu_count() - reserved))


@dataclass
class Loader:
    """A DataLoader over :class:`UnalignedDataset` (or :class:`PairedDataset`) with its
    resumable sampler."""

    dataset: UnalignedDataset | PairedDataset
    sampler: EpochSampler
    loader: DataLoader
    steps_per_epoch: int

    def epoch(self, epoch: int, start_step: int = 0) -> DataLoader:
        """The loader positioned at ``start_step`` batches into ``epoch``."""
        self.sampler.set_epoch(epoch, start_step * self.loader.batch_size)
        return self.loader

    def close(self) -> None:
        """Stop the worker processes now (persistent workers live until their iterator goes,
        and they ignore signals)."""
        iterator = getattr(self.loader, "_iterator", None)
        self.loader._iterator = None
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def make_loader(
    dataset: UnalignedDataset | PairedDataset, *, batch_size: int, seed: int, serial: bool = False,
    num_workers: int = -1, pin_memory: bool = False, rank: int = 0, world: int = 1,
    reserved_cores: int = 1,
) -> Loader:
    """Build the training loader: worker processes, pinned memory, prefetching, static batches.
    With ``world`` > 1 it yields rank ``rank``'s share of every epoch. ``num_workers`` -1
    uses the cores left after ``reserved_cores``."""
    sampler = EpochSampler(dataset.sizes, seed, serial, rank, world)
    drop_last = sampler.per_rank >= batch_size
    workers = auto_workers(num_workers, reserved_cores)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        prefetch_factor=4 if workers > 0 else None,
        persistent_workers=workers > 0,
        worker_init_fn=_worker_init if workers > 0 else None,
        # a private generator: creating an epoch's iterator must not consume the global torch
        # RNG, or a resumed run would diverge from an uninterrupted one
        generator=torch.Generator().manual_seed(seed),
    )
    steps = sampler.per_rank // batch_size if drop_last else 1
    return Loader(dataset, sampler, loader, steps)
