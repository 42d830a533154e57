"""Atomic writes: replace-or-nothing, and the usual permissions for new files."""

from __future__ import annotations

import os
import stat

import pytest

from cyclegan_cli import atomic
from cyclegan_cli.atomic import atomic_open, atomic_write_text

pytestmark = pytest.mark.torchfree  # runs in an install without torch


def test_new_file_gets_umask_permissions(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(atomic, "_UMASK", 0o022)
    atomic_write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o644
    monkeypatch.setattr(atomic, "_UMASK", 0o077)
    atomic_write_text(tmp_path / "b.txt", "x")
    assert stat.S_IMODE(os.stat(tmp_path / "b.txt").st_mode) == 0o600


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path) -> None:
    target = tmp_path / "keep.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target, "wb") as fh:
        fh.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_atomic_write_puts_back_a_folder_deleted_while_it_writes(tmp_path) -> None:
    import shutil

    from cyclegan_cli.atomic import atomic_write

    folder = tmp_path / "run" / "samples"
    calls = []

    def writer(fh) -> None:
        calls.append(1)
        fh.write(b"grid")
        if len(calls) == 1:
            shutil.rmtree(tmp_path / "run")  # the run folder goes mid-write

    atomic_write(folder / "epoch_0001.png", writer)
    assert len(calls) == 2 and (folder / "epoch_0001.png").read_bytes() == b"grid"
    assert [p.name for p in folder.iterdir()] == ["epoch_0001.png"]  # no temporary left


def test_atomic_write_raises_a_missing_file_that_is_not_its_folder(tmp_path) -> None:
    from cyclegan_cli.atomic import atomic_write

    def writer(fh) -> None:
        open(tmp_path / "absent.bin", "rb")  # noqa: SIM115

    with pytest.raises(FileNotFoundError, match="absent.bin"):
        atomic_write(tmp_path / "out.bin", writer)
    assert not (tmp_path / "out.bin").exists()
