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
    # best.pt only exists where an evaluation beat the untouched input; else the latest
    best = (out / "runs" / "quality-cpu" / "checkpoints" / "best.pt").exists()
    assert report["best_step"] in ((2, 4) if best else (None,))
    assert report["checkpoint"].startswith("best" if best else "latest")
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


def test_quality_suite_runs_every_task_and_keeps_finished_runs(tmp_path: Path) -> None:
    out = tmp_path / "suite"
    command = [sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--suite", "--steps",
               "2", "--eval-every", "2", "--n-train", "4", "--n-test", "3", "--tasks",
               "golden_hour,canvas", "--seeds", "0", "--jobs", "2", "--out", str(out),
               "--wide", "--variants", "reference", "residual-noid"]
    env = {"OMP_NUM_THREADS": "1", "PATH": "", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-2000:] + run.stdout[-2000:]
    report = json.loads((out / "suite.json").read_text())
    assert report["failed"] == [] and len(report["runs"]) == 4
    # --wide reaches every run: the wider training set, the same held-out crops
    assert report["wide_data"] and all(r["wide_data"] for r in report["runs"].values())
    readme = next(out.glob("runs/canvas--reference--s0/data-*/README.txt")).read_text()
    assert "camera.png" in readme and "chelsea.png" in readme
    assert report["variants"]["residual-noid"] == {"recipe": "reference", "residual": True,
                                                   "lambda_identity": 0.0}
    rows = {r["task"]: r for r in report["table"]["rows"]}
    assert set(rows) == {"golden_hour", "canvas"}
    for row in rows.values():
        for v in ("reference", "residual-noid"):
            assert row[v]["seeds"] == 1 and row[v]["median"] > 0
        assert row["identity"]["mean"] > 10
    table = (out / "suite.md").read_text()
    assert "| golden_hour |" in table and "mean gain over identity" in table
    # a second call keeps the finished runs (nothing is trained again)
    done = sorted(out.glob("runs/*/quality.json"))
    stamps = [p.stat().st_mtime_ns for p in done]
    again = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 0 and [p.stat().st_mtime_ns for p in done] == stamps
    bad = subprocess.run(command[:-2] + ["reference:colour=1"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode != 0 and "no field 'colour'" in bad.stderr


def test_paired_benchmark_runs_and_reports(tmp_path: Path) -> None:
    """benchmarks/paired.py at a toy size: the B→A task (CycleGAN scored at its last step),
    two variants, the table and the sheet."""
    out = tmp_path / "paired"
    command = [sys.executable, str(ROOT / "benchmarks" / "paired.py"), "--steps", "2",
               "--eval-every", "2", "--n-train", "4", "--n-test", "3", "--jobs", "2",
               "--tasks", "soft_focus", "--variants", "cyclegan,pix2pix-l1", "--out", str(out)]
    env = {"OMP_NUM_THREADS": "1", "PATH": "", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-2000:] + run.stdout[-2000:]
    rows = json.loads((out / "paired.json").read_text())["results"]["soft_focus"]
    assert set(rows) == {"cyclegan", "pix2pix-l1"}
    for row in rows.values():
        assert row["steps"] == 2 and row["direction"] == "BtoA" and row["held_out"] == 3
        assert row["identity_psnr"] > 10 and row["sharpness"] > 0
    assert rows["pix2pix-l1"]["config"]["lambda_gan"] == 0.0
    assert rows["cyclegan"]["checkpoint"] == "latest"  # (its --eval-every scores A→B)
    assert rows["pix2pix-l1"]["identity_sharpness"] < 0.8  # the blurred input is softer
    with Image.open(out / "sheet-soft_focus.png") as sheet:
        assert sheet.size == (64 * 4, 64 * 3)  # input, 2 variants, truth; 3 crops
    assert "| soft_focus (BtoA) | pix2pix-l1 |" in (out / "paired.md").read_text()
