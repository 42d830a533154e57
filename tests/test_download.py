"""Resumable, checked downloads against a local HTTP server on 127.0.0.1 that the test starts
(no other network): a whole file, a download cut off and resumed with a range request, a 404,
a file cut short, a wrong SHA-256, a server that ignores ranges, and no server at all."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cyclegan_cli.download import DownloadError, download, part_path

pytestmark = pytest.mark.torchfree

BODY = bytes(range(256)) * 4096  # 1 MiB


class Server:
    """Serves BODY at /file (with ranges unless ``ranges`` is off); ``cut_after`` closes the
    connection after that many bytes of one response (then clears itself, so a retry
    succeeds); /missing is a 404; ``short`` announces more bytes than it sends."""

    def __init__(self) -> None:
        self.cut_after: int | None = None
        self.ranges = True
        self.short = False
        self.requests: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(self.headers.get("Range"))
                if self.path != "/file":
                    self.send_error(404, "Not Found")
                    return
                start = 0
                wanted = self.headers.get("Range")
                if wanted and outer.ranges:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    if start >= len(BODY):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(BODY)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
                else:
                    self.send_response(200)
                body = BODY[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut_after is not None:
                    body, outer.cut_after = body[:outer.cut_after], None
                elif outer.short:
                    body = body[:len(body) // 2]
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def test_a_whole_download_with_progress_and_checksum(server: Server, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    target = download(f"{server.url}/file", tmp_path / "m" / "g.pth",
                      sha256=hashlib.sha256(BODY).hexdigest(),
                      on_progress=lambda done, total: seen.append((done, total)))
    assert target.read_bytes() == BODY and not part_path(target).exists()
    assert seen[-1] == (len(BODY), len(BODY))


def test_an_interrupted_download_resumes_where_it_stopped(server: Server,
                                                          tmp_path: Path) -> None:
    server.cut_after = 300_000
    target = tmp_path / "g.pth"
    with pytest.raises(DownloadError, match="run the command again to resume"):
        download(f"{server.url}/file", target)
    assert not target.exists() and part_path(target).stat().st_size == 300_000
    download(f"{server.url}/file", target, sha256=hashlib.sha256(BODY).hexdigest())
    assert target.read_bytes() == BODY
    assert server.requests == [None, "bytes=300000-"]  # the second asked only for the rest


def test_a_server_without_ranges_starts_again(server: Server, tmp_path: Path) -> None:
    target = tmp_path / "g.pth"
    part_path(target).write_bytes(b"stale bytes of another try")
    server.ranges = False
    download(f"{server.url}/file", target)
    assert target.read_bytes() == BODY


def test_http_errors_cut_files_and_wrong_checksums_are_one_line(server: Server,
                                                                tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"/missing: HTTP 404 Not Found"):
        download(f"{server.url}/missing", tmp_path / "x.pth")
    server.short = True
    with pytest.raises(DownloadError):
        download(f"{server.url}/file", tmp_path / "short.pth")
    assert not (tmp_path / "short.pth").exists()
    server.short = False
    with pytest.raises(DownloadError, match="SHA-256 .* is not the expected 00ff") as caught:
        download(f"{server.url}/file", tmp_path / "bad.pth", sha256="00FF")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "bad.pth").exists() and not part_path(tmp_path / "bad.pth").exists()


def test_offline_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(DownloadError, match=r"cannot download .*check the network"):
        download(f"http://127.0.0.1:{port}/file", tmp_path / "g.pth", timeout=5)


def test_a_part_that_is_whole_or_too_long_is_checked_against_the_servers_size(
        server: Server, tmp_path: Path) -> None:
    whole = tmp_path / "whole.pth"
    part_path(whole).write_bytes(BODY)  # the last try ended before the rename
    download(f"{server.url}/file", whole, sha256=hashlib.sha256(BODY).hexdigest())
    assert whole.read_bytes() == BODY and server.requests[-1] == f"bytes={len(BODY)}-"
    long = tmp_path / "long.pth"
    part_path(long).write_bytes(BODY + b"13 bytes more")  # not this file: start again
    download(f"{server.url}/file", long)
    assert long.read_bytes() == BODY and server.requests[-1] is None


def test_an_address_that_is_no_address_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="cannot download") as caught:
        download("http://127.0.0.1:abc/x.pth", tmp_path / "g.pth")
    assert "\n" not in str(caught.value)
