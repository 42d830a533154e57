"""``cgan models pull``: a published name and addresses of .pth and .onnx files, served by a
local HTTP server on 127.0.0.1 that the test starts (no other network), converted, checked and
installed in the user models folder; an interrupted download resumes; ``cgan models rm``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from typer.testing import CliRunner

from cyclegan_cli.cli import app
from cyclegan_cli.inference.metadata import ModelInfo
from tests.conftest import needs_torch

pytestmark = needs_torch


class Files:
    """Serves ``files`` (path -> bytes) with range requests; ``cut_after`` ends one response
    after that many bytes."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.cut_after, self.requests = files, None, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append((self.path, self.headers.get("Range")))
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/"
                                                      f"{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                chunk = body[start:]
                if outer.cut_after is not None:
                    chunk, outer.cut_after = chunk[:outer.cut_after], None
                self.wfile.write(chunk)
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def generator_pth(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    import io

    import torch

    from cyclegan_cli.models import build_generator

    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(build_generator("resnet_6blocks", ngf=8).state_dict(), buf)
    return buf.getvalue()


@pytest.fixture
def server(generator_pth: bytes, monkeypatch: pytest.MonkeyPatch,
           tmp_path: Path) -> Iterator[Files]:
    import cyclegan_cli.inference.published as published

    files = Files({"/horse2zebra.pth": generator_pth, "/G_B2A_epoch7.pth": generator_pth})
    monkeypatch.setattr(published, "REFERENCE_URL", files.url + "/{name}.pth")
    import cyclegan_cli.pull as pull

    monkeypatch.setenv("CGAN_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr(pull, "download_cache", lambda: tmp_path / "cache")
    yield files
    files.httpd.shutdown()
    files.httpd.server_close()


def _props(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_pull_a_published_name_then_translate_with_it(server: Files, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["models", "pull", "horse2zebra", "--quiet"])
    assert result.exit_code == 0, result.output
    model = tmp_path / "models" / "horse2zebra-AtoB.onnx"
    assert model.is_file() and str(model) in result.output
    assert "detected resnet_6blocks (6 residual blocks, ngf 8, instance norm" in result.output
    assert "export parity vs torch: max abs diff" in result.output
    info = ModelInfo.from_props(_props(model))
    assert (info.domain_from, info.domain_to, info.direction) == ("horse", "zebra", "AtoB")
    assert info.source == f"{server.url}/horse2zebra.pth"
    assert "BSD" in info.config["licence"] and "pytorch-CycleGAN" in info.config["published_by"]
    listed = json.loads(CliRunner().invoke(app, ["models", "--json"]).stdout)
    assert "horse2zebra" in [m["name"] for m in listed["models"]]
    assert "style_monet" in listed["pullable"]
    photo = tmp_path / "p.png"
    Image.fromarray(np.full((40, 36, 3), 120, np.uint8)).save(photo)
    out = CliRunner().invoke(app, ["translate", "-m", "horse2zebra", str(photo), "-o",
                                   str(tmp_path / "out.png"), "--quiet"])
    assert out.exit_code == 0, out.output
    assert Image.open(tmp_path / "out.png").size == (36, 40)
    removed = CliRunner().invoke(app, ["models", "rm", "horse2zebra"])
    assert removed.exit_code == 0 and not model.exists()


def test_an_interrupted_pull_resumes_and_an_address_names_the_model(server: Files,
                                                                    tmp_path: Path) -> None:
    server.cut_after = 20_000
    url = f"{server.url}/G_B2A_epoch7.pth"
    first = CliRunner().invoke(app, ["models", "pull", url, "--quiet"])
    assert first.exit_code == 1 and "run the command again to resume" in first.output
    second = CliRunner().invoke(app, ["models", "pull", url, "--quiet", "--int8"])
    assert second.exit_code == 0, second.output
    assert server.requests[-1] == ("/G_B2A_epoch7.pth", "bytes=20000-")
    installed = sorted(p.name for p in (tmp_path / "models").iterdir())
    assert installed == ["G_B2A_epoch7-BtoA-int8.onnx", "G_B2A_epoch7-BtoA.onnx"]  # as named
    assert "int8: " in second.output and "worst" in second.output
    assert "--direction BtoA" in second.output
    assert not list((tmp_path / "cache").rglob("*.pth"))  # installed: the download is gone
    again = CliRunner().invoke(app, ["models", "pull", url, "--quiet"])  # no --int8 this time
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        "G_B2A_epoch7-BtoA.onnx"]  # the earlier pull's int8 copy does not linger


def test_pull_an_onnx_address_and_the_one_line_errors(server: Files, tmp_path: Path) -> None:
    from cyclegan_cli.export import export_reference

    source = tmp_path / "G_A.pth"
    source.write_bytes(server.files["/horse2zebra.pth"])
    exported = export_reference(source, out=tmp_path / "x" / "painted-AtoB.onnx",
                                domain_from="photo", domain_to="painting")
    server.files["/painted-AtoB.onnx"] = exported.path.read_bytes()
    server.files["/junk.onnx"] = b"not a model"
    ok = CliRunner().invoke(app, ["models", "pull", f"{server.url}/painted-AtoB.onnx", "-q"])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "models" / "painted-AtoB.onnx").is_file()
    for args, says in [
        ([f"{server.url}/missing.pth"], "HTTP 404 Not Found"),
        ([f"{server.url}/junk.onnx"], "is not a usable cyclegan-cli model"),
        (["horse2zebra", "--sha256", "ab" * 32], "is not the expected"),
        (["no_such_model"], "not a published model, an http(s) address"),
    ]:
        result = CliRunner().invoke(app, ["models", "pull", *args, "-q"])
        assert result.exit_code == 1, (args, result.output)
        assert says in result.output.replace("\n", ""), (args, result.output)
        assert "Traceback" not in result.output


def test_pull_a_local_file_and_names_that_would_leave_the_folder(server: Files,
                                                                 tmp_path: Path) -> None:
    import torch

    wrapped = tmp_path / "checkpoint.pth"
    state = torch.load(__import__("io").BytesIO(server.files["/horse2zebra.pth"]),
                       weights_only=True)
    torch.save({"netG_B2A": state, "epoch": torch.tensor(7)}, wrapped)
    result = CliRunner().invoke(app, ["models", "pull", str(wrapped), "-q"])
    assert result.exit_code == 0, result.output
    assert "BtoA (from the file's keys); weights under 'netG_B2A'" in result.output
    assert (tmp_path / "models" / "checkpoint-BtoA.onnx").is_file()
    for bad in ("../escaped", "sub/dir", "a-b"):
        result = CliRunner().invoke(app, ["models", "pull", str(wrapped), "--name", bad, "-q"])
        assert result.exit_code == 1 and "use letters, digits" in result.output, bad
    assert not (tmp_path / "escaped-BtoA.onnx").exists()
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["checkpoint-BtoA.onnx"]
