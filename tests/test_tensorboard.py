"""``cgan train --tensorboard``: event files that TensorBoard itself reads back (scalars,
sample grids, hyper-parameters), resumed without duplicate steps; one line where the package
is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyclegan_cli.extras import missing_module_hint
from cyclegan_cli.rundir import RunDir
from tests.conftest import needs_torch, tiny_config

pytestmark = needs_torch


def _events(folder: Path):
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="the tensorboard package is not installed (pip install "
               "'cyclegan-cli[tensorboard]')")
    acc = accumulator.EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_event_files_hold_the_losses_eval_grids_and_hparams(tiny_data: Path,
                                                             tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is not installed")
    from cyclegan_cli.training.loop import train

    cfg = tiny_config(tiny_data, tmp_path, n_epochs=1, n_epochs_decay=1, tensorboard=True,
                      eval_every=8, eval_a=str(tiny_data / "testA"),
                      eval_target=str(tiny_data / "testB_true"))
    run = RunDir(train(cfg, quiet=True).run_dir)
    acc = _events(run.tensorboard)
    tags = acc.Tags()
    for tag in ("loss/D_A", "loss/cycle_A", "loss/idt_B", "train/lr", "train/images_per_s",
                "eval/median", "eval/psnr", "eval/untouched_input_median"):
        assert tag in tags["scalars"], tag
    assert [e.step for e in acc.Scalars("loss/D_A")] == [2, 4, 6, 8, 10, 12, 14, 16]
    assert [e.step for e in acc.Scalars("eval/median")] == [8, 16]
    grids = acc.Images("samples")
    assert [g.step for g in grids] == [8, 16] and grids[0].width > grids[0].height > 0
    hparams = acc.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in hparams and "_hparams_/session_start_info" in hparams
    from tensorboard.plugins.hparams import plugin_data_pb2

    start = plugin_data_pb2.HParamsPluginData.FromString(
        hparams["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["crop_size"].number_value == 32
    assert start.hparams["netG"].string_value == "resnet_6blocks"


def test_a_resumed_run_drops_the_events_after_its_checkpoint(tiny_data: Path,
                                                             tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is not installed")
    import shutil

    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    from cyclegan_cli.training.loop import train

    cfg = tiny_config(tiny_data, tmp_path, n_epochs=1, n_epochs_decay=1, tensorboard=True,
                      max_steps=8)
    run = RunDir(train(cfg, quiet=True).run_dir)
    kept = tmp_path / "step8.pt"
    shutil.copyfile(run.latest, kept)
    train(resume=run.path, overrides={"max_steps": 12}, quiet=True)  # events 10 and 12 ...
    shutil.copyfile(kept, run.latest)  # ... then a crash loses the checkpoint after step 8
    train(resume=run.path, overrides={"max_steps": 16}, quiet=True)
    newest = max(run.tensorboard.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime)
    starts = [e.step for e in EventFileLoader(str(newest)).Load()
              if e.HasField("session_log") and e.session_log.status == e.session_log.START]
    assert starts == [9]  # TensorBoard drops the older files' events from step 9 on
    tb = {e.step: e.value for e in _events(run.tensorboard).Scalars("loss/D_A")}
    assert sorted(tb) == [2, 4, 6, 8, 10, 12, 14, 16]
    rows = {int(r.split(",")[0]): float(r.split(",")[4])
            for r in run.losses.read_text().splitlines()[1:]}
    assert tb[10] == pytest.approx(rows[10], rel=1e-4)  # the rerun's step 10, as losses.csv


def test_without_the_package_the_run_stops_before_training_with_one_line(
        tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from cyclegan_cli.training.loop import train

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    cfg = tiny_config(tiny_data, tmp_path, tensorboard=True)
    with pytest.raises(ModuleNotFoundError) as caught:
        train(cfg, quiet=True)
    assert missing_module_hint(caught.value.name) == (
        "--tensorboard needs tensorboard, which is not installed: "
        "pip install 'cyclegan-cli[tensorboard]'")
    assert not (tmp_path / "tiny" / "losses.csv").exists()


def _with_warn(init, sink):
    def wrapped(self, run, cfg, resume_step=0, warn=None):
        init(self, run, cfg, resume_step, lambda text: (sink(text), warn and warn(text)))
    return wrapped


def test_a_log_that_cannot_be_written_never_stops_the_run(tiny_data: Path, tmp_path: Path,
                                                           monkeypatch) -> None:
    """The event file cannot be made again (its folder keeps going, a full disk): the writes
    are retried, then given up with one warning, and training finishes."""
    pytest.importorskip("tensorboard", reason="tensorboard is not installed")
    from cyclegan_cli.training import tensorboard
    from cyclegan_cli.training.loop import train

    opened = []
    real_open = tensorboard.TensorBoardLog._open

    def flaky_open(self, purge_step):
        opened.append(purge_step)
        if len(opened) > 1:  # every writer after the first fails
            raise OSError("No such file or directory")
        return real_open(self, purge_step)

    monkeypatch.setattr(tensorboard.TensorBoardLog, "_open", flaky_open)
    original_write = tensorboard.TensorBoardLog._write
    calls = []

    def write_after_folder_went(self, step, write):
        if not calls:
            import shutil
            shutil.rmtree(self.folder)  # gone before the first write
        calls.append(step)
        return original_write(self, step, write)

    monkeypatch.setattr(tensorboard.TensorBoardLog, "_write", write_after_folder_went)
    cfg = tiny_config(tiny_data, tmp_path, n_epochs=1, n_epochs_decay=0, tensorboard=True)
    warnings: list[str] = []
    monkeypatch.setattr(tensorboard.TensorBoardLog, "__init__", _with_warn(
        tensorboard.TensorBoardLog.__init__, warnings.append))
    result = train(cfg, quiet=True)
    assert RunDir(result.run_dir).latest.is_file()
    assert [w.split(";")[0].split(":")[0] for w in warnings] == [
        f"{RunDir(result.run_dir).tensorboard} was deleted while the run trained",
        "TensorBoard events stop at step 2"], warnings
    assert warnings[-1].endswith("No such file or directory")  # the real reason
    assert len(opened) >= 3 and len(calls) > 1  # retried, then writes were skipped quietly
