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
