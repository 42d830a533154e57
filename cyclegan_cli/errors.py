"""Exceptions that carry a one-line message for the user (no traceback)."""

import errno


class CganError(Exception):
    """A user-facing error: the CLI prints its message in one line and exits non-zero."""

    exit_code = 1


class DataError(CganError):
    """Missing, empty or unusable input data."""


class ImageReadError(CganError):
    """One image file could not be read; carries the path and the reason."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class CheckpointError(CganError):
    """A checkpoint or run directory that cannot be used."""


class TrainingDiverged(CganError):
    """A loss became NaN or infinite; the last good checkpoint is left intact."""

    exit_code = 3


class Interrupted(CganError):
    """Ctrl-C or SIGTERM stopped the work cleanly; the message says how to continue."""

    exit_code = 130


class TrainingInterrupted(Interrupted):
    """Ctrl-C or SIGTERM stopped training after a checkpoint was saved."""


class ModelError(CganError):
    """A model file or run directory that cannot be used for translation."""


class ExportError(CganError):
    """A generator that cannot be exported, or an exported file that does not match it."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's first line, at most ``limit`` characters (its type's name when it has no
    text): the reason in a one-line error."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def describe_os_error(exc: OSError, path: object = None) -> str:
    """One line for a failed file operation: what, where (``exc.filename``, else ``path``),
    and what to do."""
    name = exc.filename or path
    where = f"{name}: " if name else ""
    hints = {
        errno.ENOSPC: "the disk is full; free some space and run again (files written "
                      "before are complete and intact)",
        errno.EDQUOT: "the disk quota is exceeded; free some space and run again",
        errno.EACCES: "permission denied; choose a folder you can write to",
        errno.EPERM: "operation not permitted; choose a folder you can write to",
        errno.EROFS: "the file system is read-only; choose another folder",
    }
    hint = hints.get(exc.errno or -1)
    return f"cannot write {where}{hint}" if hint else f"{where}{exc.strerror or exc}"
