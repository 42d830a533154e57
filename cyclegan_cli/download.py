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


def _validator_path(target: Path) -> Path:
    """The ETag (or Last-Modified) of the file a part belongs to, for ``If-Range``."""
    return target.with_name(f".{target.name}.part.etag")


def _forget(part: Path, validator: Path) -> None:
    part.unlink(missing_ok=True)
    validator.unlink(missing_ok=True)


def _one_line(value: object) -> str:
    return " ".join(str(value).split())[:200]


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
    part, validator = part_path(target), _validator_path(target)
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
        if validator.is_file():  # the same file as the part's, or all of it anew
            request.add_header("If-Range", validator.read_text(encoding="utf-8").strip())
    total = None
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) asked for
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing past the part: whole if the sizes agree
            found = re.match(r"bytes \*/(\d+)", exc.headers.get("Content-Range") or "")
            if found is None or int(found.group(1)) != offset:
                _forget(part, validator)
                return download(url, target, sha256=sha256, on_progress=on_progress,
                                timeout=timeout)
            response, total = None, offset
        else:
            raise DownloadError(f"{url}: HTTP {exc.code} {_one_line(exc.reason)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = _one_line(getattr(exc, "reason", exc))
        raise DownloadError(f"cannot download {url} ({reason}); check the network and the "
                            "address, or download the file elsewhere and give its path") \
            from None
    if response is not None:
        with response:
            if offset and response.status != 206:  # no ranges, or the file changed: anew
                offset = 0
            tag = response.headers.get("ETag") or response.headers.get("Last-Modified")
            if tag and not offset:
                validator.write_text(tag, encoding="utf-8")
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
    if total is not None and size > total:
        _forget(part, validator)
        raise DownloadError(f"{url}: got {size} bytes of a {total}-byte file; the download was "
                            "deleted, run the command again")
    if total is not None and size != total:
        raise DownloadError(f"{url}: got {size} of {total} bytes (cut short); run the command "
                            "again to resume it")
    if sha256 is not None:
        found = _sha256(part)
        if found.lower() != sha256.lower():
            _forget(part, validator)
            raise DownloadError(f"{url}: SHA-256 {found} is not the expected {sha256.lower()}; "
                                "the file was deleted")
    os.replace(part, target)
    validator.unlink(missing_ok=True)
    return target
