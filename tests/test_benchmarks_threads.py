"""benchmarks/threads.py at toy size: every load x thread count is measured and reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import needs_torch

ROOT = Path(__file__).resolve().parents[1]


@needs_torch
def test_threads_benchmark_measures_each_setting(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "threads.py"), "--steps",
                          "1", "--threads", "1", "--loads", "0,1", "--settle", "0", "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=600,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert run.returncode == 0, run.stderr[-2000:]
    rows = json.loads((tmp_path / "threads.json").read_text())["rows"]
    assert [(r["load"], r["threads"]) for r in rows] == [(0, "1"), (0, "auto"), (1, "1"),
                                                         (1, "auto")]
    assert all(r["used"] >= 1 for r in rows) and rows[0]["used"] == 1
    assert "| busy processes | --threads |" in run.stdout
