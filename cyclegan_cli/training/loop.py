"""The training loop behind ``cgan train``: set up or resume a run, train, log, sample and save.

Checkpoints (``latest`` after every epoch, every few minutes and on Ctrl-C / SIGTERM, plus a
numbered one every ``save_every`` epochs) hold everything needed to continue exactly where the
run stopped. A NaN or infinite loss stops the run without overwriting the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import io
import math
import random
import re
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress

from cyclegan_cli import __version__
from cyclegan_cli.config import TrainConfig
from cyclegan_cli.data.dataset import Loader, UnalignedDataset, make_loader, resolve_domains
from cyclegan_cli.data.images import list_images, probe_image
from cyclegan_cli.data.transforms import Preprocessor
from cyclegan_cli.errors import (
    CganError,
    CheckpointError,
    DataError,
    ImageReadError,
    TrainingDiverged,
    TrainingInterrupted,
    describe_os_error,
)
from cyclegan_cli.models import generator_size_multiple
from cyclegan_cli.progress import image_progress
from cyclegan_cli.training.checkpoint import load_checkpoint, rng_state, save_checkpoint
from cyclegan_cli.training.checkpoint import set_rng_state as restore_rng_state
from cyclegan_cli.training.device import resolve_device, resolve_precision
from cyclegan_cli.training.distributed import (
    Dist,
    from_main,
    gather,
    init_distributed,
    shutdown,
    weights_digest,
)
from cyclegan_cli.training.prefetch import device_batches
from cyclegan_cli.training.run import LossLog, RunDir, save_grid
from cyclegan_cli.training.trainer import Trainer, to_model_range

# Options that may change when a run is resumed; everything else is fixed by the saved config.
RESUMABLE = frozenset({
    "n_epochs", "n_epochs_decay", "max_steps", "save_every", "sample_every", "log_every",
    "num_workers", "device", "precision", "cache", "eval_every", "eval_a", "eval_target",
    "eval_max", "compile", "channels_last", "fused_adam", "fuse_calls",
})
AUTOSAVE_SECONDS = 600.0
N_SAMPLES = 4


@dataclass
class TrainResult:
    """What a finished (or stopped) run reports."""

    run_dir: Path
    global_step: int
    epoch: int
    device: str
    precision: str
    bad_files: list[str] = field(default_factory=list)
    last_losses: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    is_main: bool = True  # False on the other ranks of a torchrun run (they report nothing)


# -- setup -------------------------------------------------------------------------------------
def _default_name(cfg: TrainConfig, dir_a: Path, dir_b: Path) -> str:
    base = Path(cfg.dataroot).resolve().name if cfg.dataroot else (
        f"{dir_a.resolve().name}2{dir_b.resolve().name}")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "run"


def prepare_new_run(cfg: TrainConfig) -> TrainConfig:
    """Validate a new run's config and fill in what was left to defaults (folders, name, seed)."""
    cfg = replace(cfg).validate()
    dir_a, dir_b = resolve_domains(cfg.dir_a, cfg.dir_b, cfg.dataroot)
    for folder in (dir_a, dir_b):  # missing or empty folders fail here, before any work
        list_images(folder)
    multiple = generator_size_multiple(cfg.netG)
    if cfg.preprocess in ("resize_and_crop", "crop", "scale_width_and_crop") \
            and cfg.crop_size % multiple:
        raise CganError(f"--net-g {cfg.netG} needs --crop-size to be a multiple of {multiple} "
                        f"(got {cfg.crop_size})")
    cfg.dir_a, cfg.dir_b = str(dir_a.resolve()), str(dir_b.resolve())
    cfg.name = cfg.name or _default_name(cfg, dir_a, dir_b)
    if cfg.seed is None:
        cfg.seed = secrets.randbelow(2**31)
    run = RunDir(cfg.run_dir)
    if run.latest.exists():
        raise CganError(f"run {run.path} already exists; continue it with --resume {run.path} "
                        "or choose another --name")
    return cfg


def load_run(path: str | Path, overrides: dict[str, Any] | None = None
             ) -> tuple[TrainConfig, dict[str, Any]]:
    """The saved config (with allowed overrides applied) and latest checkpoint of a run."""
    run = RunDir(path)
    if not run.config.is_file():
        raise CheckpointError(f"{run.path} is not a run directory (no {run.config.name})")
    cfg = TrainConfig.load(run.config)
    if not run.latest.is_file():
        raise CheckpointError(f"{run.path} has no checkpoint to resume from yet ({run.latest})")
    overrides = overrides or {}
    fixed = sorted(k for k, v in overrides.items()
                   if k not in RESUMABLE and getattr(cfg, k) != v)
    if fixed:
        names = ", ".join("--" + k.replace("_", "-").lower() for k in fixed)
        raise CganError(f"{names} cannot change when resuming; only "
                        f"{', '.join(sorted(RESUMABLE))} can")
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if k in RESUMABLE}).validate()
    # the run keeps its name and folder even if it was moved or renamed
    cfg.runs_dir, cfg.name = str(run.path.parent), run.path.name
    return cfg, load_checkpoint(run.latest)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# -- progress display ----------------------------------------------------------------------------
def _format_losses(losses: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in losses.items())


class _Display:
    """A Rich progress bar, or plain log lines with ``quiet`` (for files and CI logs)."""

    def __init__(self, console: Console, quiet: bool, total: int, done: int, batch: int) -> None:
        self.console, self.quiet, self.total, self.batch = console, quiet, total, batch
        self.progress: Progress | None = None
        self._last_line = 0.0
        self._last_step = -1
        self._start = time.perf_counter()
        self._start_step = done
        if not quiet:
            self.progress = image_progress(console, "[bold]{task.description}", "steps",
                                           per_unit=batch, extra="{task.fields[losses]}")
            self.task = self.progress.add_task("", total=total, completed=done, losses="")

    def __enter__(self) -> _Display:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, step: int, epoch_text: str, losses: dict[str, float] | None,
               force_line: bool = False) -> None:
        if self.progress is not None:
            fields = {"losses": _format_losses(losses)} if losses else {}
            self.progress.update(self.task, completed=step, description=epoch_text, **fields)
            return
        now = time.perf_counter()
        if step == self._last_step or (not force_line and now - self._last_line < 10.0):
            return
        self._last_line, self._last_step = now, step
        rate = (step - self._start_step) / max(now - self._start, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else math.inf
        eta_text = "--" if math.isinf(eta) else time.strftime("%H:%M:%S", time.gmtime(eta))
        self.console.print(
            f"{epoch_text} step {step}/{self.total} {rate * self.batch:.1f} img/s "
            f"ETA {eta_text} {_format_losses(losses or {})}", highlight=False, soft_wrap=True)

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)


# -- signals ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by the first Ctrl-C / SIGTERM (a second Ctrl-C aborts at once)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# -- the loop -------------------------------------------------------------------------------------
class _Run:
    """One training session of a run (new or resumed)."""

    def __init__(self, cfg: TrainConfig, state: dict[str, Any] | None, console: Console,
                 quiet: bool, autosave_seconds: float, dist: Dist | None = None,
                 device_name: str | None = None) -> None:
        self.cfg, self.console = cfg, console
        self.dist = dist
        self.is_main = dist is None or dist.is_main
        self.quiet = quiet or not self.is_main
        self.autosave_seconds = autosave_seconds
        self.run = RunDir(cfg.run_dir)
        self.device = resolve_device(device_name or cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device)
        seed_everything(int(cfg.seed or 0))  # the same initial weights on every rank
        if self.device.type == "cuda" and cfg.preprocess != "none":
            torch.backends.cudnn.benchmark = True
        pre = Preprocessor(cfg.preprocess, cfg.load_size, cfg.crop_size, cfg.flip,
                           generator_size_multiple(cfg.netG))
        self.bad_files: list[str] = []
        dataset = UnalignedDataset.from_folders(
            Path(cfg.dir_a or ""), Path(cfg.dir_b or ""), pre, seed=int(cfg.seed or 0),
            max_size=cfg.max_dataset_size)
        if cfg.batch_size > 1 and pre.mode in ("none", "scale_width"):
            self._check_one_size(dataset)
        if cfg.cache:
            dataset.fill_cache(on_bad=lambda err: self._report_bad([f"{err.path}: {err.reason}"]))
        self.loader: Loader = make_loader(
            dataset, batch_size=cfg.batch_size, seed=int(cfg.seed or 0),
            serial=cfg.serial_batches, num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda", rank=dist.rank if dist else 0,
            world=dist.world if dist else 1)
        self.evaluator = None
        if cfg.eval_every and self.is_main:  # checks the held-out folder before writing
            from cyclegan_cli.training.evaluator import TrainingEvaluator

            self.evaluator = TrainingEvaluator(cfg, self.run.path)
        self.trainer = Trainer(cfg, self.device, self.precision, dist=dist)
        self.trainer.on_warning = lambda text: console.print(
            f"[yellow]warning:[/] {text}", highlight=False, soft_wrap=True)
        if state is not None:
            try:
                self.trainer.load_state_dict(state["trainer"])
            except (KeyError, RuntimeError, ValueError) as exc:
                raise CheckpointError(f"{self.run.latest} does not match the run's config "
                                      f"({type(exc).__name__})") from exc
            restore_rng_state(state["rng"])
            self.bad_files = list(state.get("bad_files", []))
            self._restore_rank_state(state)
        elif dist is not None and dist.rank:
            torch.manual_seed(int(cfg.seed or 0) + 1_000_003 * dist.rank)  # own dropout masks
        self.samples: list[tuple[torch.Tensor, ...]] = []
        self.log: LossLog | None = None
        if self.is_main:
            if state is not None:
                self.run.remove_stale_temporaries()
            self.run.create(cfg)  # (re)writes config.json: resumable options may have changed
            self.samples = self._sample_inputs(dataset)
            self.log = LossLog(self.run.losses, self.trainer.loss_names,
                               resume_step=self.trainer.global_step if state else None)
        self.last_save = time.monotonic()
        self.last_losses: dict[str, float] = {}
        if self.evaluator is not None:
            self.evaluator.resume_at(self.trainer.global_step)

    # -- helpers -------------------------------------------------------------------------------
    def _restore_rank_state(self, state: dict[str, Any]) -> None:
        """This rank's own pools and random state, when the checkpoint has them (a run
        resumed with the same number of processes); otherwise rank 0's are used."""
        ranks = state.get("ranks") or []
        rank = self.dist.rank if self.dist else 0
        if len(ranks) != (self.dist.world if self.dist else 1) or rank >= len(ranks):
            if len(ranks) > 1:
                self.console.print(f"[yellow]note:[/] the checkpoint was written by {len(ranks)}"
                                   " processes; the image pools restart from rank 0's",
                                   highlight=False)
            return
        own = ranks[rank]
        if "pool_A" in own:  # (rank 0's are the trainer state's, loaded already)
            self.trainer.pool_A.load_state_dict(own["pool_A"], self.device)
            self.trainer.pool_B.load_state_dict(own["pool_B"], self.device)
        restore_rng_state(own["rng"])

    def _check_one_size(self, dataset: UnalignedDataset) -> None:
        """Batches need equal sizes: with whole-image modes, check every image up front."""
        sizes: dict[tuple[int, int], Path] = {}
        for path in [*dataset.files[0], *dataset.files[1]]:
            try:
                w, h, _ = probe_image(path)
            except ImageReadError:
                continue  # reported and skipped when it is loaded
            sizes.setdefault(dataset.pre.output_size(w, h), path)
            if len(sizes) > 1:
                (s1, p1), (s2, p2) = sizes.items()
                raise DataError(
                    f"--preprocess {dataset.pre.mode} keeps whole images, and {p1} "
                    f"({s1[0]}x{s1[1]} after padding) and {p2} ({s2[0]}x{s2[1]}) differ; use "
                    "--batch-size 1 or a cropping --preprocess mode")

    def _report_bad(self, entries: list[str]) -> None:
        for entry in entries:
            if entry not in self.bad_files:
                self.bad_files.append(entry)
                self.console.print(f"[yellow]warning:[/] skipping unreadable image {entry}",
                                   highlight=False)

    def _sample_inputs(self, dataset: UnalignedDataset) -> list[tuple[torch.Tensor, ...]]:
        """Fixed images (centred, unflipped) whose translations form the sample grids."""
        pairs = []
        for i in range(min(N_SAMPLES, *dataset.sizes)):
            bad: list[str] = []
            a, b = dataset.load(0, i, None, bad), dataset.load(1, i, None, bad)
            self._report_bad(bad)  # (files found bad here are skipped later without a word)
            pairs.append((to_model_range(a[None], self.device),
                          to_model_range(b[None], self.device)))
        return pairs

    def write_samples(self, tag: str) -> Path | None:
        if not self.is_main:
            return None
        rows = []
        for real_a, real_b in self.samples:
            (ra, fb, rec_a), (rb, fa, rec_b) = self.trainer.translate_samples(real_a, real_b)
            rows.append([ra, fb, rec_a, rb, fa, rec_b])
        path = self.run.samples / f"{tag}.png"
        save_grid(path, rows)
        return path

    def _check_finite(self, losses: dict[str, float] | None = None) -> None:
        bad = [k for k, v in (losses or {}).items() if not math.isfinite(v)]
        if bad or not self.trainer.losses_finite():
            t = self.trainer
            what = f"loss {', '.join(bad)}" if bad else "a loss"
            kept = (f"the last good checkpoint {self.run.latest} is kept"
                    if self.run.latest.exists() else "no checkpoint had been written yet")
            raise TrainingDiverged(
                f"{what} became NaN or infinite by step {t.global_step} (epoch {t.epoch + 1}); "
                f"{kept}. Try a lower --lr, --precision fp32 or another --gan-mode")

    def save(self, numbered_epoch: int | None = None) -> None:
        """Save ``latest`` (and a numbered copy) — only if every loss so far was finite."""
        self._check_finite()
        t = self.trainer
        bad, ranks = self.bad_files, None
        if self.dist is not None:  # every rank's pools, random state and weights digest
            own = {"rng": rng_state(), "bad_files": self.bad_files,
                   "weights": weights_digest(t.model)}
            if self.dist.rank:  # rank 0's pools are in the trainer state already
                own |= {"pool_A": t.pool_A.state_dict(), "pool_B": t.pool_B.state_dict()}
            ranks = gather(own, self.dist)
            if not self.is_main:
                self.last_save = time.monotonic()
                return
            bad = list(dict.fromkeys(b for r in ranks for b in r.pop("bad_files")))
        state = {
            "trainer": self.trainer.state_dict(),
            "rng": rng_state(),
            "config": self.cfg.to_dict(),
            "bad_files": bad,
            "world_size": len(ranks) if ranks else 1,
            "ranks": ranks,
            "version": __version__,
            "torch_version": str(torch.__version__),
            "device": str(self.device),
            "precision": self.precision,
        }
        try:
            save_checkpoint(self.run.latest, state)
        except OSError as exc:  # disk full, folder gone read-only...: the old one is intact
            raise CheckpointError(f"{describe_os_error(exc)}; then continue with: cgan train "
                                  f"--resume {self.run.path}") from exc
        if numbered_epoch is not None:
            self._copy_latest(self.run.epoch_checkpoint(numbered_epoch))
        self.last_save = time.monotonic()

    def _copy_latest(self, target: Path) -> None:
        """Copy the latest checkpoint to ``target`` atomically (temporary file, then rename)."""
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(self.run.latest, tmp)
        tmp.replace(target)

    def evaluate(self, shown: _Display) -> None:
        """Score the held-out split; keep ``best.pt`` when the score improves."""
        t = self.trainer
        result = None
        if self.evaluator is not None:  # rank 0 evaluates; the others wait for its verdict
            result = self.evaluator(t.model, self.device, t.global_step, t.epoch + 1)
        (improved,) = from_main([bool(result and result.improved)], self.dist, self.device)
        if improved:
            self.save()
            if self.is_main:
                self._copy_latest(self.run.checkpoints / "best.pt")
        if result is not None:
            shown.message(f"eval at step {result.step}: {result.metric} {result.value:.2f} dB"
                          + (" (best so far; saved best.pt)" if result.improved else ""))

    def _decide(self, stop: threading.Event, step: int) -> tuple[bool, bool]:
        """(stop now, save now). Under torchrun every rank takes rank 0's decision, at
        logging steps only (a decision is a synchronisation)."""
        wanted = [stop.is_set(), time.monotonic() - self.last_save > self.autosave_seconds]
        if self.dist is None:
            return wanted[0], wanted[1]
        if step % self.cfg.log_every:
            return False, False
        stop_now, save_now = from_main(wanted, self.dist, self.device)
        return stop_now, save_now

    # -- the loop ------------------------------------------------------------------------------
    def total_steps(self) -> int:
        planned = self.cfg.total_epochs * self.loader.steps_per_epoch
        return min(self.cfg.max_steps, planned) if self.cfg.max_steps else planned

    def train(self) -> TrainResult:
        cfg, t = self.cfg, self.trainer
        total = self.total_steps()
        started = time.perf_counter()
        steps_per_epoch = self.loader.steps_per_epoch
        epochs = cfg.total_epochs
        interval_start, interval_steps = time.perf_counter(), 0
        screen = self.console if self.is_main else Console(file=io.StringIO())
        stopping = False
        with _stop_on_signals() as stop, \
                _Display(screen, self.quiet, total, t.global_step,
                         cfg.batch_size * (self.dist.world if self.dist else 1)) as shown:
            shown.message(
                f"run [bold]{self.run.path}[/]: {len(self.loader.dataset.files[0])} A / "
                f"{len(self.loader.dataset.files[1])} B images, {steps_per_epoch} steps per "
                f"epoch, {self.device} {self.precision} ({t.speed.describe()}), seed {cfg.seed}"
                + (f", resuming at step {t.global_step}" if t.global_step else ""))
            done = t.global_step >= total
            while not done and t.epoch < epochs:
                epoch_text = f"epoch {t.epoch + 1}/{epochs}"
                batches = device_batches(self.loader.epoch(t.epoch, t.step_in_epoch),
                                         self.device)
                for real_a, real_b, bad in batches:
                    if bad:
                        self._report_bad(bad)
                    t.train_step(real_a, real_b)
                    interval_steps += 1
                    step = t.global_step
                    if step % cfg.log_every == 0:
                        losses = t.pop_mean_losses()
                        self._check_finite(losses)
                        now = time.perf_counter()
                        rate = interval_steps * cfg.batch_size / max(now - interval_start, 1e-9)
                        interval_start, interval_steps = now, 0
                        self.last_losses = losses
                        if self.log is not None:
                            self.log.write({"step": step, "epoch": t.epoch + 1, "lr": t.lr,
                                            "images_per_s": rate * (self.dist.world
                                                                    if self.dist else 1),
                                            **losses})
                        shown.update(step, epoch_text, losses)
                    elif not self.quiet:
                        shown.update(step, epoch_text, None)
                    if cfg.sample_every and step % cfg.sample_every == 0:
                        self.write_samples(f"step_{step:07d}")
                    if cfg.eval_every and step % cfg.eval_every == 0:
                        self.evaluate(shown)
                    if step >= total:
                        done = True
                        break
                    stopping, save_now = self._decide(stop, step)
                    if stopping:
                        break
                    if save_now:
                        self.save()
                if t.step_in_epoch >= steps_per_epoch:  # the epoch is complete
                    t.end_epoch()
                    numbered = t.epoch if t.epoch % cfg.save_every == 0 else None
                    self.save(numbered)
                    if not cfg.sample_every:
                        self.write_samples(f"epoch_{t.epoch:04d}")
                    shown.update(t.global_step, epoch_text, self.last_losses, force_line=True)
                if stopping:
                    self.save()
                    raise TrainingInterrupted(
                        f"stopped at step {t.global_step}; saved {self.run.latest}. "
                        f"Continue with: cgan train --resume {self.run.path}")
            if t.step_in_epoch:  # stopped mid-epoch by --max-steps
                self.save()
                self.write_samples(f"step_{t.global_step:07d}")
            if t.global_step == 0:
                raise CganError("no training step was run (is --max-steps below the resume "
                                "point?)")
        return TrainResult(self.run.path, t.global_step, t.epoch, str(self.device),
                           self.precision, self.bad_files, self.last_losses,
                           time.perf_counter() - started, self.is_main)


def train(cfg: TrainConfig | None = None, *, resume: str | Path | None = None,
          overrides: dict[str, Any] | None = None, console: Console | None = None,
          quiet: bool = False, autosave_seconds: float = AUTOSAVE_SECONDS) -> TrainResult:
    """Train a new run from ``cfg``, or continue the run at ``resume`` (with ``overrides``)."""
    console = console or Console(stderr=True)
    if resume is not None:
        cfg, state = load_run(resume, overrides)
    else:
        if cfg is None:
            raise CganError("nothing to train: give a config or a run to resume")
        if overrides:
            cfg = replace(cfg, **overrides)
        cfg, state = prepare_new_run(cfg), None  # every rank checks before anyone writes
    dist, device_name = init_distributed(cfg.device)
    finished = False
    try:
        if dist is not None and state is None:  # one seed for all ranks (rank 0's)
            cfg.seed = gather(cfg.seed, dist)[0]
        run = _Run(cfg, state, console, quiet, autosave_seconds, dist, device_name)
        try:
            result = run.train()
            finished = True
            return result
        finally:
            if run.log is not None:
                run.log.close()
    finally:
        shutdown(dist, finished)
