"""The run report (``report.html``): its charts and parts, built from a run's files alone
(torch-free), written by training as it goes, rebuilt by ``cgan report``, and rendered by a
real browser (headless Chromium, where installed)."""

from __future__ import annotations

import csv
import html
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cyclegan_cli.cli import app
from cyclegan_cli.rundir import RunDir
from cyclegan_cli.rundir.charts import PALETTE, Series, line_chart, nice_ticks, thin, wants_log
from cyclegan_cli.rundir.evallog import COLUMNS, best_row
from cyclegan_cli.rundir.report import (
    CAPTION_KEY,
    MAX_GRIDS,
    STEP_KEY,
    build_report,
    pick_grids,
    write_report,
)
from tests.conftest import needs_torch, tiny_config

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install "
    "chromium; .ci/run installs it where it runs as root)")


def _fake_run(root: Path, name: str = "run", steps: int = 50, grids: int = 3,
              evals: list[tuple[int, float, float]] | None = None) -> RunDir:
    """A run folder written by hand: config, losses, eval rows and sample grids."""
    run = RunDir(root / name)
    run.create('{"model": "cyclegan", "name": "<b>bold</b>"}\n')
    with run.losses.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "epoch", "lr", "images_per_s", "D_A", "D_B", "G_AB", "cycle_A"])
        for s in range(1, steps + 1):
            w.writerow([s, 1 + s // 10, 2e-4, 20.0, 1.0 / s, 0.5, 0.9, 3.0 / s])
        fh.write("51,1,0.0002,2")  # a row cut short by a kill
    if evals:
        with run.evals.open("w") as fh:
            fh.write(",".join(COLUMNS) + "\n")
            for step, median, base in evals:
                row = dict.fromkeys(COLUMNS, "")
                row.update(step=str(step), epoch="1", metric="psnr", value=str(median - 0.1),
                           median=str(median), identity_median=str(base))
                fh.write(",".join(row[c] for c in COLUMNS) + "\n")
    rng = np.random.default_rng(0)
    for i in range(grids):
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_itxt(CAPTION_KEY, "real A | A→B")
        info.add_text(STEP_KEY, str(10 * (i + 1)))
        Image.fromarray(rng.integers(0, 255, (32, 64, 3), dtype=np.uint8)).save(
            run.sample(f"epoch_{i + 1:04d}"), pnginfo=info)
    return run



@pytest.mark.torchfree
def test_charts_thin_long_series_and_choose_log_scale_where_it_helps() -> None:
    x = list(range(100_000))
    xs, ys = thin(x, [float(v) for v in x], 400)
    assert len(xs) == len(ys) == 400 and xs[0] == pytest.approx(124.5)
    assert wants_log([Series("a", [1, 2], [100.0, 1.0])])
    assert not wants_log([Series("a", [1, 2], [2.0, 1.0])])
    assert not wants_log([Series("a", [1, 2], [-1.0, 100.0])])  # log needs positive values
    ticks = nice_ticks(0.13, 0.87)
    assert ticks[0] <= 0.13 and ticks[-1] >= 0.87 and len(ticks) <= 8
    svg = line_chart([Series("D_A", x, [1.0 / (v + 1) for v in x])], "discriminators")
    assert "(log scale)" in svg and len(svg) < 20_000  # a million steps draw as small
    assert "nothing logged yet" in line_chart([Series("a", [], [])], "empty")


@pytest.mark.torchfree
def test_report_has_one_chart_per_loss_family_the_eval_curve_and_the_best_checkpoint(
        tmp_path: Path) -> None:
    run = _fake_run(tmp_path, evals=[(10, 20.0, 21.0), (20, 22.5, 21.0), (30, 22.0, 21.0)])
    page = build_report(run, status="training", live=True)
    titles = re.findall(r"<svg[^>]*><title>([^<]*)</title>", page)
    assert titles[:3] == ["discriminators loss", "generators, adversarial loss",
                          "cycle consistency loss"]
    assert "learning rate" in titles and "speed, images/s" in titles
    assert any(t.startswith("held-out psnr") for t in titles)
    assert "untouched input (median)" in page  # the identity baseline is drawn
    assert "step 20, epoch 1, psnr median 22.50 dB (untouched input 21.00 dB)" in page
    assert 'http-equiv="refresh"' in page  # a live page reloads itself
    assert 'http-equiv="refresh"' not in build_report(run)
    assert page.count("data:image/jpeg;base64,") == 3
    assert "Each row, left to right: real A, A→B" in page
    assert "step 50, epoch 6" in page  # the last complete row (the cut one is skipped)
    assert "src=\"http" not in page and "<link" not in page  # nothing fetched


@pytest.mark.torchfree
def test_report_prints_names_and_config_literally(tmp_path: Path) -> None:
    run = _fake_run(tmp_path, name="<img src=x onerror=alert(1)>")
    page = build_report(run)
    assert "<img src=x" not in page and html.escape("<img src=x onerror=alert(1)>") in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page


@pytest.mark.torchfree
def test_best_is_only_a_row_above_the_untouched_input(tmp_path: Path) -> None:
    rows = [{"step": "1", "metric": "psnr", "value": "30", "median": "30",
             "identity_median": "31"},
            {"step": "2", "metric": "psnr", "value": "25", "median": "25",
             "identity_median": "24"}]
    assert best_row(rows)["step"] == "2"
    assert best_row(rows[:1]) is None
    run = _fake_run(tmp_path, evals=[(10, 20.0, 21.0)])
    assert "No evaluation has beaten the untouched input yet" in build_report(run)


@pytest.mark.torchfree
def test_many_grids_are_thinned_to_the_first_the_last_and_evenly_between(
        tmp_path: Path) -> None:
    paths = [Path(f"{i}.png") for i in range(100)]
    chosen = pick_grids(paths)
    assert len(chosen) == MAX_GRIDS and chosen[0] == paths[0] and chosen[-1] == paths[-1]
    run = _fake_run(tmp_path, grids=MAX_GRIDS + 5)
    page = build_report(run)
    assert page.count("data:image/jpeg") == MAX_GRIDS
    assert f"{MAX_GRIDS} of {MAX_GRIDS + 5} shown" in page


@pytest.mark.torchfree
def test_cgan_report_rebuilds_the_page_and_names_a_folder_that_is_no_run(
        tmp_path: Path) -> None:
    run = _fake_run(tmp_path)
    result = CliRunner().invoke(app, ["report", str(run.path)])
    assert result.exit_code == 0, result.output
    assert run.report.is_file() and "discriminators loss" in run.report.read_text()
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert "not a run folder (no config.json)" in result.output


@pytest.mark.torchfree
def test_an_empty_run_still_has_a_page(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "new")
    run.create("{}\n")
    page = build_report(run, status="training, 10 steps planned", live=True)
    assert "Nothing logged yet" in page and "No sample grid yet" in page


@needs_torch
def test_training_writes_the_report_as_it_goes_and_at_the_end(tiny_data: Path,
                                                              tmp_path: Path) -> None:
    from cyclegan_cli.training.loop import train

    cfg = tiny_config(tiny_data, tmp_path, n_epochs=1, n_epochs_decay=1, eval_every=8,
                      eval_a=str(tiny_data / "testA"),
                      eval_target=str(tiny_data / "testB_true"))
    result = train(cfg, quiet=True)
    run = RunDir(result.run_dir)
    page = run.report.read_text()
    assert "finished" in page and 'http-equiv="refresh"' not in page
    for title in ("discriminators loss", "cycle consistency loss", "identity loss",
                  "held-out psnr"):
        assert title in page
    assert page.count("data:image/jpeg") == len(list(run.samples.glob("*.png"))) == 2
    assert "Each row, left to right: real A, A→B, A→B→A, real B, B→A, B→A→B" in page


def _render(page: Path, out: Path, width: int = 412, height: int = 2600) -> str:
    """Screenshot ``page`` into ``out`` with headless Chromium; returns the DOM it ended with
    (after the page's scripts ran)."""
    return _render_url(page.as_uri(), out, width, height)


def _render_url(url: str, out: Path, width: int = 412, height: int = 2600) -> str:
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              "--no-first-run", f"--user-data-dir={out.parent / 'chromium-profile'}",
              "--virtual-time-budget=3000", f"--window-size={width},{height}"]
    subprocess.run([*common, f"--screenshot={out}", url], check=True,
                   capture_output=True, timeout=120)
    dom = subprocess.run([*common, "--dump-dom", url], check=True,
                         capture_output=True, text=True, timeout=120)
    return dom.stdout


@needs_torch
@needs_chromium
def test_chromium_renders_the_report_of_a_real_run_with_its_plots_and_images(
        tiny_data: Path, tmp_path: Path) -> None:
    from cyclegan_cli.training.loop import train

    cfg = tiny_config(tiny_data, tmp_path, n_epochs=1, n_epochs_decay=1, eval_every=8,
                      eval_a=str(tiny_data / "testA"),
                      eval_target=str(tiny_data / "testB_true"))
    run = RunDir(train(cfg, quiet=True).run_dir)
    shot = tmp_path / "report.png"
    dom = _render(run.report, shot)
    images = len(re.findall(r"<img ", dom))
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    assert images == 2 and loaded and int(loaded.group(1)) == images  # every image decoded
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[1] == 412  # a phone's width
    ink = (pixels.sum(axis=2) < 600).mean(axis=1)  # rows with anything but white on them
    assert (ink > 0).mean() > 0.3, "the page is mostly blank"

    def share(hex_colour: str) -> float:
        rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        return float((np.abs(pixels - rgb).sum(axis=2) < 40).mean())

    assert share(PALETTE[0]) > 2e-4 and share(PALETTE[1]) > 2e-4  # the curves are drawn
    # the sample grid: a block of many colours (a photograph), not flat page colours
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert colours > 2000


@pytest.mark.torchfree
@needs_chromium
def test_chromium_shows_the_latest_grid_and_the_slider_switches(tmp_path: Path) -> None:
    run = _fake_run(tmp_path, grids=3)
    write_report(run)
    dom = _render(run.report, tmp_path / "shot.png", height=900)
    figures = re.findall(r"<figure( hidden(?:=\"\")?)?>", dom)
    assert len(figures) == 3 and [bool(f) for f in figures] == [True, True, False]
    assert 'id="pick"' in dom
    # the page's script moves the slider (and the grid shown) to the one a link names
    dom = _render_url(run.report.as_uri() + "#grid=0", tmp_path / "shot0.png", height=900)
    figures = re.findall(r"<figure( hidden(?:=\"\")?)?>", dom)
    assert [bool(f) for f in figures] == [False, True, True]


@pytest.mark.torchfree
def test_a_run_from_release_0_1_0_gets_a_report(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "old")
    shutil.copytree(Path(__file__).parent / "data" / "run-0.1.0" / "run", run.path)
    result = CliRunner().invoke(app, ["report", str(run.path)])
    assert result.exit_code == 0, result.output
    page = run.report.read_text()
    assert "discriminators loss" in page and "learning rate" in page
    assert "No held-out evaluation in this run" in page


@pytest.mark.torchfree
def test_a_losses_file_without_lr_or_speed_columns_still_charts(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "bare")
    run.create("{}\n")
    run.losses.write_text("step,epoch,D_A\n1,1,0.5\n2,1,0.4\n")
    page = build_report(run)
    assert "discriminators loss" in page and "<title>learning rate</title>" not in page
    assert "step 2, epoch 1" in page


def test_report_cost_benchmark_at_toy_size(tmp_path: Path) -> None:
    import json
    import sys

    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, str(root / "benchmarks" / "report_cost.py"), "--out",
                          str(tmp_path), "--rows", "50", "--evals", "3", "--grids", "15",
                          "--grid-size", "96", "64", "--repeat", "1"], capture_output=True,
                         text=True, timeout=300, env={"PYTHONPATH": str(root), "PATH": ""})
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["rows"] == 50 and result["cold_s"] > 0 and result["warm_s_median"] > 0
    page = (tmp_path / "long-run" / "report.html").read_text()
    assert page.count("data:image/jpeg") == MAX_GRIDS and result["page_kb"] > 1


@pytest.mark.torchfree
def test_grids_are_in_training_order_even_when_a_copy_lost_the_file_times(
        tmp_path: Path) -> None:
    import os

    run = _fake_run(tmp_path, grids=4)
    for i, path in enumerate(sorted(run.samples.glob("*.png"))):  # newest file = first grid
        os.utime(path, ns=(10**18 - i * 10**9, 10**18 - i * 10**9))
    page = build_report(run)
    stems = re.findall(r"<figcaption>(epoch_\d+)", page)
    assert stems == ["epoch_0001", "epoch_0002", "epoch_0003", "epoch_0004"]
    assert "<figure><figcaption>epoch_0004" in page  # the latest is the one shown


@pytest.mark.torchfree
def test_a_last_line_cut_short_by_a_kill_is_not_plotted(tmp_path: Path) -> None:
    from cyclegan_cli.rundir.report import read_losses

    run = RunDir(tmp_path / "cut")
    run.create("{}\n")
    run.losses.write_text("step,epoch,D_A\n1,1,0.5\n2,1,0.06\n3,1,0.0")  # 0.06.. cut to 0.0
    _, data = read_losses(run.losses)
    assert data["step"] == [1.0, 2.0] and data["D_A"] == [0.5, 0.06]
    run.evals.write_text(",".join(COLUMNS) + "\n" + "8,1,1,psnr,20,,,,4,0,24,21\n"
                         + "16,1,1,psnr,x,,,,4,0,25,2")  # a bad number, then a cut line
    assert "step 8, epoch 1, psnr median 24.00 dB (untouched input 21.00 dB)" in build_report(run)


@pytest.mark.torchfree
def test_the_title_of_a_report_built_from_inside_the_run_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _fake_run(tmp_path, name="my-run")
    monkeypatch.chdir(run.path)
    result = CliRunner().invoke(app, ["report", "."])
    assert result.exit_code == 0, result.output
    assert "<h1>my-run</h1>" in run.report.read_text()


@pytest.mark.torchfree
def test_a_report_that_fails_is_warned_about_once_and_training_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cyclegan_cli.training.live_report as live

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("epoch")

    monkeypatch.setattr(live, "write_report", broken)
    warnings: list[str] = []
    report = live.LiveReport(_fake_run(tmp_path), warnings.append, every=0)
    report.refresh("training")
    report.refresh("training")
    assert len(warnings) == 1 and "could not be written" in warnings[0]


@needs_torch
def test_a_run_ended_by_any_error_leaves_a_page_that_says_so(
        tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cyclegan_cli.training.loop import train
    from cyclegan_cli.training.trainer import Trainer

    real, calls = Trainer.train_step, []

    def failing(self, *args):  # noqa: ANN001, ANN202
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("out of memory (test)")
        return real(self, *args)

    monkeypatch.setattr(Trainer, "train_step", failing)
    with pytest.raises(RuntimeError):
        train(tiny_config(tiny_data, tmp_path), quiet=True)
    page = (tmp_path / "tiny" / "report.html").read_text()
    assert "stopped: RuntimeError: out of memory (test)" in page
    assert 'http-equiv="refresh"' not in page
