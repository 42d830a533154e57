"""Downloading a file so that nothing is lost: streamed to a ``.part`` file beside the target,
resumed with an HTTP range request after an interruption, checked (the length the server
announced, an optional SHA-256) and only then renamed into place. Standard library only.

Errors are one line (:class:`DownloadError`): offline, an HTTP status, a file cut short (the
part is kept, and the next try resumes it), a wrong checksum (the part is deleted).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cyclegan_cli.errors import CganError

CHUNK = 1 << 20
TIMEOUT = 30.0  # seconds without a byte before a download counts as stalled
USER_AGENT = "cyclegan-cli"


class DownloadError(CganError):
    """A download that did not complete (one line)."""


def part_path(target: Path) -> Path:
    """Where the bytes go until the download is complete and checked."""
    return target.with_name(f".{target.name}.part")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _total(response: object, offset: int) -> int | None:
    """The full file's size from a 206's Content-Range, or a 200's Content-Length."""
    headers = response.headers  # type: ignore[attr-defined]
    found = re.match(r"bytes \d+-\d+/(\d+)", headers.get("Content-Range") or "")
    if found:
        return int(found.group(1))
    length = headers.get("Content-Length")
    return int(length) + offset if length and length.isdigit() else None


def download(url: str, target: str | os.PathLike[str], *, sha256: str | None = None,
             on_progress: Callable[[int, int | None], None] | None = None,
             timeout: float = TIMEOUT) -> Path:
    """Download ``url`` to ``target`` (resuming a ``.part`` left by an earlier try) and return
    ``target``. ``on_progress(bytes so far, total or None)`` is called as bytes arrive."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(target)
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) asked for
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the part is already whole: check it below
            response = None
        else:
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"cannot download {url} ({reason}); check the network, or "
                            "download the file by hand and give its path") from None
    total = None
    if response is not None:
        with response:
            if offset and response.status != 206:  # no ranges here: start again
                offset = 0
            total = _total(response, offset)
            mode = "ab" if offset else "wb"
            done = offset
            try:
                with part.open(mode) as fh:
                    while block := response.read(CHUNK):
                        fh.write(block)
                        done += len(block)
                        if on_progress:
                            on_progress(done, total)
            except (OSError, http.client.HTTPException) as exc:  # cut off: keep it
                raise DownloadError(f"{url}: the download stopped after {done} bytes ({exc}); "
                                    "run the command again to resume it") from None
    size = part.stat().st_size if part.is_file() else 0
    if total is not None and size != total:
        raise DownloadError(f"{url}: got {size} of {total} bytes (cut short); run the command "
                            "again to resume it")
    if sha256 is not None:
        found = _sha256(part)
        if found.lower() != sha256.lower():
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url}: SHA-256 {found} is not the expected {sha256.lower()}; "
                                "the file was deleted")
    os.replace(part, target)
    return target
