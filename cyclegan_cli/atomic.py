"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once at import (os.umask can only be read by setting it, which is not thread-safe).
_UMASK = _read_umask()


def new_file_mode() -> int:
    """The permissions of a new file: 0666 less the umask."""
    return 0o666 & ~_UMASK


TEMPORARY = ".{name}.*.tmp"  # the hidden temporary files of every output, beside it


def new_temporary(target: Path) -> Path:
    """A new empty hidden temporary file beside ``target`` (``.NAME.xxxxxxxx.tmp``). A
    folder that cannot take it is an OSError naming ``target``, not the temporary."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(target)) from exc
    os.close(fd)
    return Path(tmp)


def stale_temporaries(target: Path) -> list[Path]:
    """The hidden temporary files of ``target`` that a killed process left behind."""
    if not target.parent.is_dir():
        return []
    return sorted(target.parent.glob(TEMPORARY.format(name=glob.escape(target.name))))


def remove_stale_temporaries(targets: Iterable[Path]) -> list[Path]:
    """Remove what :func:`stale_temporaries` finds for each of ``targets`` (outputs this
    process is about to write, so no other process is writing them). Returns what went."""
    gone = []
    for target in targets:
        for tmp in stale_temporaries(Path(target)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                gone.append(tmp)
    return gone


def ensure_writable(folder: Path) -> None:
    """Make ``folder`` (and its parents) and check that a file can be created in it: an
    OSError naming the folder otherwise (before any work is done for it)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        probe = new_temporary(folder / ".cgan-write-check")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(folder)) from exc
    probe.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    The file gets the usual permissions for a new file (0666 less the umask), not the
    temporary file's private 0600. On any exception the temporary file is removed and
    ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temporary(target)
    try:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
            # a failed write or fsync names no file: name the one the user asked for
            raise OSError(exc.errno, exc.strerror, str(target)) from exc
        raise


def atomic_write(path: str | os.PathLike, writer: Callable[[IO], None], mode: str = "wb") -> None:
    """Call ``writer(fh)`` on a temporary file and atomically move it to ``path``. Should the
    folder be deleted while it writes (a run folder removed under a running job), it is made
    again and the file written once more."""
    try:
        with atomic_open(path, mode) as fh:
            writer(fh)
    except FileNotFoundError:
        if Path(path).parent.is_dir():
            raise
        with atomic_open(path, mode) as fh:
            writer(fh)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
