"""benchmarks/quality.py end to end at a toy size: it trains, exports, scores and reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_quality_benchmark_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "q"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--preset", "cpu",
         "--residual", "--steps", "4", "--eval-every", "2", "--n-train", "4", "--n-test", "3",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={"OMP_NUM_THREADS": "1", "PATH": "", "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((out / "quality.json").read_text())
    assert report["steps"] == 4 and report["config"]["residual"] is True
    assert [p["step"] for p in report["curve"]] == [2, 4]
    assert report["best_step"] in (2, 4)
    for direction in ("AtoB", "BtoA"):
        final = report["final"][direction]
        assert final["psnr"]["count"] == 3 and final["identity_psnr"]["mean"] > 10
        assert (out / "weights" / f"golden_hour-{direction}.onnx").is_file()
        with Image.open(out / f"sheet-{direction}.png") as sheet:
            assert sheet.width > 3 * 64
    with Image.open(out / "quality_curve.png") as curve:
        assert curve.size == (640, 400)
    assert "held-out PSNR" in run.stdout
    # an existing run is not overwritten
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--steps",
                            "4", "--n-train", "4", "--n-test", "3", "--out", str(out)],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path,
                           env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert again.returncode != 0 and "exists" in again.stderr
